"""The demo's baselines, judged from the simulator's books: naive carries on, the poller, Alpaca brackets.

Every run is ``run_demo`` in-process on a small scenario (under a second of real time each), shared between
the assertions that read it (module-scoped cache).

- naive: the seed's platform logged every error and kept going; so must the baseline, on a refused parent
  (403 40310000), a 504, a 429 and a failed read, writing each error in the seed's log format.
- poller: children only after a polled fill, sized to the newly filled quantity, one OCO for both exits; no
  40310000 from premature children.
- bracket: Alpaca holds the legs until the entry *completely* fills and sizes them to the entry's full
  quantity, and ends them with a cancelled entry. The two tests named for the weak cases pin that: a partial
  fill waits unprotected until the entry completes; a cancelled partial entry leaves its shares unprotected.
  On the market calendar (the comparison's close fixture) a DAY bracket's legs expire at the close, even those
  of an entry that filled completely.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ordersync.demo.run import DemoOptions, run_demo
from ordersync.demo.summary import Summary
from ordersync.forensics import analyze_paths
from ordersync.sim.scenarios import Scenario, load_scenario, parse_scenario

POLL_S = 5.0
FIXTURES = Path(__file__).parents[1] / "fixtures" / "scenarios"


@dataclass
class Run:
    """One demo run: its summary, the simulator's final books and the platform's log."""

    summary: Summary
    books: dict[str, Any]
    log_path: Path | None
    orders: list[dict[str, Any]] = field(init=False)

    def __post_init__(self) -> None:
        self.orders = list(self.books["orders"])

    @property
    def log(self) -> str:
        return self.log_path.read_text() if self.log_path else ""

    def one(self, coid: str) -> dict[str, Any]:
        found = [o for o in self.orders if o["client_order_id"] == coid]
        assert len(found) == 1, f"expected one order {coid!r}, found {len(found)}"
        return found[0]

    def legs(self, coid: str) -> list[dict[str, Any]]:
        entry = self.one(coid)
        return [o for o in self.orders if o["sim"]["group_id"] == entry["id"] and o["id"] != entry["id"]]

    def children(self, parent: str) -> list[dict[str, Any]]:
        return [o for o in self.orders if o["client_order_id"].startswith(f"{parent}~")]


def _parent(pid: str, symbol: str, qty: str, limit: str, **more: Any) -> dict[str, Any]:
    return {"id": pid, "symbol": symbol, "qty": qty, "type": "limit", "limit_price": limit, **more}


SYMBOLS = {
    "OKE": {"price": "72.10"},
    "KMI": {"price": "27.40"},
    "ET": {"price": "17.10"},
    "WMB": {"price": "61.90"},
}
OCO = {"take_profit": {"limit_price": "76.00"}, "stop_loss": {"stop_price": "68.50"}}

# naive: p00 is a sell with no shares (refused 403 40310000), p01's POST answers 504, p02's 429, and the
# first poll read 503; p03 must still be sent, with its take-profit
NAIVE_WEATHER: dict[str, Any] = {
    "name": "naive-weather",
    "start": "2025-10-10T15:59:00Z",
    "symbols": SYMBOLS,
    "parents": [
        {
            **_parent("p00", "WMB", "5", "61.80", side="sell", submit_at_s=1),
            "take_profit": {"limit_price": "58"},
        },
        {**_parent("p01", "KMI", "50", "27.41", submit_at_s=5, fills=[{"after_s": 60, "qty": "50"}])}
        | {"take_profit": {"limit_price": "28.80"}},
        {**_parent("p02", "OKE", "9", "72.11", submit_at_s=10, fills=[{"after_s": 30, "qty": "9"}]), **OCO},
        _parent(
            "p03",
            "ET",
            "100",
            "17.11",
            submit_at_s=20,
            fills=[{"after_s": 40, "qty": "60"}, {"after_s": 100, "qty": "40"}],
            take_profit={"limit_price": "18.00"},
        ),
    ],
    "faults": {
        "on_request": [
            {"nth": 2, "fault": "504", "method": "POST", "path": "/v2/orders"},  # p01 (p00 was #1)
            # each rule counts only the requests no earlier rule took: p00, then p02
            {"nth": 2, "fault": "429", "method": "POST", "path": "/v2/orders"},
            {"nth": 1, "fault": "503", "method": "GET", "path": "/v2/orders:by_client_order_id"},
        ]
    },
}

# brackets and the poller: b01 fills 40 then (540 s later) 60; b02 fills 60 and the venue cancels the rest;
# b03 fills at once in full (where a bracket is the right tool)
PARTIALS: dict[str, Any] = {
    "name": "partials",
    "start": "2025-10-10T15:59:00Z",
    "latency": {"ack_s": 0.05, "fill_s": 0.05, "cancel_s": 0.1},
    "symbols": SYMBOLS,
    "parents": [
        _parent(
            "b01",
            "OKE",
            "100",
            "72.11",
            submit_at_s=10,
            fills=[{"after_s": 60, "qty": "40"}, {"after_s": 600, "qty": "60"}],
            **OCO,
        ),
        _parent(
            "b02",
            "KMI",
            "100",
            "27.41",
            submit_at_s=10,
            fills=[{"after_s": 60, "qty": "60"}],
            cancel_after_s=300,
            take_profit={"limit_price": "28.80"},
            stop_loss={"stop_price": "26.00"},
        ),
        _parent(
            "b03",
            "ET",
            "50",
            "17.11",
            submit_at_s=10,
            fills=[{"after_s": 30, "qty": "50"}],
            take_profit={"limit_price": "18.00"},
        ),
    ],
}
# a DAY bracket partly filled when the venue expires its remainder (as at the close)
EXPIRY: dict[str, Any] = {
    "name": "expiry",
    "start": "2025-10-10T15:59:00Z",
    "symbols": SYMBOLS,
    "parents": [
        _parent(
            "d01",
            "WMB",
            "50",
            "61.91",
            time_in_force="day",
            submit_at_s=5,
            fills=[{"after_s": 30, "qty": "30"}],
            expire_after_s=200,
            take_profit={"limit_price": "64.50"},
            stop_loss={"stop_price": "59.00"},
        )
    ],
}
SCENARIOS = {"naive-weather": NAIVE_WEATHER, "partials": PARTIALS, "expiry": EXPIRY}
# the comparison's fixture on the market calendar (docs/comparison.md): Friday 15:00 ET, close at 16:00
# and the one where a person edits our exits (PATCH), then the price meets the edited stops
FIXTURE_FILES = {
    "close": FIXTURES / "compare_partial_entry_expires_at_close.yaml",
    "edited": FIXTURES / "compare_exit_edited_by_hand.yaml",
}


def _scenario(name: str) -> Scenario:
    return load_scenario(FIXTURE_FILES[name]) if name in FIXTURE_FILES else parse_scenario(SCENARIOS[name])


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str, str], Run]]:
    """`demo(scenario, mode)`: one run per module, with its books and (baselines) its platform log."""
    cache: dict[tuple[str, str], Run] = {}
    workdir = tmp_path_factory.mktemp("modes")

    def run(scenario: str, mode: str) -> Run:
        if (scenario, mode) not in cache:
            log = workdir / f"{scenario}-{mode}.log" if mode != "safe" else None
            books: list[dict[str, Any]] = []
            options = DemoOptions(mode=mode, log_path=log, poller_interval_s=POLL_S, stall_s=20)
            summary = asyncio.run(run_demo(_scenario(scenario), options, None, books.append))
            cache[scenario, mode] = Run(summary, books[0], log)
        return cache[scenario, mode]

    return run


# -- naive carries on ---------------------------------------------------------------------------------------


def test_naive_logs_a_refused_parent_a_504_a_429_and_a_failed_read_and_carries_on(
    demo: Callable[[str, str], Run],
) -> None:
    run = demo("naive-weather", "naive")

    errors = [line for line in run.log.splitlines() if " - AlpacaAccount - ERROR - " in line]
    assert any("client_order_id=p00" in e and "40310000" in e for e in errors), run.log
    assert any("client_order_id=p01" in e and "504" in e for e in errors), run.log
    assert any("client_order_id=p02" in e and "429" in e for e in errors), run.log
    assert any(e.split(" - ERROR - ")[1].startswith("Error fetching order from Alpaca: ") for e in errors)
    # the platform went on: the last parent was sent and its take-profit tried (the seed's mistake)
    assert run.one("p03")["status"] == "filled"
    assert "Successfully submitted order to Alpaca: broker_order_id=" in run.log
    assert any(o["client_order_id"].startswith("naive-p03-tp-") for o in run.orders)
    assert run.summary.faults == {"http_504": 1, "http_429": 1, "http_503": 1}


def test_naive_log_under_faults_reads_back_through_the_analyzer(demo: Callable[[str, str], Run]) -> None:
    run = demo("naive-weather", "naive")
    assert run.log_path is not None
    report = analyze_paths([run.log_path])

    # the 40310000 refusals (p00 and the premature take-profits) are the issues; 5xx/429 lines are not
    assert report.summary.issues == run.summary.insufficient_qty_rejections


# -- the poller --------------------------------------------------------------------------------


def test_poller_sends_exits_only_after_a_polled_fill_sized_to_the_new_fill(
    demo: Callable[[str, str], Run],
) -> None:
    run = demo("partials", "poller")

    b01 = run.one("b01")
    sizes = sorted(Decimal(c["qty"]) for c in run.children("b01") if c["sim"]["role"] != "stop_loss")
    assert sizes == [Decimal(40), Decimal(60)], "one exit per polled fill, sized to it"
    first_fill = b01["sim"]["executions"][0]["at"]
    assert all(c["submitted_at"] > first_fill for c in run.children("b01")), "no child before a fill"
    assert all(c["order_class"] == "oco" for c in run.children("b01") if c["sim"]["role"] == "take_profit")
    assert Decimal(run.summary.unprotected_qty) == 0
    assert run.summary.insufficient_qty_rejections == 0
    assert run.summary.broker_rejections == 0


def test_poller_protects_each_fill_within_about_one_poll_interval(demo: Callable[[str, str], Run]) -> None:
    run = demo("partials", "poller")

    latency = run.summary.fill_to_protect_ms
    assert latency["n"] == 4
    assert latency["max"] is not None
    assert latency["max"] <= 2 * POLL_S * 1000, latency


def test_poller_protects_a_cancelled_partial_entry(demo: Callable[[str, str], Run]) -> None:
    run = demo("partials", "poller")

    assert run.one("b02")["status"] == "canceled"
    assert sum(Decimal(c["qty"]) for c in run.children("b02") if c["sim"]["role"] != "stop_loss") == 60


# -- Alpaca brackets --------------------------------------------------------------------------------


def test_bracket_mode_sends_one_bracket_per_parent_and_nothing_else(demo: Callable[[str, str], Run]) -> None:
    run = demo("partials", "bracket")

    requests = run.books["counters"]["requests"]
    assert requests == {"POST /v2/orders": 3}
    assert run.one("b01")["order_class"] == "bracket"
    assert run.one("b03")["order_class"] == "oto"


def test_bracket_legs_are_sized_to_the_entrys_full_quantity(demo: Callable[[str, str], Run]) -> None:
    run = demo("partials", "bracket")

    assert {Decimal(leg["qty"]) for leg in run.legs("b01")} == {Decimal(100)}
    assert {leg["sim"]["role"] for leg in run.legs("b01")} == {"take_profit", "stop_loss"}


def test_bracket_mode_a_partial_fill_waits_unprotected_until_the_entry_completes(
    demo: Callable[[str, str], Run],
) -> None:
    bracket, poller = demo("partials", "bracket"), demo("partials", "poller")

    # b01's first 40 shares filled 540 s before the rest: the legs stayed held all that time
    assert bracket.summary.fill_to_protect_ms["max"] is not None
    assert bracket.summary.fill_to_protect_ms["max"] >= 540_000 - 1
    assert Decimal(bracket.summary.unprotected_share_s) >= 40 * 540
    assert Decimal(bracket.summary.unprotected_share_s) > 100 * Decimal(poller.summary.unprotected_share_s)


def test_bracket_mode_a_cancelled_partial_entry_leaves_its_shares_unprotected(
    demo: Callable[[str, str], Run],
) -> None:
    run = demo("partials", "bracket")

    b02 = run.one("b02")
    assert (b02["status"], b02["filled_qty"]) == ("canceled", "60")
    assert {leg["status"] for leg in run.legs("b02")} == {"canceled"}, "the legs ended with the entry"
    assert Decimal(run.summary.unprotected_qty) == 60, "b02's 60 shares have no exit at the end"


def test_bracket_mode_protects_a_single_full_fill_at_once(demo: Callable[[str, str], Run]) -> None:
    run = demo("partials", "bracket")

    b03 = run.one("b03")
    (leg,) = run.legs("b03")
    assert leg["status"] in ("new", "filled"), "the take-profit went live when the entry filled"
    assert leg["qty"] == b03["filled_qty"] == "50"


def test_safe_mode_protects_what_brackets_leave_unprotected(demo: Callable[[str, str], Run]) -> None:
    run = demo("partials", "safe")

    assert Decimal(run.summary.unprotected_qty) == 0
    assert Decimal(run.summary.overprotected_qty) == 0
    assert Decimal(run.summary.unprotected_share_s) < Decimal(
        demo("partials", "bracket").summary.unprotected_share_s
    )


def test_bracket_mode_an_expired_partial_entry_leaves_its_shares_unprotected(
    demo: Callable[[str, str], Run],
) -> None:
    run = demo("expiry", "bracket")

    d01 = run.one("d01")
    assert (d01["status"], d01["filled_qty"]) == ("expired", "30")
    assert {leg["status"] for leg in run.legs("d01")} == {"expired"}
    assert Decimal(run.summary.unprotected_qty) == 30


def test_bracket_mode_at_the_close_every_days_legs_expire_and_the_filled_shares_stay_bare(
    demo: Callable[[str, str], Run],
) -> None:
    run = demo("close", "bracket")
    close = "2025-10-10T20:00:00"  # 16:00 ET

    # p01: a DAY entry 60 of 100 filled at the close; its held legs expire with it
    p01 = run.one("p01")
    assert (p01["status"], p01["filled_qty"]) == ("expired", "60")
    assert p01["expired_at"].startswith(close)
    assert {leg["status"] for leg in run.legs("p01")} == {"expired"}
    # p02: a GTC entry the venue cancelled 25 of 60 filled: its legs were never armed, they end with it
    p02 = run.one("p02")
    assert (p02["status"], p02["filled_qty"]) == ("canceled", "25")
    assert {leg["status"] for leg in run.legs("p02")} == {"canceled"}
    # p03: a DAY entry that filled completely: its legs were armed, but they are DAY too
    p03 = run.one("p03")
    assert (p03["status"], p03["filled_qty"]) == ("filled", "50")
    legs = run.legs("p03")
    assert all(leg["status"] == "expired" and leg["expired_at"].startswith(close) for leg in legs), legs
    # every filled share goes into the weekend with no exit
    assert Decimal(run.summary.unprotected_qty) == 60 + 25 + 50
    assert run.books["counters"]["requests"] == {"POST /v2/orders": 3}
    # the run ends at the scenario's end (7,200 s + settle), not at the simulator's next timer (the
    # after-hours end, 20:00 ET), which the conductor used to jump to while the demo read its books
    assert run.summary.virtual_duration_s < 7200 + 600 + 60


def test_an_exit_a_person_replaced_stays_the_parents_exit_in_the_summary(
    demo: Callable[[str, str], Run],
) -> None:
    run = demo("edited", "poller")

    # the OCO's take-profit root was PATCHed: the replacement has a new id and client_order_id, and the
    # summary follows its `replaces` chain back to p01's exit (it counted p01's 20 shares bare before)
    (old,) = [c for c in run.children("p01") if c["sim"]["role"] == "take_profit"]
    (new,) = [o for o in run.orders if o.get("replaces") == old["id"]]
    assert (old["status"], new["limit_price"]) == ("replaced", "77")
    # the edited stop (70.00, not 68.50) sold p01's shares when the price fell to 69.90
    (stop,) = [o for o in run.orders if o["sim"]["group_id"] == new["id"] and o["id"] != new["id"]]
    assert (stop["stop_price"], stop["status"], stop["filled_qty"]) == ("70", "filled", "20")
    assert Decimal(run.summary.unprotected_qty) == 0
    assert Decimal(run.summary.unprotected_share_s) < 200


def test_bracket_mode_arms_the_legs_a_person_edited_while_they_were_held(
    demo: Callable[[str, str], Run],
) -> None:
    run = demo("edited", "bracket")

    # p02's stop was tightened to 60.50 while its legs were held (10 of 30 filled): the edited stop armed
    # when the entry completed, and sold all 30 when the price fell to 60.40
    stops = [leg for leg in run.legs("p02") if leg["sim"]["role"] == "stop_loss"]
    edited = [(s["stop_price"], s["status"], s["filled_qty"]) for s in stops]
    assert sorted(edited) == [("59", "replaced", "0"), ("60.5", "filled", "30")]
    # the weak case again: the first 10 shares waited 1,680 s for the rest of the entry
    assert Decimal(run.summary.unprotected_share_s) >= 10 * 1680
