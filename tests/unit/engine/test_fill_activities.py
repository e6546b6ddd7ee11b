"""FILL activities: a fill we have not applied is a missed event, and its order is read; nothing else is."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from ordersync.domain.errors import BrokerUnavailable, OrderRefused
from ordersync.domain.events import BrokerOrderView, FillActivity, OrderObserved
from ordersync.domain.ids import BrokerOrderId, Symbol
from ordersync.domain.order import OrderStatus
from ordersync.engine.activities import CURSOR, DIRECT_READS, OVERLAP, PAGE, FillActivities
from ordersync.engine.context import Context
from ordersync.engine.metrics import EngineMetrics
from ordersync.engine.options import EngineOptions
from ordersync.ports import REQUEST_PRIORITY, Priority
from ordersync.testing import T0, FakeClock, InMemoryStore, make_order, make_view


class ActivityBroker:
    """Just enough of the Broker port: FILL activities (paged like Alpaca's) and order reads by id."""

    def __init__(self) -> None:
        self.activities: list[FillActivity] = []
        self.views: dict[BrokerOrderId, BrokerOrderView] = {}
        self.calls: list[tuple[str, object]] = []
        self.priorities: list[Priority] = []
        self.fail_reads = 0
        self.activity_error: Exception | None = None

    async def fill_activities(
        self, after: datetime | None, page_token: str | None = None, page_size: int = 100
    ) -> Sequence[FillActivity]:
        self.calls.append(("activities", (after, page_token)))
        self.priorities.append(REQUEST_PRIORITY.get())
        if self.activity_error is not None:
            raise self.activity_error
        rows = [a for a in self.activities if after is None or a.transaction_time > after]
        if page_token is not None:
            ids = [a.activity_id for a in rows]
            rows = rows[ids.index(page_token) + 1 :]
        return rows[:page_size]

    async def get_order(self, broker_order_id: BrokerOrderId, nested: bool = False) -> BrokerOrderView | None:
        self.calls.append(("get_order", broker_order_id))
        self.priorities.append(REQUEST_PRIORITY.get())
        if self.fail_reads:
            self.fail_reads -= 1
            raise BrokerUnavailable("503")
        return self.views.get(broker_order_id)


class Harness:
    def __init__(self, store: InMemoryStore | None = None) -> None:
        self.clock = FakeClock(T0 + timedelta(minutes=10))
        self.broker = ActivityBroker()
        self.store = store or InMemoryStore()
        self.ctx = Context(self.broker, self.store, self.clock, EngineOptions(), EngineMetrics())  # type: ignore[arg-type]
        self.queued: list[OrderObserved] = []
        self.catch_ups: list[str] = []
        self.poller = FillActivities(self.ctx, self._put, self._catch_up)

    async def _put(self, obs: OrderObserved) -> None:
        self.queued.append(obs)

    async def _catch_up(self, reason: str) -> int:
        self.catch_ups.append(reason)
        return 0

    def ours(self, coid: str, filled: int, status: OrderStatus = OrderStatus.PARTIALLY_FILLED) -> None:
        order = make_order(coid, status=status, filled_qty=filled, qty=10)
        with self.store.transaction() as tx:
            tx.add_order(order)
        read = make_view(order, filled_qty=10, status=OrderStatus.FILLED)
        self.broker.views[BrokerOrderId(f"brk-{coid}")] = read

    def execution(
        self, n: int, coid: str, cum_qty: int | None, seconds: float = 1.0, symbol: str = "AAPL"
    ) -> FillActivity:
        activity = FillActivity(
            activity_id=f"act-{n:05d}",
            broker_order_id=BrokerOrderId(f"brk-{coid}"),
            symbol=Symbol(symbol),
            qty=Decimal(1),
            price=Decimal(100),
            transaction_time=self.clock.now() - timedelta(seconds=30) + timedelta(seconds=seconds),
            cum_qty=None if cum_qty is None else Decimal(cum_qty),
        )
        self.broker.activities.append(activity)
        return activity


async def test_a_fill_ahead_of_what_we_applied_reads_its_order_and_queues_it() -> None:
    h = Harness()
    h.ours("p1", filled=4)
    h.execution(1, "p1", cum_qty=6)

    assert await h.poller.poll() == 1

    assert [o.order.client_order_id for o in h.queued] == ["p1"]
    assert h.queued[0].order.filled_qty == 10
    assert h.broker.priorities == [Priority.DETECT, Priority.DETECT], "detecting a fill outranks reads"
    with h.store.transaction() as tx:
        assert tx.get_cursor(CURSOR) is not None, "the cursor is kept in the store"


async def test_fills_already_applied_and_other_applications_fills_cost_no_read() -> None:
    h = Harness()
    h.ours("p1", filled=6)
    h.ours("p2", filled=10, status=OrderStatus.FILLED)
    h.execution(1, "p1", cum_qty=6)  # the stream delivered it
    h.execution(2, "p2", cum_qty=None)  # no cum_qty, but the order is filled here already
    h.execution(3, "someone-else", cum_qty=5, symbol="MSFT")  # not ours, on a symbol we do not trade

    assert await h.poller.poll() == 0

    assert h.queued == []
    assert [c for c, _ in h.broker.calls] == ["activities"], "one request per poll, nothing more"


async def test_an_activity_is_handled_once_even_though_polls_overlap() -> None:
    h = Harness()
    h.ours("p1", filled=4)
    h.execution(1, "p1", cum_qty=6)
    await h.poller.poll()
    h.queued.clear()
    h.clock.advance(2.0)

    assert await h.poller.poll() == 0, "the overlap window lists it again; it was handled"
    after = h.broker.calls[-1][1]
    assert isinstance(after, tuple)
    assert after[0] == h.broker.activities[0].transaction_time - OVERLAP


async def test_a_failed_order_read_leaves_the_activity_for_the_next_poll() -> None:
    h = Harness()
    h.ours("p1", filled=4)
    h.execution(1, "p1", cum_qty=6)
    h.broker.fail_reads = 1

    with pytest.raises(BrokerUnavailable):
        await h.poller.poll()
    h.clock.advance(2.0)
    assert await h.poller.poll() == 1
    assert [o.order.client_order_id for o in h.queued] == ["p1"]


async def test_many_orders_behind_are_read_with_one_catch_up_instead_of_one_read_each() -> None:
    h = Harness()
    for n in range(DIRECT_READS + 1):
        h.ours(f"p{n}", filled=0, status=OrderStatus.NEW)
        h.execution(n, f"p{n}", cum_qty=1, seconds=n / 100)

    assert await h.poller.poll() == DIRECT_READS + 1

    assert h.catch_ups == ["fill_activities"]
    assert not any(c == "get_order" for c, _ in h.broker.calls)


async def test_pages_are_followed_with_the_page_token() -> None:
    h = Harness()
    h.ours("p1", filled=0, status=OrderStatus.NEW)
    for n in range(PAGE + 5):
        h.execution(n, "other", cum_qty=1, seconds=n / 1000, symbol="MSFT")
    h.execution(PAGE + 5, "p1", cum_qty=1, seconds=0.9)

    assert await h.poller.poll() == 1

    tokens = [args[1] for c, args in h.broker.calls if c == "activities"]  # type: ignore[index]
    assert tokens == [None, f"act-{PAGE - 1:05d}"]


async def test_the_cursor_survives_a_restart() -> None:
    h = Harness()
    h.ours("p1", filled=4)
    newest = h.execution(1, "p1", cum_qty=6)
    await h.poller.poll()

    again = Harness(store=h.store)
    await again.poller.poll()
    after = again.broker.calls[0][1]
    assert isinstance(after, tuple)
    assert after[0] == newest.transaction_time - OVERLAP


async def test_a_broker_without_the_endpoint_is_asked_again_only_minutes_later() -> None:
    h = Harness()
    h.broker.activity_error = OrderRefused("404 not found", status_code=404)

    assert await h.poller.poll() == 0
    assert await h.poller.poll() == 0
    assert len(h.broker.calls) == 1
    h.clock.advance(6 * 60)
    h.broker.activity_error = None
    await h.poller.poll()
    assert len(h.broker.calls) == 2


async def test_a_leg_of_our_group_we_have_not_stored_yet_is_read() -> None:
    h = Harness()
    leg = BrokerOrderId("brk-leg")
    h.ctx.leg_owner[leg] = make_order("oco").client_order_id
    stop = replace(make_view(make_order("oco-leg"), filled_qty=5), broker_order_id=leg)
    h.broker.views[leg] = stop
    h.execution(1, "leg", cum_qty=5)

    assert await h.poller.poll() == 1
    assert h.queued[0].order.broker_order_id == leg


async def test_a_poll_interval_under_a_second_polls_at_most_once_a_second() -> None:
    h = Harness()
    await h.poller.poll()
    h.clock.advance(0.5)
    await h.poller.poll()
    h.clock.advance(0.5)
    await h.poller.poll()
    assert len(h.broker.calls) == 2, "60 of the 200 requests a minute at most, whatever the interval"


async def test_an_unknown_order_on_a_symbol_we_trade_is_read_once_it_may_be_our_replacement() -> None:
    h = Harness()
    h.ours("p1", filled=10, status=OrderStatus.NEW)  # open on AAPL
    h.execution(1, "unknown", cum_qty=1, seconds=1.0)
    h.execution(2, "unknown", cum_qty=2, seconds=1.5)

    assert await h.poller.poll() == 1
    h.clock.advance(2.0)
    h.execution(3, "unknown", cum_qty=3, seconds=20.0)
    assert await h.poller.poll() == 0, "read once: another application's order is never read again"
    assert [c for c, _ in h.broker.calls].count("get_order") == 1
