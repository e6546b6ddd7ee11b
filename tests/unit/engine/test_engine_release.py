"""The release gate on a FakeBroker: protection follows confirmed fills, one OCO per confirmed increment."""

from __future__ import annotations

from decimal import Decimal

from engine_harness import EngineHarness
from fake_broker import FakeOrder

from ordersync.domain.order import OrderSide, OrderStatus


def open_ocos(h: EngineHarness, symbol: str = "AAPL") -> list[FakeOrder]:
    return [o for o in h.broker.open_sells(symbol) if o.order_class == "oco"]


async def test_a_confirmed_partial_fill_releases_one_oco_sized_to_the_filled_quantity() -> None:
    h = EngineHarness()
    await h.start()
    await h.buy("p1", qty=10)

    h.broker.fill("p1", 4, 100)
    await h.deliver()

    ocos = open_ocos(h)
    assert [(o.qty, o.side, o.limit_price) for o in ocos] == [(Decimal(4), OrderSide.SELL, Decimal(110))]
    leg = h.broker.orders[ocos[0].leg_ids[0]]
    assert (leg.status, leg.stop_price) == (OrderStatus.HELD, Decimal(90)), "the stop is the OCO's held leg"
    assert h.broker.calls["submit"] == 2, "the parent and one OCO: no separate take-profit and stop sells"
    [child] = h.children("p1")
    assert child.broker_order_id == ocos[0].broker_order_id
    await h.stop()


async def test_nothing_is_released_before_the_broker_confirms_a_fill() -> None:
    h = EngineHarness()
    await h.start()
    await h.buy("p1", qty=10)
    h.broker.set_status("p1", OrderStatus.NEW, "new")
    await h.deliver()
    await h.tick()

    assert h.order("p1").status is OrderStatus.NEW
    assert h.broker.calls["submit"] == 1, "only the parent was sent"
    assert open_ocos(h) == []
    assert h.children("p1") == []
    await h.stop()


async def test_a_second_fill_adds_coverage_for_the_increment_only() -> None:
    h = EngineHarness()
    await h.start()
    await h.buy("p1", qty=10)
    h.broker.fill("p1", 4, 100)
    await h.deliver()

    h.broker.fill("p1", 3, 100)
    await h.deliver()

    assert sorted(o.qty for o in open_ocos(h)) == [Decimal(3), Decimal(4)], "a new OCO for the 3, the 4 kept"
    assert h.broker.calls["cancel"] == 0, "the first OCO is not replaced"
    assert h.broker.calls["submit"] == 3
    await h.stop()


async def test_a_duplicated_fill_event_releases_nothing_more() -> None:
    h = EngineHarness()
    await h.start()
    await h.buy("p1", qty=10)
    fill = h.broker.events.index(h.broker.fill("p1", 4, 100))
    await h.deliver()

    await h.deliver(fill)  # Alpaca repeats events
    await h.tick()

    assert [o.qty for o in open_ocos(h)] == [Decimal(4)]
    assert h.broker.calls["submit"] == 2
    await h.stop()
