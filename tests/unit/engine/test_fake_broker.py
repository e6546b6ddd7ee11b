"""The FakeBroker keeps the Alpaca behaviour the engine tests rely on (docs/alpaca.md 4.7, 6.2, 6.3); if it
drifted, the engine tests would pass against a broker that does not exist."""

from __future__ import annotations

from decimal import Decimal

import pytest
from fake_broker import FakeBroker

from ordersync.domain.errors import DuplicateClientOrderId, InsufficientQty
from ordersync.domain.ids import ClientOrderId, Symbol
from ordersync.domain.order import Order, OrderRole, OrderSide, OrderStatus
from ordersync.testing import FakeClock, make_order

AAPL = Symbol("AAPL")


async def holding(qty: int) -> FakeBroker:
    broker = FakeBroker(FakeClock())
    await broker.submit(make_order("p1", qty=qty))
    broker.fill("p1", qty, 100)
    return broker


def oco(coid: str, qty: int) -> Order:
    return make_order(
        coid, side=OrderSide.SELL, qty=qty, role=OrderRole.OCO, parent_id="p1", limit_price=Decimal(110)
    )


async def test_an_open_sell_reserves_its_shares_and_a_sell_beyond_them_gets_alpacas_40310000() -> None:
    broker = await holding(10)
    first = await broker.submit(oco("p1~oco1", 6))

    position = await broker.position(AAPL)
    assert position is not None
    assert (position.qty, position.qty_available) == (Decimal(10), Decimal(4)), "the OCO holds 6 once"
    with pytest.raises(InsufficientQty) as refused:
        await broker.submit(make_order("s2", side=OrderSide.SELL, qty=5))
    assert refused.value.status_code == 403
    assert refused.value.code == 40310000
    assert refused.value.body["held_for_orders"] == "6"
    assert refused.value.related_orders == [first.broker_order_id]


async def test_an_oco_is_a_take_profit_with_a_held_stop_leg_and_a_fill_of_one_ends_the_other() -> None:
    broker = await holding(10)
    view = await broker.submit(oco("p1~oco1", 10))
    [leg] = view.leg_ids

    assert (view.status, view.order_class, view.limit_price) == (OrderStatus.ACCEPTED, "oco", Decimal(110))
    assert broker.orders[leg].status is OrderStatus.HELD
    listed = await broker.list_orders("open")
    assert [v.broker_order_id for v in listed] == [view.broker_order_id, leg], "legs follow their parent"

    broker.fill(broker.orders[leg].client_order_id, 10, 90)  # the stop triggered
    assert broker.by_coid("p1~oco1").status is OrderStatus.REPLACED
    assert broker.holdings[AAPL] == 0


async def test_a_client_order_id_is_unique_and_found_closed_or_open() -> None:
    broker = await holding(10)
    with pytest.raises(DuplicateClientOrderId):
        await broker.submit(make_order("p1", qty=10))
    found = await broker.get_by_client_id(ClientOrderId("p1"))
    assert found is not None
    assert found.status is OrderStatus.FILLED
    assert [a.cum_qty for a in await broker.fill_activities(None)] == [Decimal(10)]
    assert broker.calls["submit"] == 2
