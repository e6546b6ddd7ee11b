"""The request budget with the stream down, on the simulator (docs/architecture.md §5, §12): fills are
applied from the FILL activities poll within the poll interval's bound, and the broker counts at most
60 requests a minute (its own ``/sim/state`` counters), in virtual time (a few real seconds).

Print the figures with ``pytest tests/e2e/test_poll_budget_e2e.py -s``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from inprocess import fill_to_protect, percentile, run_virtual, virtual_scenario

from ordersync.engine import EngineOptions

OPTIONS = EngineOptions()  # production defaults: poll 2 s, poller budget 42/min, reconcile 60 s
TARGET_PER_MIN = 60.0


def parents(count: int) -> list[dict[str, Any]]:
    """``count`` parents on their own symbols, all submitted at once, each filled whole ~18 s apart."""
    return [
        {
            "id": f"b{n:02d}",
            "symbol": f"S{n:02d}",
            "qty": "10",
            "submit_at_s": 0,
            "fills": [{"after_s": 20 + 18 * n + (7 * n) % 5, "qty": "10"}],
            "take_profit": {"limit_price": "55.00"},
            "stop_loss": {"stop_price": "45.00"},
        }
        for n in range(count)
    ]


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_with_the_stream_down_fills_come_from_activities_in_time_and_the_budget_holds(
    tmp_path: Path,
) -> None:
    plans = parents(6)
    ids = {p["id"] for p in plans}
    symbols = {p["symbol"]: "50.00" for p in plans}
    scenario = virtual_scenario("budget", plans, symbols=symbols)

    run = await run_virtual(scenario, tmp_path / "budget.db", options=OPTIONS, stream="down", tail_s=40.0)

    venue = {
        o["client_order_id"]: ts(o["sim"]["executions"][0]["at"])
        for o in run.books["orders"]
        if o["client_order_id"] in ids and o["sim"]["executions"]
    }
    assert set(venue) == ids, "every planned fill happened"
    applied: dict[str, datetime] = {}
    for e in run.journal:
        done = e.payload.get("outcome") == "applied" and str(e.payload.get("filled_qty")) == "10"
        if e.kind == "observed" and e.client_order_id in ids and done:
            applied.setdefault(str(e.client_order_id), e.ts)
    stale = [(applied[c] - venue[c]).total_seconds() for c in sorted(ids)]
    missed = {e.client_order_id for e in run.journal if e.kind == "fill_missed"}
    waits = [s.wait_s for s in fill_to_protect(run.books, ids)]
    print(
        f"\nstream down: {run.requests_per_min:.0f} requests/min ({run.requests} in {run.virtual_s:.0f} s), "
        f"staleness max {max(stale):.2f} s, p50 {percentile(stale, 0.5):.2f} s; "
        f"fill->protect max {max(w or 0.0 for w in waits):.2f} s; "
        f"by endpoint {run.books['counters']['requests']}"
    )
    assert missed == ids, "each fill was noticed from the activities (the stream never delivered one)"
    poll = OPTIONS.poll_interval_s
    assert percentile(stale, 0.5) <= poll, f"staleness {stale}"
    assert max(stale) <= 2 * poll, f"staleness {stale}: beyond invariant 9's bound"
    assert all(w is not None and w <= 2 * poll for w in waits), f"fill->protect {waits}"
    assert run.requests_per_min <= TARGET_PER_MIN, f"{run.requests_per_min:.0f} requests/min"
    assert run.rate_limited == 0
