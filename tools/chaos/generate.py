"""A seeded generator of chaos scenarios: many protected parents, random fill schedules, faults.

The result is a plain dict in the simulator's scenario shape (``ordersync.sim.scenarios``), so it can be
written as YAML for ``ordersync sim serve --scenario`` or ``ordersync demo --scenario``. The same seed and
spec always give the same scenario, so a failing chaos run replays its market and its fault sequence.

Parents are marketable limit buys a cent above the quote, so a lone take-profit resting above the entry is
never a potential wash trade against a still-working parent. Every parent has a take-profit; a share of
them also a stop-loss (one OCO on the broker). What the venue does with each parent:

* ``full``: fills completely, in one to four parts;
* ``partial_open``: fills in part and stays working to the end;
* ``partial_cancel`` / ``partial_expire``: fills in part, then the venue cancels / expires the rest;
* ``unfilled_cancel`` / ``unfilled_expire``: never fills and is canceled / expires (an orphan candidate);
* ``rejected``: accepted with 200, then rejected by the venue without a fill.

Some symbols' prices rise through the take-profits or fall through the stop-losses for a while, so children
fill too (and OCO stop legs trigger), not only the parents.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "KINDS",
    "SMALL",
    "ChaosSpec",
    "generate",
    "main",
    "parent_kind",
    "schedule_end_s",
    "write_scenario",
]

CENT = Decimal("0.01")

# how the venue treats a parent, with its weight in the mix
KINDS: Mapping[str, float] = {
    "full": 0.62,
    "partial_open": 0.05,
    "partial_cancel": 0.12,
    "partial_expire": 0.06,
    "unfilled_cancel": 0.06,
    "unfilled_expire": 0.05,
    "rejected": 0.04,
}

_TICKERS = (
    "OKE",
    "STWD",
    "EPD",
    "ET",
    "KMI",
    "WMB",
    "MPLX",
    "PAA",
    "T",
    "VZ",
    "PFE",
    "F",
    "O",
    "KO",
    "PEP",
    "MO",
    "PM",
    "XOM",
    "CVX",
    "COP",
    "BMY",
    "MRK",
    "ABBV",
    "JNJ",
    "INTC",
    "CSCO",
    "ORCL",
    "IBM",
    "HPQ",
    "DELL",
    "GM",
    "GE",
    "BA",
    "CAT",
    "DE",
    "MMM",
    "HON",
    "LMT",
    "RTX",
    "NOC",
    "GD",
    "UPS",
    "FDX",
    "DAL",
    "UAL",
    "AAL",
    "LUV",
)


@dataclass(frozen=True, slots=True)
class ChaosSpec:
    """What to generate; times are virtual seconds of the simulator's clock."""

    seed: int
    parents: int = 1000
    symbols: int = 24
    submit_span_s: float = 1800.0  # parents are submitted over this long
    fill_window_s: float = 600.0  # a parent's fills happen within this long of its submission
    stop_loss_share: float = 0.4  # parents that also carry a stop-loss (their children are OCOs)
    moving_symbols: float = 0.35  # share of symbols whose price crosses the exits for a while
    faults: bool = True
    http_429: bool = True  # inject 429s
    rate_limit_per_min: int = 200  # per virtual minute, as Alpaca's; more 429s come from the fault injection

    def __post_init__(self) -> None:
        if self.parents < 1 or not 1 <= self.symbols <= len(_TICKERS):
            raise ValueError(f"need parents >= 1 and 1 <= symbols <= {len(_TICKERS)}")


def generate(spec: ChaosSpec) -> dict[str, Any]:
    """Return the scenario for ``spec`` as a YAML-ready dict (every number a string or a float)."""
    rng = random.Random(spec.seed)
    quotes = {s: _money(rng.uniform(10, 150)) for s in rng.sample(_TICKERS, spec.symbols)}
    symbols = sorted(quotes)
    prices: list[dict[str, Any]] = []
    for symbol in symbols:
        if rng.random() < spec.moving_symbols:
            prices += _excursion(rng, symbol, quotes[symbol], spec)
    parents = [_parent(rng, spec, i, symbols, quotes) for i in range(spec.parents)]
    data: dict[str, Any] = {
        "name": f"chaos-{spec.seed}",
        "description": (
            f"chaos seed {spec.seed}: {spec.parents} protected parents on {spec.symbols} symbols, "
            "random partial fills, venue cancels/expiries/rejections, price excursions"
            + (", stream and HTTP faults" if spec.faults else "")
        ),
        "seed": spec.seed,
        "cash": "1000000000",
        "shorting_enabled": False,
        "wash_trade_check": True,
        "rate_limit_per_min": spec.rate_limit_per_min,
        "latency": {"ack_s": 0.05, "fill_s": 0.05, "cancel_s": 0.2},
        "symbols": {s: {"price": str(quotes[s]), "exchange": "NYSE"} for s in symbols},
        "prices": sorted(prices, key=lambda p: float(p["at_s"])),
        "parents": parents,
    }
    if spec.faults:
        data["faults"] = _faults(rng, spec)
    return data


def parent_kind(parent: Mapping[str, Any]) -> str:
    """Return the kind (see ``KINDS``) a generated parent was made as."""
    return _infer_kind(parent)


def schedule_end_s(data: Mapping[str, Any]) -> float:
    """Return the virtual second of the scenario's last scheduled event (submit, fill, end, price move)."""
    last = 0.0
    for parent in data.get("parents", []):
        ends = [float(f["after_s"]) for f in parent.get("fills", [])]
        ends += [
            float(parent[k]) for k in ("cancel_after_s", "expire_after_s", "reject_after_s") if k in parent
        ]
        last = max(last, float(parent.get("submit_at_s", 0)) + max(ends, default=0.0))
    for move in data.get("prices", []):
        last = max(last, float(move["at_s"]))
    return last


def write_scenario(data: Mapping[str, Any], path: Path, header: str = "") -> Path:
    """Write ``data`` as a scenario YAML file (with an optional comment header); return the path."""
    text = yaml.safe_dump(dict(data), sort_keys=False, width=120)
    comment = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    path.write_text(comment + text, encoding="utf-8")
    return path


# -- parts -----------------------------------------------------------------------------------------------


def _money(value: float | Decimal) -> Decimal:
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


def _excursion(rng: random.Random, symbol: str, quote: Decimal, spec: ChaosSpec) -> list[dict[str, Any]]:
    # up through the take-profits (+3..8 % above the entry) or down through the stops (-3..8 %), then back
    factor = Decimal("1.10") if rng.random() < 0.6 else Decimal("0.90")
    start = rng.uniform(0.15, 0.75) * spec.submit_span_s
    back = start + rng.uniform(60, 300)
    return [
        {"at_s": round(start, 1), "symbol": symbol, "price": str(_money(quote * factor))},
        {"at_s": round(back, 1), "symbol": symbol, "price": str(quote)},
    ]


def _parent(
    rng: random.Random, spec: ChaosSpec, index: int, symbols: list[str], quotes: Mapping[str, Decimal]
) -> dict[str, Any]:
    symbol = rng.choice(symbols)
    quote = quotes[symbol]
    qty = rng.choice([1, 2, 3, 5, 7, 9, 10, 12, 15, 20, 25, 37, 50, 80, 100])
    kind = rng.choices(list(KINDS), weights=list(KINDS.values()))[0]
    parent: dict[str, Any] = {
        "id": f"c{spec.seed}-{index:04d}",
        "symbol": symbol,
        "qty": str(qty),
        "side": "buy",
        "type": "limit",
        "limit_price": str(quote + CENT),
        "time_in_force": "gtc",
        "submit_at_s": round(rng.uniform(0, spec.submit_span_s), 2),
    }
    fills = _fills(rng, spec, kind, qty, quote)
    if fills:
        parent["fills"] = fills
    last = max((float(f["after_s"]) for f in fills), default=0.0)
    end_at = round(last + rng.uniform(5, spec.fill_window_s / 2), 2)
    if kind.endswith("_cancel"):
        parent["cancel_after_s"] = end_at
    elif kind.endswith("_expire"):
        parent["expire_after_s"] = end_at
    elif kind == "rejected":
        parent["reject_after_s"] = round(rng.uniform(0.5, 30), 2)
    parent["take_profit"] = {"limit_price": str(_money(quote * Decimal(str(1 + rng.uniform(0.03, 0.08)))))}
    if rng.random() < spec.stop_loss_share:
        parent["stop_loss"] = {"stop_price": str(_money(quote * Decimal(str(1 - rng.uniform(0.03, 0.08)))))}
    return parent


def _fills(rng: random.Random, spec: ChaosSpec, kind: str, qty: int, quote: Decimal) -> list[dict[str, Any]]:
    if kind.startswith("unfilled") or kind == "rejected":
        return []
    total = qty if kind == "full" else rng.randint(1, qty - 1) if qty > 1 else 0
    if total == 0:
        return []
    parts = min(total, rng.choice([1, 1, 2, 2, 3, 4]))
    cuts = sorted(rng.sample(range(1, total), parts - 1)) if parts > 1 else []
    sizes = [b - a for a, b in zip([0, *cuts], [*cuts, total], strict=True)]
    times = sorted(round(rng.uniform(0.5, spec.fill_window_s), 2) for _ in sizes)
    # fills at the quote: the entry price the exits were set from, whatever the symbol does meanwhile
    return [{"after_s": t, "qty": str(q), "price": str(quote)} for t, q in zip(times, sizes, strict=True)]


def _infer_kind(parent: Mapping[str, Any]) -> str:
    filled = sum(Decimal(f["qty"]) for f in parent.get("fills", []))
    if "reject_after_s" in parent:
        return "rejected"
    ending = "cancel" if "cancel_after_s" in parent else "expire" if "expire_after_s" in parent else None
    if filled == 0:
        return f"unfilled_{ending or 'open'}"
    if filled == Decimal(parent["qty"]):
        return "full"
    return f"partial_{ending}" if ending else "partial_open"


def _faults(rng: random.Random, spec: ChaosSpec) -> dict[str, Any]:
    drops = sorted(round(rng.uniform(0.05, 0.95) * spec.submit_span_s, 1) for _ in range(4))
    return {
        "seed": spec.seed,
        "stream_drop_at_s": drops,
        "stream_drop_p": 0.0015,
        "drop_event_p": 0.02,
        "duplicate_event_p": 0.03,
        "reorder_event_p": 0.03,
        "http_5xx_p": 0.01,
        "http_429_p": 0.005 if spec.http_429 else 0.0,
        "http_429_burst": 2,
        "lost_response_p": 0.03,
    }


# the packaged chaos_small.yaml: faults but no kills, for `ordersync demo --scenario` (regenerate with main())
# every fault the chaos run injects, 429s included (the demo's conductor runs through them since it drives
# virtual time from the engine's start-up to the end of the run)
SMALL = ChaosSpec(seed=7, parents=100, symbols=12)
SMALL_HEADER = """A chaos scenario for `ordersync demo --scenario`. Generated by
python -m tools.chaos.generate --seed 7 --parents 100 --symbols 12 --out <this file>
100 protected parents (take-profit on all, stop-loss on some: OCO) with random partial fills, venue cancels,
expiries and rejections, price excursions through the exits, stream faults, HTTP 5xx, 429s and lost
responses. The full chaos run (`python -m tools.chaos`) adds 1,000 parents and SIGKILLs of the engine."""


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m tools.chaos.generate``: write one generated scenario as YAML."""
    parser = argparse.ArgumentParser(prog="python -m tools.chaos.generate")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--parents", type=int, default=1000)
    parser.add_argument("--symbols", type=int, default=24)
    parser.add_argument("--no-faults", action="store_true")
    parser.add_argument("--no-429", action="store_true", help="inject no HTTP 429s")
    parser.add_argument("--out", type=Path, required=True)
    ns = parser.parse_args(argv)
    spec = ChaosSpec(
        seed=ns.seed,
        parents=ns.parents,
        symbols=ns.symbols,
        faults=not ns.no_faults,
        http_429=not ns.no_429,
    )
    header = SMALL_HEADER if spec == SMALL else f"chaos scenario, {spec}"
    write_scenario(generate(spec), ns.out, header)


if __name__ == "__main__":
    main()
