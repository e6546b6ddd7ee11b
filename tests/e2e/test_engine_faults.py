"""Bounded delay under faults (docs/architecture.md §2, invariant 9): every fill is protected within 2x
the poll interval,
plus the duration of the fault that made it impossible, whatever the stream and the HTTP side do.

Each case runs the engine against the in-process simulator through alpaca-py, in virtual time (see
``inprocess.run_virtual``): twelve parents on twelve symbols, each filled in three lots over six minutes,
a take-profit and a stop-loss on each, Alpaca's 200 requests/min, the engine's default intervals (poll
every 2 s, stream silence after 60 s, reconcile every 60 s). The judge is the simulator's books: each
execution's venue time against the ``submitted_at`` of the children that cover it, and, at the end,
every parent covered exactly (nothing duplicated, nothing over-protected), with no 40310000.

Print the figures with ``pytest tests/e2e/test_engine_faults.py -s``.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from inprocess import (
    VirtualRun,
    exposure,
    fill_to_protect,
    percentile,
    run_virtual,
    virtual_scenario,
)

from ordersync.brokers.alpaca.budget import BURST_429_CAP_S
from ordersync.engine import EngineOptions

OPTIONS = EngineOptions()  # production defaults: poll 2 s, silence 60 s, reconcile 60 s
BOUND_S = 2 * OPTIONS.poll_interval_s


def parents(count: int = 12) -> list[dict[str, Any]]:
    """``count`` parents, one symbol each, submitted every 5 s, each filled in three staggered lots.

    One symbol per parent: two entries on one symbol beside our own live exits would meet Alpaca's
    wash-trade refusal, a different matter (own-order conflicts) from the faults under test here.
    """
    result = []
    for n in range(count):
        first = 7 + (11 * n) % 53
        result.append(
            {
                "id": f"f{n:02d}",
                "symbol": f"S{n:02d}",
                "qty": "30",
                "submit_at_s": 5 * n,
                "fills": [
                    {"after_s": first, "qty": "10"},
                    {"after_s": first + 41 + 7 * (n % 5), "qty": "10"},
                    {"after_s": first + 160 + 13 * (n % 7), "qty": "10"},
                ],
                "take_profit": {"limit_price": "55.00"},
                "stop_loss": {"stop_price": "45.00"},
            }
        )
    return result


PARENTS = parents()
PARENT_IDS = {p["id"] for p in PARENTS}
SYMBOLS = {p["symbol"]: "50.00" for p in PARENTS}


async def run_case(
    tmp_path: Path,
    faults: dict[str, Any] | None,
    *,
    stream: str = "up",
    count: int = len(PARENTS),
    rate_limit_per_min: int = 200,
    **kw: Any,
) -> VirtualRun:
    scenario = virtual_scenario(
        "faults", PARENTS[:count], faults, symbols=SYMBOLS, rate_limit_per_min=rate_limit_per_min
    )
    return await run_virtual(scenario, tmp_path / "faults.db", options=OPTIONS, stream=stream, **kw)


def check(run: VirtualRun, case: str, extra_s: float = 0.0, count: int = len(PARENTS)) -> list[float]:
    """Assert the bound and exact coverage from the books; print and return the waits (seconds)."""
    parent_ids = {p["id"] for p in PARENTS[:count]}
    samples = fill_to_protect(run.books, parent_ids)
    assert len(samples) == 3 * count, f"{case}: every planned fill must have happened"
    never = [s for s in samples if s.wait_s is None]
    assert not never, f"{case}: fills never protected: {never[:3]}"
    waits = [s.wait_s for s in samples if s.wait_s is not None]
    worst = max(samples, key=lambda s: s.wait_s or 0.0)
    print(
        f"\n{case}: fill->protect max {max(waits):.2f} s, p99 {percentile(waits, 0.99):.2f} s, "
        f"p50 {percentile(waits, 0.5):.2f} s over {len(waits)} fills; {run.requests_per_min:.0f} req/min "
        f"({run.requests} in {run.virtual_s:.0f} s virtual), 429s {run.rate_limited}, "
        f"missed fills read {run.missed_fills_read}"
    )
    assert max(waits) <= BOUND_S + extra_s, (
        f"{case}: {worst.parent}'s fill at {worst.at} waited {worst.wait_s:.2f} s for protection, "
        f"more than 2 x poll interval ({BOUND_S} s) + the fault's {extra_s} s"
    )
    for pid, (filled, covered, sent) in exposure(run.books, parent_ids).items():
        assert filled == Decimal(30), f"{case}: {pid} filled {filled}"
        assert covered == filled, f"{case}: {pid} covered {covered} of {filled}"
        assert sent == filled, f"{case}: {pid} children sent for {sent} shares, filled {filled}"
    rejections = run.books["counters"]["rejections"]["by_code"]
    assert "40310000" not in rejections, f"{case}: insufficient-qty refusals {rejections}"
    assert run.final.discrepancies == [], f"{case}: the final reconciliation found {run.final.discrepancies}"
    assert run.final.corrections == 0, f"{case}: the store was still behind the broker at the end"
    noise = {"position_drift", "stuck_unknown", "missing_at_broker", "unprotected_position"}
    assert not noise & set(run.alerts()), f"{case}: alerts raised {sorted(run.alerts())}"
    assert run.requests_per_min <= 200, f"{case}: {run.requests_per_min:.0f} requests/min"
    return waits


async def test_fill_events_dropped_on_a_live_stream_are_noticed_from_the_fill_activities(
    tmp_path: Path,
) -> None:
    faults = {"drop_event_p": 0.3, "duplicate_event_p": 0.1, "reorder_event_p": 0.1}
    run = await run_case(tmp_path, faults)
    check(run, "lossy stream (30% dropped, 10% duplicated, 10% reordered)")
    assert run.missed_fills_read > 0, "some fills must have been learned from the activities, not the stream"
    assert run.books["counters"]["faults"].get("stream_drop", 0) > 0


async def test_a_silent_stream_delays_no_fill(tmp_path: Path) -> None:
    run = await run_case(tmp_path, {"drop_event_p": 1.0})
    check(run, "silent stream (every event dropped)")


async def test_a_stream_that_never_connects_delays_no_fill(tmp_path: Path) -> None:
    run = await run_case(tmp_path, None, stream="down")
    check(run, "stream down all along")


async def test_lost_post_responses_are_settled_by_lookup_within_seconds(tmp_path: Path) -> None:
    faults = {"lost_response_p": 0.12, "seed": 5}
    run = await run_case(tmp_path, faults)
    check(run, "12% of POST responses lost")
    assert run.books["counters"]["faults"].get("lost_response", 0) > 0
    unknown = {e.client_order_id: e.ts for e in run.journal if e.kind == "submit_unknown"}
    settled = {e.client_order_id: e.ts for e in run.journal if e.kind == "submit_settled"}
    assert unknown, "some POST responses must have been lost"
    assert set(unknown) <= set(settled), "every unknown submit is settled"
    took = {coid: (settled[coid] - at).total_seconds() for coid, at in unknown.items()}
    print(f"lost POSTs settled by lookup in at most {max(took.values()):.2f} s ({len(took)} of them)")
    assert max(took.values()) <= 2.0, f"a lost POST waited more than seconds to be settled: {took}"


async def test_a_429_storm_on_post_orders_costs_its_own_length_not_a_minute_per_429(tmp_path: Path) -> None:
    burst = 4
    faults = {"http_429_p": 0.15, "http_429_burst": burst, "routes": ["POST /v2/orders"], "seed": 3}
    run = await run_case(tmp_path, faults)
    # the storm's own length, from the journal: a child's first POST to its last 429, plus the last wait
    first_sent: dict[str, Any] = {}
    last_429: dict[str, Any] = {}
    for e in run.journal:
        if e.kind == "submit_sent" and "~" in str(e.client_order_id):
            first_sent.setdefault(e.client_order_id, e.ts)
        elif e.kind == "submit_rate_limited" and "~" in str(e.client_order_id):
            last_429[e.client_order_id] = e.ts
    storm_s = max((at - first_sent[c]).total_seconds() for c, at in last_429.items()) + BURST_429_CAP_S
    print(f"longest 429 storm on one child POST: {storm_s:.2f} s")
    assert storm_s < 15, "429s with budget left must cost seconds (0.25 s doubling to 1 s), never minutes"
    check(run, f"429 storms ({burst} in a row) on POST /v2/orders", extra_s=storm_s)
    assert run.rate_limited > 0


async def test_5xx_at_start_up_and_at_the_end_neither_hang_nor_crash(tmp_path: Path) -> None:
    # the first three requests (the start-up read) fail, then the final reconciliation's first two
    faults = {"on_request": [{"nth": 1, "count": 3, "fault": "503"}]}
    run = await run_case(
        tmp_path, faults, final_faults={"on_request": [{"nth": 1, "count": 2, "fault": "503"}]}
    )
    check(run, "5xx at start-up and at the end")
    assert any(e.kind == "reconciled" for e in run.journal), "the start-up read happened after the 5xx"


@pytest.mark.parametrize("faults", [{"http_5xx_p": 0.05, "lost_response_p": 0.05, "drop_event_p": 0.2}])
async def test_mixed_weather(tmp_path: Path, faults: dict[str, Any]) -> None:
    run = await run_case(tmp_path, {**faults, "seed": 9})
    # a 5xx on a child POST costs the lookups that prove it never arrived (2 misses, 1 s apart)
    check(run, "mixed: 5% 5xx, 5% lost POSTs, 20% dropped events", extra_s=3.0)


async def test_a_short_budget_spends_its_last_requests_on_protection(tmp_path: Path) -> None:
    # 100 requests/min for an engine with its stream down: the FILL-activities poll (30/min) and the
    # children (a position read and a POST per fill) go first; catch-up reads and reconciliations wait
    run = await run_case(tmp_path, None, stream="down", rate_limit_per_min=100, requests_per_minute=100)
    check(run, "stream down on a 100 requests/min budget")
    assert run.budget_waited_s > 0, "the budget must have been short for this to prove anything"
