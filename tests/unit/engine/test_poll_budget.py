"""The poller's request budget with the stream down: fills found by the FILL activities poll, full catch-ups
paced inside ``poll_budget_per_min`` (docs/architecture.md §5, §12)."""

from __future__ import annotations

import itertools
from datetime import datetime
from decimal import Decimal

from engine_harness import EngineHarness
from fake_broker import FakeBroker

from ordersync.domain.order import OrderRole, OrderStatus
from ordersync.engine import EngineOptions
from ordersync.engine.context import Context
from ordersync.engine.loops import DETECT_FRACTION, CatchUpBudget, detect_interval_s, every
from ordersync.engine.metrics import EngineMetrics
from ordersync.engine.options import EngineOptions as Options
from ordersync.testing import FakeClock, InMemoryStore

POLL_S = 2.0
DETECT_S = DETECT_FRACTION * POLL_S


async def down(h: EngineHarness, open_orders: int) -> None:
    """Start with ``open_orders`` protected buys resting, then lose the stream for good."""
    await h.start()
    for i in range(open_orders):
        await h.buy(f"p{i}")
    assert h.stream is not None
    h.stream.disconnect(h.clock.now())
    await h.idle()


async def run_polls(h: EngineHarness, seconds: float) -> None:
    """The poller's steps for ``seconds`` of fake time, one per detection interval."""
    for _ in range(round(seconds / DETECT_S)):
        h.clock.advance(DETECT_S)
        await h.poll()


def calls(broker: FakeBroker) -> dict[str, int]:
    return dict(broker.calls)


def protected_qty(h: EngineHarness, parent: str) -> Decimal:
    return sum((c.qty for c in h.children(parent, OrderRole.OCO)), Decimal(0))


async def test_with_the_stream_down_catch_ups_are_paced_under_the_budget_not_run_each_poll() -> None:
    h = EngineHarness(EngineOptions(poll_interval_s=POLL_S, poll_budget_per_min=45.0))
    await down(h, open_orders=3)
    before = calls(h.broker)

    await run_polls(h, seconds=120.0)

    after = calls(h.broker)
    polls = after["fill_activities"] - before.get("fill_activities", 0)
    lists = after["list_orders"] - before.get("list_orders", 0)
    assert polls == round(120.0 / DETECT_S), "detection is never held back by the budget"
    # each catch-up here is 2 requests (open, closed); 45/min less 33.3/min of detection leaves ~11.7/min
    assert 8 <= lists <= 2 * 12, f"{lists} list reads in 2 minutes"
    assert (polls + lists) / 2.0 <= 45.0 + 2, "the poller stays inside its budget (one catch-up of slack)"
    await h.stop()


async def test_a_fill_with_the_stream_down_is_applied_at_the_next_poll_without_a_catch_up() -> None:
    h = EngineHarness(EngineOptions(poll_interval_s=POLL_S))
    await down(h, open_orders=2)
    await run_polls(h, seconds=20.0)  # spend the catch-up credit: the next poll must not need one
    h.broker.fill("p1", 10, 100)
    h.drop_events()
    lists = h.broker.calls["list_orders"]
    filled_at = h.clock.now()

    h.clock.advance(DETECT_S)
    await h.poll()

    assert h.order("p1").status is OrderStatus.FILLED
    assert protected_qty(h, "p1") == Decimal(10)
    assert (h.clock.now() - filled_at).total_seconds() <= POLL_S
    assert h.broker.calls["list_orders"] == lists, "one activities page and one order read, no list read"
    await h.stop()


async def test_a_fill_from_activities_is_applied_once_when_catch_ups_and_the_stream_report_it_again() -> None:
    h = EngineHarness(EngineOptions(poll_interval_s=POLL_S))
    await down(h, open_orders=1)
    fill_event = h.broker.fill("p0", 10, 100)
    h.drop_events()
    h.clock.advance(DETECT_S)
    await h.poll()
    assert h.order("p0").filled_qty == 10

    await run_polls(h, seconds=60.0)  # catch-ups list it filled, activities list it again (overlap)
    assert h.stream is not None
    h.stream.connect(h.clock.now())  # and the stream comes back and re-sends the fill event
    h.stream.push(fill_event)
    await h.idle()

    assert h.order("p0").filled_qty == 10
    assert protected_qty(h, "p0") == Decimal(10), "one protection, never two for the same shares"
    assert len(h.journal("fill_missed")) == 1, "the activity showed a fill behind once"
    await h.stop()


async def test_a_cancel_by_someone_else_is_seen_within_the_catch_up_cadence() -> None:
    h = EngineHarness(EngineOptions(poll_interval_s=POLL_S))
    await down(h, open_orders=2)
    await run_polls(h, seconds=20.0)
    parent = h.broker.by_coid("p1")
    h.broker.set_status("p1", OrderStatus.CANCELED, "canceled")  # a person, in the broker's web page
    h.drop_events()
    assert parent.status is OrderStatus.CANCELED

    waited = 0.0
    while h.order("p1").status is not OrderStatus.CANCELED:
        h.clock.advance(DETECT_S)
        await h.poll()
        waited += DETECT_S
        assert waited <= 30.0, "a catch-up should have read it within its cadence (~11 s here)"
    await h.stop()


def test_catch_ups_follow_their_cost_and_what_detection_leaves() -> None:
    options = Options(poll_interval_s=POLL_S, poll_budget_per_min=45.0)
    clock = FakeClock()
    budget = CatchUpBudget(options, clock)
    started: list[datetime] = []
    for _ in range(1000):  # 30 minutes of detection steps
        clock.advance(detect_interval_s(options))
        budget.spend(1)  # one activities page
        if budget.catch_up_due():
            started.append(clock.now())
            budget.cost = 3.0  # 1,000 open: two open pages and one closed
            budget.spend(3)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(started[1:])]
    # 45/min = 0.75/s; detection takes 1/1.8 s = 0.556/s; 0.194/s left: a 3-page catch-up every ~15.4 s
    assert 14.0 <= sum(gaps) / len(gaps) <= 17.0
    assert max(gaps) <= 18.0, "never starved: the bucket holds a catch-up's cost and a detection step"


def test_a_budget_below_what_detection_takes_leaves_catch_ups_to_the_reconciliation() -> None:
    options = Options(poll_interval_s=1.2, poll_budget_per_min=30.0)  # detection: 55/min
    clock = FakeClock()
    budget = CatchUpBudget(options, clock)
    assert budget.catch_up_due(), "the first one is in the bucket"
    budget.spend(2)
    for _ in range(100):
        clock.advance(detect_interval_s(options))
        budget.spend(1)
        assert not budget.catch_up_due()


async def test_a_fixed_rate_loop_does_not_add_the_step_time_to_its_period() -> None:
    clock = FakeClock()
    ctx = Context(FakeBroker(clock), InMemoryStore(), clock, Options(), EngineMetrics())
    starts: list[datetime] = []

    async def slow_step() -> None:
        starts.append(clock.now())
        clock.advance(0.5)  # the poll's round trip and the order read

    await every(ctx, lambda: len(starts) < 5, DETECT_S, slow_step, fixed_rate=True)

    gaps = {round((b - a).total_seconds(), 6) for a, b in itertools.pairwise(starts)}
    assert gaps == {DETECT_S}


def test_a_one_second_poll_interval_is_read_every_second_not_every_other() -> None:
    options = Options(poll_interval_s=1.0)
    assert detect_interval_s(options) == 1.0, "0.9 s would be under the activities' once-a-second floor"


def test_a_burst_of_order_reads_delays_the_next_catch_up_by_seconds_not_minutes() -> None:
    options = Options(poll_interval_s=POLL_S, poll_budget_per_min=42.0)
    clock = FakeClock()
    budget = CatchUpBudget(options, clock)
    budget.spend(200)  # a storm: 200 fills read by id in one poll
    waited = 0.0
    while not budget.catch_up_due():
        clock.advance(DETECT_S)
        budget.spend(1)
        waited += DETECT_S
    assert waited <= 60.0, f"the storm's debt held catch-ups back {waited:.0f} s"
