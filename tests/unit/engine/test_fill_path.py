"""The fill path on a FakeBroker (docs/architecture.md §4): a streamed fill reaches its protective POST
after two transactions (the writer's batch, one release pass), with no position read while the fill
event's own ``position_qty`` describes the account, the broker's read whenever it may not, and a crash
between the release's commit and the POST settled by the same client_order_id."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from engine_harness import EngineHarness
from fake_broker import FakeOrder

from ordersync.domain.errors import BrokerUnavailable
from ordersync.domain.events import BrokerOrderView
from ordersync.domain.ids import ClientOrderId
from ordersync.domain.order import Order, OrderSide, OrderStatus
from ordersync.engine import EngineOptions


def ocos(h: EngineHarness, symbol: str = "AAPL") -> list[FakeOrder]:
    return [o for o in h.broker.open_sells(symbol) if o.order_class == "oco"]


class PostWatch:
    """Wraps the broker's submit: what the store held when each protective POST went out."""

    def __init__(self, h: EngineHarness) -> None:
        self.h = h
        self.at_post: list[tuple[int, OrderStatus, list[str]]] = []  # (transactions so far, status, kinds)
        self._submit = h.broker.submit
        h.broker.submit = self.submit  # type: ignore[method-assign]

    async def submit(self, order: Order) -> BrokerOrderView:
        if order.is_child:
            coid = order.client_order_id
            kinds = [e.kind for e in self.h.store.read_journal() if e.client_order_id == coid]
            self.at_post.append((len(self.h.store.transactions), self.h.order(coid).status, kinds))
        return await self._submit(order)


async def test_a_streamed_fill_reaches_its_post_after_two_transactions_and_no_position_read() -> None:
    h = EngineHarness()
    await h.start()
    await h.buy("p1", qty=10)
    watch = PostWatch(h)
    before = len(h.store.transactions)

    h.broker.fill("p1", 4, 100)
    await h.deliver()

    [(transactions, status, kinds)] = watch.at_post
    assert transactions - before == 2, "the writer's batch, then one release transaction, then the POST"
    assert status is OrderStatus.SUBMITTING, (
        "written submitting by the release: nothing written before the POST"
    )
    assert kinds == ["child_released", "submit_sent"], "journaled before the request (invariant 3)"
    assert h.broker.calls["position"] == 0, "the fill event's position_qty sized it"
    assert [o.qty for o in ocos(h)] == [Decimal(4)]
    await h.stop()


async def test_one_release_transaction_reads_each_symbol_once_by_index_and_never_all_open_orders() -> None:
    h = EngineHarness()
    await h.start()
    await h.buy("p1", qty=10)
    await h.buy("p2", qty=10)
    await h.buy("q1", qty=10, symbol="MSFT")
    watch = PostWatch(h)
    before = len(h.store.transactions)

    for parent in ("p1", "p2", "q1"):
        h.broker.fill(parent, 5, 100)
    await h.deliver()

    assert watch.at_post[0][0] == before + 2, "the first POST after the writer's and one release transaction"
    release = h.store.transactions[before + 1]
    added = sorted(
        str(getattr(args[0], "client_order_id", "")) for name, args in release if name == "add_order"
    )
    assert added == ["p1~oco1", "p2~oco1", "q1~oco1"], "all three children written by that one transaction"
    reads = [(name, args) for name, args in release if name == "open_orders"]
    assert sorted(reads) == [("open_orders", ("AAPL",)), ("open_orders", ("MSFT",))], "by symbol, once each"
    assert [name for name, _ in release].count("children_of_many") == 1
    assert "all_orders" not in [name for name, _ in release]
    assert h.broker.calls["position"] == 0
    assert sorted(o.qty for o in [*ocos(h), *ocos(h, "MSFT")]) == [Decimal(5)] * 3
    await h.stop()


async def test_without_position_qty_on_the_fill_event_the_release_reads_the_position() -> None:
    h = EngineHarness()
    await h.start()
    await h.buy("p1", qty=10)
    h.broker.position_in_events = False

    h.broker.fill("p1", 4, 100)
    await h.deliver()

    assert h.broker.calls["position"] == 1, "no evidence in the event: the broker's qty_available"
    assert [o.qty for o in ocos(h)] == [Decimal(4)]
    await h.stop()


async def test_a_fill_learned_from_a_poll_reads_the_position() -> None:
    h = EngineHarness()
    await h.start()
    await h.buy("p1", qty=10)
    h.broker.fill("p1", 4, 100)
    await h.deliver()
    reads = h.broker.calls["position"]

    h.broker.fill("p1", 3, 100)
    h.drop_events()  # the stream lost it: the activities poll finds it, with no position_qty
    await h.poll()

    assert h.broker.calls["position"] == reads + 1, "our book moved without a streamed position: read it"
    assert sorted(o.qty for o in ocos(h)) == [Decimal(3), Decimal(4)]
    await h.stop()


async def test_shares_of_others_on_the_symbol_make_the_release_read_the_position() -> None:
    h = EngineHarness()
    await h.start()
    h.broker.adjust_position("AAPL", 5)  # someone else's shares: the fill's position_qty is not all ours
    await h.buy("p1", qty=10)

    h.broker.fill("p1", 4, 100)
    await h.deliver()

    assert h.broker.calls["position"] == 1
    assert [o.qty for o in ocos(h)] == [Decimal(4)], "ours only (invariant 8)"
    await h.stop()


async def test_a_40310000_after_a_streamed_position_is_handled_and_the_retry_reads_the_position() -> None:
    h = EngineHarness(EngineOptions(release_backoff_base_s=2.0, release_backoff_cap_s=60.0))
    await h.start()
    await h.buy("p1", qty=10)
    h.broker.fill("p1", 10, 100)
    # a sell placed by someone else after our fill and before our POST: the event's position says 10
    foreign = h.broker.place_foreign("manual-1", "AAPL", OrderSide.SELL, 10, 120)
    await h.deliver()

    [refusal] = h.journal("submit_refused")
    assert refusal.payload["body"]["code"] == 40310000
    assert h.alerts("foreign_order_holds_shares"), "the holder named by related_orders is reported"
    assert h.broker.calls["position"] == 0

    for _ in range(30):  # the backoff passes; every later attempt asks the broker first
        h.clock.advance(1)
        await h.tick()
    assert h.broker.calls["position"] >= 1
    assert len(h.journal("submit_refused")) == 1, "held on the broker's qty_available: no second refusal"

    await h.broker.cancel(foreign.broker_order_id)
    for _ in range(70):
        h.clock.advance(1)
        await h.tick()
    assert [o.qty for o in ocos(h)] == [Decimal(10)]
    assert len(h.journal("submit_refused")) == 1
    await h.stop()


async def test_a_crash_between_the_release_commit_and_the_post_is_settled_with_the_same_client_id() -> None:
    h = EngineHarness()
    await h.start()
    await h.buy("p1", qty=10)
    real_submit = h.broker.submit

    async def dies(order: Order) -> BrokerOrderView:
        if order.is_child:
            raise asyncio.CancelledError  # the process is killed: the POST never leaves
        return await real_submit(order)

    h.broker.submit = dies  # type: ignore[method-assign]
    h.broker.fill("p1", 10, 100)
    await h.deliver()
    [child] = h.children("p1")
    assert child.status is OrderStatus.SUBMITTING
    assert h.broker.orders_of(child.client_order_id) == []
    del h.broker.submit  # the broker answers again; the old engine is gone
    h.broker.log.clear()

    again = EngineHarness(restart_of=h)
    await again.start()

    coid = child.client_order_id
    asked = [m for m, arg, _ in again.broker.log if arg == coid and m in ("submit", "get_by_client_id")]
    lookups = ["get_by_client_id"] * EngineOptions().lookups_before_not_found
    assert asked == [*lookups, "submit"], "looked up before the one POST, with the journaled id"
    [sent] = again.broker.orders_of(coid)
    assert again.order(coid).status is OrderStatus.ACCEPTED
    assert again.order(coid).broker_order_id == sent.broker_order_id
    assert [o.client_order_id for o in ocos(again)] == [ClientOrderId(coid)]
    await again.stop()


async def test_a_position_read_that_fails_once_is_asked_again_before_the_release_holds() -> None:
    h = EngineHarness()
    await h.start()
    await h.buy("p1", qty=10)
    h.broker.position_in_events = False
    h.broker.fail("position", BrokerUnavailable("503 service unavailable", status_code=503))

    h.broker.fill("p1", 4, 100)
    await h.deliver()

    assert h.broker.calls["position"] == 2, "a transient 5xx is asked again, not held for a backoff"
    assert h.journal("release_held") == []
    assert [o.qty for o in ocos(h)] == [Decimal(4)]
    await h.stop()
