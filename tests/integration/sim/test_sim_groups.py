"""Bracket and OCO orders: legs held until the entry fills, shares reserved once, siblings canceled."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderClass, OrderStatus
from alpaca.trading.requests import (
    GetOrderByIdRequest,
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
)
from simtools import StreamRecorder

from ordersync.sim import SimServer


def oco_sell(symbol: str, qty: float, take_profit: float, stop: float) -> LimitOrderRequest:
    return LimitOrderRequest(
        symbol=symbol,
        qty=qty,
        side="sell",
        time_in_force="gtc",
        order_class=OrderClass.OCO,
        take_profit={"limit_price": take_profit},
        stop_loss={"stop_price": stop},
    )


def bracket_buy(symbol: str, qty: float, take_profit: float, stop: float, limit: float) -> LimitOrderRequest:
    return LimitOrderRequest(
        symbol=symbol,
        qty=qty,
        side="buy",
        time_in_force="gtc",
        limit_price=limit,
        order_class=OrderClass.BRACKET,
        take_profit={"limit_price": take_profit},
        stop_loss={"stop_price": stop},
    )


def test_oco_reserves_the_shares_once_and_cancels_the_stop_when_the_take_profit_fills(
    sim: SimServer,
    client: TradingClient,
    fresh_symbol: Callable[..., str],
    recorder: Callable[[SimServer], StreamRecorder],
) -> None:
    stream = recorder(sim)
    symbol = fresh_symbol("50.00")
    client.submit_order(MarketOrderRequest(symbol=symbol, qty=10, side="buy", time_in_force="gtc"))
    sim.advance(1)
    oco = client.submit_order(oco_sell(symbol, 10, take_profit=55, stop=45))
    sim.advance(1)

    position = client.get_open_position(symbol)
    assert (position.qty, position.qty_available) == ("10", "0")  # 10 held once, not 20
    (stop_leg,) = client.get_order_by_id(oco.id, GetOrderByIdRequest(nested=True)).legs or []
    assert stop_leg.status == OrderStatus.HELD

    sim.set_price(symbol, "55.10")

    stream.wait_for(oco.id, "fill")
    canceled = stream.wait_for(stop_leg.id, "canceled")[0]
    assert canceled.order.status == OrderStatus.CANCELED
    with pytest.raises(APIError) as excinfo:
        client.get_open_position(symbol)
    assert excinfo.value.status_code == 404


def test_oco_stop_trigger_replaces_the_take_profit_and_sells_at_market(
    sim: SimServer, client: TradingClient, fresh_symbol: Callable[..., str]
) -> None:
    symbol = fresh_symbol("50.00")
    client.submit_order(MarketOrderRequest(symbol=symbol, qty=4, side="buy", time_in_force="gtc"))
    sim.advance(1)
    oco = client.submit_order(oco_sell(symbol, 4, take_profit=55, stop=45))
    sim.advance(1)

    sim.set_price(symbol, "44.90")

    nested = client.get_order_by_id(oco.id, GetOrderByIdRequest(nested=True))
    (stop_leg,) = nested.legs or []
    # Alpaca ends the take-profit 'replaced' when the stop triggers (docs/alpaca.md §6.2)
    assert (nested.status, stop_leg.status) == (OrderStatus.REPLACED, OrderStatus.FILLED)
    assert stop_leg.filled_avg_price == "44.9"


def test_bracket_legs_stay_held_until_the_entry_completely_fills(
    sim: SimServer, client: TradingClient, fresh_symbol: Callable[..., str]
) -> None:
    symbol = fresh_symbol("50.00")
    entry = client.submit_order(bracket_buy(symbol, 10, take_profit=55, stop=45, limit=49))
    sim.advance(1)
    assert {leg.status for leg in entry.legs or []} == {OrderStatus.HELD}
    sim.fill(order_id=str(entry.id), qty="6")

    def legs() -> dict[str, OrderStatus]:
        parent = client.get_order_by_id(entry.id, GetOrderByIdRequest(nested=True))
        return {leg.type.value if leg.type else "": leg.status for leg in parent.legs or []}

    assert legs() == {"limit": OrderStatus.HELD, "stop": OrderStatus.HELD}
    flat_open = client.get_orders(GetOrdersRequest(symbols=[symbol]))
    assert [o.id for o in flat_open] == [entry.id]  # held legs are hidden from the flat open list
    assert client.get_open_position(symbol).qty_available == "6"  # held legs reserve nothing yet

    sim.fill(order_id=str(entry.id))

    assert legs() == {"limit": OrderStatus.NEW, "stop": OrderStatus.HELD}
    assert client.get_open_position(symbol).qty_available == "0"
    flat_open = client.get_orders(GetOrdersRequest(symbols=[symbol]))
    assert {o.type.value for o in flat_open if o.type} == {"limit"}  # the live take-profit, not the held stop


def test_bracket_must_be_an_entry(
    sim: SimServer, client: TradingClient, fresh_symbol: Callable[..., str]
) -> None:
    symbol = fresh_symbol("50.00")
    client.submit_order(MarketOrderRequest(symbol=symbol, qty=5, side="buy", time_in_force="gtc"))
    sim.advance(1)
    closing = MarketOrderRequest(
        symbol=symbol,
        qty=5,
        side="sell",
        time_in_force="gtc",
        order_class=OrderClass.BRACKET,
        take_profit={"limit_price": 45},
        stop_loss={"stop_price": 55},
    )
    with pytest.raises(APIError) as excinfo:
        client.submit_order(closing)
    assert (excinfo.value.status_code, excinfo.value.message) == (422, "bracket orders must be entry orders")


def test_canceling_a_bracket_entry_cancels_its_legs(
    sim: SimServer, client: TradingClient, fresh_symbol: Callable[..., str]
) -> None:
    symbol = fresh_symbol("50.00")
    entry = client.submit_order(bracket_buy(symbol, 3, take_profit=55, stop=45, limit=49))
    sim.advance(1)
    client.cancel_order_by_id(entry.id)
    sim.advance(1)

    parent = client.get_order_by_id(entry.id, GetOrderByIdRequest(nested=True))
    assert {parent.status, *(leg.status for leg in parent.legs or [])} == {OrderStatus.CANCELED}
