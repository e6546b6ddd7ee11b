"""`ordersync demo` never hangs or crashes on a fault the scenario format allows, in any mode.

Each case replays one small scenario (three parents: a full fill, two partial fills, a partly filled entry
cancelled by the venue) with one kind of fault, through ``run_demo`` in-process, in all four modes, and
asserts the demo finishes with a summary judged from the simulator's books. Every run takes well under a
second of real time for the baselines and about two for safe mode; runs are shared between the assertions
of a case (module-scoped cache). A stalled demo fails with ``DemoStalled`` instead of hanging.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from ordersync.demo.conductor import Conductor, DemoClock, DemoStalled
from ordersync.demo.run import MODES, DemoOptions, run_demo
from ordersync.demo.summary import Summary
from ordersync.sim.clock import FlowingClock
from ordersync.sim.scenarios import Scenario, parse_scenario
from ordersync.sim.server import SimServer

STALL_S = 20.0  # a generous watchdog: a run that trips it has hung, not merely run slowly


def small_scenario(faults: dict[str, Any], name: str = "faults") -> Scenario:
    """Three parents: one full fill (OCO), two partial fills (take-profit only), a partial entry cancelled."""
    return parse_scenario(
        {
            "name": name,
            "start": "2025-10-10T15:59:00Z",
            "seed": 3,
            "symbols": {"OKE": {"price": "72.10"}, "KMI": {"price": "27.40"}, "ET": {"price": "17.10"}},
            "latency": {"ack_s": 0.05, "fill_s": 0.05, "cancel_s": 0.1},
            "parents": [
                {
                    "id": "p01",
                    "symbol": "KMI",
                    "qty": "50",
                    "type": "limit",
                    "limit_price": "27.41",
                    "submit_at_s": 5,
                    "fills": [{"after_s": 60, "qty": "20"}, {"after_s": 120, "qty": "30"}],
                    "take_profit": {"limit_price": "28.80"},
                },
                {
                    "id": "p02",
                    "symbol": "OKE",
                    "qty": "9",
                    "type": "limit",
                    "limit_price": "72.11",
                    "submit_at_s": 10,
                    "fills": [{"after_s": 30, "qty": "9"}],
                    "take_profit": {"limit_price": "76.00"},
                    "stop_loss": {"stop_price": "68.50"},
                },
                {
                    "id": "p03",
                    "symbol": "ET",
                    "qty": "100",
                    "type": "limit",
                    "limit_price": "17.11",
                    "submit_at_s": 20,
                    "fills": [{"after_s": 40, "qty": "60"}],
                    "cancel_after_s": 200,
                    "take_profit": {"limit_price": "18.00"},
                    "stop_loss": {"stop_price": "16.00"},
                },
            ],
            "faults": faults,
        }
    )


# the scenario's last event is at 220 s and the demo settles 600 s more: the final reconcile runs at ~820 s
CASES: dict[str, tuple[dict[str, Any], str]] = {
    "503_on_the_first_request": ({"on_request": [{"nth": 1, "fault": "503"}]}, "http_503"),
    "5xx_all_run": ({"http_5xx_p": 0.2}, "http_"),
    "5xx_through_the_end": ({"windows": [{"from_s": 700, "to_s": 1000, "http_5xx_p": 1.0}]}, "http_"),
    "429_bursts": ({"http_429_p": 0.05, "http_429_burst": 5}, "http_429"),
    "429_storm": ({"windows": [{"from_s": 30, "to_s": 120, "http_429_storm": True}]}, "http_429"),
    "lost_responses": ({"lost_response_p": 0.3}, "lost_response"),
    "stream_drop_duplicate_reorder": (
        {"drop_event_p": 0.2, "duplicate_event_p": 0.2, "reorder_event_p": 0.2},
        "stream_",
    ),
    "stream_disconnects": ({"stream_drop_at_s": [31, 65, 125]}, "stream_disconnect"),
}


@pytest.fixture(scope="module")
def demo_run() -> Iterator[Callable[[str, str], Summary]]:
    """`demo_run(case, mode)`: the summary of one run, each run once per module."""
    cache: dict[tuple[str, str], Summary] = {}

    def run(case: str, mode: str) -> Summary:
        if (case, mode) not in cache:
            faults, _ = CASES[case]
            options = DemoOptions(mode=mode, stall_s=STALL_S)
            cache[case, mode] = asyncio.run(run_demo(small_scenario(faults, case), options))
        return cache[case, mode]

    return run


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("mode", MODES)
def test_the_demo_finishes_with_a_summary_under_each_fault(
    demo_run: Callable[[str, str], Summary], case: str, mode: str
) -> None:
    summary = demo_run(case, mode)

    _, fault = CASES[case]
    assert summary.parents >= 2, summary  # a baseline may have lost a parent to the fault: never the demo
    assert summary.virtual_duration_s >= 800, "the demo ran to the scenario's end"
    assert summary.fill_to_protect_ms["n"], "the books were summarized"
    if mode == "safe":
        assert any(k.startswith(fault) for k in summary.faults), (
            f"no {fault} fault injected: {summary.faults}"
        )


@pytest.mark.parametrize("case", sorted(CASES))
def test_safe_mode_ends_with_every_filled_share_protected_once_under_each_fault(
    demo_run: Callable[[str, str], Summary], case: str
) -> None:
    summary = demo_run(case, "safe")

    figures = {
        "insufficient_qty_rejections": summary.insufficient_qty_rejections,
        "unprotected_qty": Decimal(summary.unprotected_qty),
        "overprotected_qty": Decimal(summary.overprotected_qty),
        "duplicate_submissions": summary.duplicate_submissions,
        "errors": len(summary.errors),
    }
    assert figures == dict.fromkeys(figures, 0), summary


def test_a_final_reconcile_refused_by_5xx_is_retried_until_the_broker_answers(
    demo_run: Callable[[str, str], Summary],
) -> None:
    summary = demo_run("5xx_through_the_end", "safe")

    # every request from 700 s to 1000 s failed, and the final read came at ~820 s: it waited them out
    assert summary.virtual_duration_s > 1000 - 1, summary
    assert summary.errors == []
    assert summary.discrepancies == 0, summary


# -- the watchdog ------------------------------------------------------------------------------------------


def test_a_demo_that_makes_no_progress_fails_with_a_clear_message_instead_of_hanging() -> None:
    started = time.monotonic()

    with pytest.raises(DemoStalled, match=r"demo stalled: no step of virtual time for .*safe mode"):
        asyncio.run(run_demo(small_scenario({}), DemoOptions(mode="safe", stall_s=1e-6)))

    assert time.monotonic() - started < 30, "the watchdog ended the run"


@pytest.mark.parametrize(
    ("busy", "why"),
    [(True, "never became quiet"), (False, "nothing is scheduled")],
)
def test_the_conductor_raises_when_virtual_time_cannot_move(busy: bool, why: str) -> None:
    scenario = parse_scenario({"symbols": {"OKE": {"price": "72.10"}}})
    start = datetime(2025, 10, 10, 15, 59, tzinfo=UTC)

    async def conduct() -> None:
        with SimServer(scenario, FlowingClock(start), api_key="k", secret_key="s") as server:
            conductor = Conductor(server, DemoClock(server), lambda: busy, stall_s=0.3)
            await conductor.run()

    with pytest.raises(DemoStalled, match=why):
        asyncio.run(asyncio.wait_for(conduct(), timeout=20))


def test_the_conductor_wakes_a_sleeper_without_waiting_in_real_time() -> None:
    scenario = parse_scenario({"symbols": {"OKE": {"price": "72.10"}}})
    start = datetime(2025, 10, 10, 15, 59, tzinfo=UTC)

    async def sleep_an_hour() -> timedelta:
        with SimServer(scenario, FlowingClock(start), api_key="k", secret_key="s") as server:
            clock = DemoClock(server)
            conducting = asyncio.create_task(Conductor(server, clock, lambda: False, stall_s=5).run())
            before = clock.now()
            await clock.sleep(3600)
            conducting.cancel()
            return clock.now() - before

    assert asyncio.run(asyncio.wait_for(sleep_an_hour(), timeout=20)) >= timedelta(hours=1)
