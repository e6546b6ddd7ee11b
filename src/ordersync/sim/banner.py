"""What `ordersync sim serve` prints on start: everything a person needs to point a client at it.

A newcomer should not have to read the source to learn the REST base URL, the stream URL, which keys are
accepted, which symbols exist at which price, how time moves and where the control API is (issue: "Using the
simulator by hand needs the source"). The banner is plain text for a terminal, written to stderr so stdout
stays free; it never shows a secret (secret keys are named by where they come from, not printed)."""

from __future__ import annotations

from .simulator import Simulator
from .wire import fmt_decimal, fmt_time

__all__ = ["startup_banner"]

SHOWN_ACCOUNTS = 5  # accounts listed one per line; the rest are counted


def startup_banner(sim: Simulator, host: str, port: int, clock_spec: str, keys_from_env: bool) -> str:
    """The human-readable start-up text for a simulator serving on host:port."""
    base = f"http://{host}:{port}"
    market = "NYSE calendar (market.calendar)" if sim.scenario.market.calendar else "always open"
    lines = [
        f"ordersync simulator: scenario {sim.scenario.name!r}",
        f'  REST base URL  {base}   (alpaca-py: TradingClient(key, secret, url_override="{base}"))',
        f"  stream URL     ws://{host}:{port}/stream   (TradingStream(key, secret, url_override=...))",
        *_key_lines(sim, keys_from_env),
        f"  clock          {_clock_text(clock_spec)}; now {fmt_time(sim.clock.now())}; market {market}",
        f"  control API    {base}/sim/ (no keys): GET state, clock, accounts, faults; POST price, fill, "
        "clock/advance, faults, ratelimit, stream/disconnect",
        f"  rate limit     {sim.scenario.rate_limit_per_min} requests/min per key",
        f"  symbols        {_symbols_text(sim)}",
        "  fills          at the last price, which moves only along the scenario's `prices` and on POST "
        "/sim/price; a limit that is not marketable waits for a move; an order whose client_order_id is a "
        f"scenario parent's id ({_parents_text(sim)}) fills by that parent's plan",
        "  docs           docs/simulator.md (driving it by hand), docs/scenarios.md (scenario files)",
    ]
    return "\n".join(lines) + "\n"


def _key_lines(sim: Simulator, keys_from_env: bool) -> list[str]:
    if not sim.multi_account:
        if keys_from_env:
            return ["  keys           only the pair in APCA_API_KEY_ID / APCA_API_SECRET_KEY"]
        return ["  keys           any non-empty pair (APCA-API-KEY-ID / APCA-API-SECRET-KEY headers)"]
    accounts = sim.accounts
    lines = [
        f"  keys           {len(accounts)} accounts: the APCA-API-KEY-ID header (the stream's key_id) picks "
        "the account; each takes only its own pair from the scenario (docs/scenarios.md, 'accounts')"
    ]
    lines += [f"                 {a.name}: key id {a.key_id}" for a in accounts[:SHOWN_ACCOUNTS]]
    if len(accounts) > SHOWN_ACCOUNTS:
        lines.append(f"                 ... and {len(accounts) - SHOWN_ACCOUNTS} more (GET /sim/accounts)")
    if sim.scenario.accounts is not None and not isinstance(sim.scenario.accounts, list):
        lines.append(
            "                 (generated accounts: key id = the name, secret = the name + '-secret')"
        )
    if keys_from_env:
        lines.append(
            "                 (APCA_API_KEY_ID / APCA_API_SECRET_KEY are ignored: the scenario lists keys)"
        )
    return lines


def _clock_text(clock_spec: str) -> str:
    spec = clock_spec.strip().lower()
    if spec == "stepped":
        return "stepped (time moves only on POST /sim/clock/advance)"
    if spec == "flowing":
        return "flowing (real speed, jumps forward on POST /sim/clock/advance)"
    if spec.startswith("fast:"):
        return f"fast ({spec.removeprefix('fast:')} virtual seconds per real second)"
    return "real time"


def _symbols_text(sim: Simulator) -> str:
    symbols = sim.market_symbols()
    return "  ".join(f"{s.symbol} {fmt_decimal(s.price)} ({s.exchange})" for s in symbols)


def _parents_text(sim: Simulator) -> str:
    ids = [p.id for p in sim.scenario.parents]
    if not ids:
        return "none in this scenario"
    return ", ".join(ids) if len(ids) <= 4 else f"{ids[0]} .. {ids[-1]}"
