"""Brackets and OTO as Alpaca runs them (docs/simulator.md, "Brackets and OTO"), through alpaca-py.

The weak cases a platform that relies on native brackets must live with are pinned here: the filled part of a
partially filled entry waits with no exit until the entry completes, and a partially filled entry that is
canceled or expires takes its held legs with it, leaving its filled shares with no exit at all."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderClass, OrderStatus, TimeInForce
from alpaca.trading.models import Order
from alpaca.trading.requests import (
    GetOrderByIdRequest,
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    ReplaceOrderRequest,
)
from simtools import Client, Recorder, Sim

from ordersync.sim import SimServer

Symbol = Callable[..., str]


def bracket_buy(
    symbol: str, qty: float, limit: float, take_profit: float, stop: float, tif: str = "gtc", **extra: object
) -> LimitOrderRequest:
    return LimitOrderRequest(
        symbol=symbol,
        qty=qty,
        side="buy",
        time_in_force=TimeInForce(tif),
        limit_price=limit,
        order_class=OrderClass.BRACKET,
        take_profit={"limit_price": take_profit},
        stop_loss={"stop_price": stop},
        **extra,
    )


def _legs(client: TradingClient, entry_id: object) -> dict[str, Order]:
    """The entry's current legs by type ("limit" = take-profit, "stop" = stop-loss)."""
    parent = client.get_order_by_id(str(entry_id), GetOrderByIdRequest(nested=True))
    return {leg.type.value if leg.type else "": leg for leg in parent.legs or []}


def _position_qty(client: TradingClient, symbol: str) -> str:
    return str(client.get_open_position(symbol).qty)


def test_a_partly_filled_entry_waits_unprotected_until_it_completes(
    make_sim: Sim, client_for: Client
) -> None:
    sim = make_sim(
        parents=[
            {
                "id": "br-1",
                "symbol": "OKE",
                "qty": "10",
                "fills": [{"after_s": 10, "qty": "6"}, {"after_s": 600, "qty": "4"}],
            }
        ]
    )
    client = client_for(sim)
    entry = client.submit_order(
        bracket_buy("OKE", 10, limit=72.1, take_profit=80, stop=65, client_order_id="br-1")
    )
    sim.advance(11)

    legs = _legs(client, entry.id)
    assert {(t, leg.status, leg.qty) for t, leg in legs.items()} == {
        ("limit", OrderStatus.HELD, "10"),  # sized to the entry's full quantity, not to what filled
        ("stop", OrderStatus.HELD, "10"),
    }
    sim.set_price("OKE", "60.00")  # through the stop: a held leg of a working entry does not trigger
    sim.advance(60)
    assert _position_qty(client, "OKE") == "6"
    assert _legs(client, entry.id)["stop"].status == OrderStatus.HELD

    sim.set_price("OKE", "70.00")
    sim.advance(600)  # the entry completes: only now are the exits armed
    legs = _legs(client, entry.id)
    assert (legs["limit"].status, legs["stop"].status) == (OrderStatus.NEW, OrderStatus.HELD)
    # the books say when: the take-profit went live at the entry's last execution, 600 s after the first
    books = {o["id"]: o["sim"] for o in sim.snapshot()["orders"]}
    last_fill = books[str(entry.id)]["executions"][-1]["at"]
    assert [h["status"] for h in books[str(legs["limit"].id)]["history"]] == ["held", "new"]
    assert books[str(legs["limit"].id)]["history"][-1]["at"] == last_fill
    sim.set_price("OKE", "64.90")
    assert _legs(client, entry.id)["stop"].status == OrderStatus.FILLED
    with pytest.raises(APIError):
        client.get_open_position("OKE")


def test_a_canceled_partly_filled_entry_cancels_its_legs_and_leaves_the_shares_unprotected(
    sim: SimServer, client: TradingClient, fresh_symbol: Symbol
) -> None:
    symbol = fresh_symbol("50.00")
    entry = client.submit_order(bracket_buy(symbol, 10, limit=49, take_profit=55, stop=45))
    sim.advance(1)
    sim.fill(order_id=str(entry.id), qty="4")
    client.cancel_order_by_id(entry.id)
    sim.advance(1)

    legs = _legs(client, entry.id)
    assert client.get_order_by_id(entry.id).status == OrderStatus.CANCELED
    assert {leg.status for leg in legs.values()} == {OrderStatus.CANCELED}
    assert client.get_orders(GetOrdersRequest(symbols=[symbol], nested=True)) == []
    position = client.get_open_position(symbol)
    assert (position.qty, position.qty_available) == ("4", "4")  # nothing holds them: no exit exists
    sim.set_price(symbol, "40.00")
    sim.advance(1)
    assert _position_qty(client, symbol) == "4"


def test_an_expired_partly_filled_entry_expires_its_legs(make_sim: Sim, client_for: Client) -> None:
    sim = make_sim(
        parents=[
            {
                "id": "br-1",
                "symbol": "OKE",
                "qty": "10",
                "fills": [{"after_s": 10, "qty": "3"}],
                "expire_after_s": 60,
            }
        ]
    )
    client = client_for(sim)
    entry = client.submit_order(
        bracket_buy("OKE", 10, limit=72.1, take_profit=80, stop=65, client_order_id="br-1")
    )
    sim.advance(11)
    assert _position_qty(client, "OKE") == "3"
    sim.advance(60)

    assert client.get_order_by_id(entry.id).status == OrderStatus.EXPIRED
    assert {leg.status for leg in _legs(client, entry.id).values()} == {OrderStatus.EXPIRED}
    assert client.get_open_position("OKE").qty_available == "3"


def test_legs_repriced_before_the_entry_fills_stay_held_and_arm_at_their_new_prices(
    sim: SimServer, client: TradingClient, fresh_symbol: Symbol
) -> None:
    symbol = fresh_symbol("50.00")
    entry = client.submit_order(bracket_buy(symbol, 10, limit=49, take_profit=55, stop=45))
    sim.advance(1)
    old = _legs(client, entry.id)
    new_tp = client.replace_order_by_id(old["limit"].id, ReplaceOrderRequest(limit_price=56))
    new_sl = client.replace_order_by_id(old["stop"].id, ReplaceOrderRequest(stop_price=46))
    sim.advance(1)

    legs = _legs(client, entry.id)
    assert {leg.id for leg in legs.values()} == {new_tp.id, new_sl.id}
    assert {(leg.status, leg.qty) for leg in legs.values()} == {(OrderStatus.HELD, "10")}
    assert client.get_order_by_id(old["stop"].id).status == OrderStatus.REPLACED

    sim.fill(order_id=str(entry.id))
    sim.advance(1)
    legs = _legs(client, entry.id)
    assert (legs["limit"].status, legs["limit"].limit_price) == (OrderStatus.NEW, "56")
    sim.set_price(symbol, "45.50")  # through the new stop (46), above the old one (45)
    assert _legs(client, entry.id)["stop"].status == OrderStatus.FILLED


def test_a_leg_takes_new_prices_but_not_a_new_quantity(
    sim: SimServer, client: TradingClient, fresh_symbol: Symbol
) -> None:
    symbol = fresh_symbol("50.00")
    entry = client.submit_order(bracket_buy(symbol, 10, limit=49, take_profit=55, stop=45))
    sim.advance(1)

    with pytest.raises(APIError) as excinfo:
        client.replace_order_by_id(_legs(client, entry.id)["limit"].id, ReplaceOrderRequest(qty=5))
    assert (excinfo.value.status_code, excinfo.value.code) == (422, 42210000)


def test_a_partial_take_profit_fill_resizes_the_stop_loss_to_the_rest(
    sim: SimServer, client: TradingClient, fresh_symbol: Symbol
) -> None:
    symbol = fresh_symbol("50.00")
    entry = client.submit_order(bracket_buy(symbol, 10, limit=49, take_profit=55, stop=45))
    sim.advance(1)
    sim.fill(order_id=str(entry.id))
    legs = _legs(client, entry.id)
    sim.fill(order_id=str(legs["limit"].id), qty="4", price="55")

    legs = _legs(client, entry.id)
    assert (legs["limit"].status, legs["stop"].qty) == (OrderStatus.PARTIALLY_FILLED, "6")
    assert client.get_open_position(symbol).qty_available == "0"  # the 6 left are still held once
    sim.set_price(symbol, "44.00")
    legs = _legs(client, entry.id)
    assert (legs["stop"].status, legs["stop"].filled_qty) == (OrderStatus.FILLED, "6")
    assert legs["limit"].status == OrderStatus.REPLACED
    with pytest.raises(APIError):
        client.get_open_position(symbol)


@pytest.mark.parametrize("omit_p", [0.0, 1.0])
def test_a_take_profit_fill_cancels_the_stop_loss_even_when_its_event_is_omitted(
    make_sim: Sim, client_for: Client, recorder: Recorder, omit_p: float
) -> None:
    sim = make_sim(parents=[], faults={"omit_sibling_cancel_event_p": omit_p})
    client = client_for(sim)
    events = recorder(sim)
    entry = client.submit_order(bracket_buy("OKE", 10, limit=72.1, take_profit=75, stop=70))
    events.wait_for(entry.id, "fill")
    legs = _legs(client, entry.id)

    sim.set_price("OKE", "75.50")
    events.wait_for(legs["limit"].id, "fill")
    marker = client.submit_order(MarketOrderRequest(symbol="STWD", qty=1, side="buy", time_in_force="day"))
    events.wait_for(marker.id, "fill")  # a canceled event for the stop would have arrived before this

    assert client.get_order_by_id(legs["stop"].id).status == OrderStatus.CANCELED
    sent = [e.event for e in events.for_order(legs["stop"].id)]
    assert sent == ([] if omit_p else ["canceled"])


@pytest.mark.parametrize(("exit_leg", "armed_type"), [("stop_loss", "stop"), ("take_profit", "limit")])
def test_an_oto_arms_its_one_leg_when_the_entry_completes(
    sim: SimServer, client: TradingClient, fresh_symbol: Symbol, exit_leg: str, armed_type: str
) -> None:
    symbol = fresh_symbol("50.00")
    leg = {exit_leg: {"stop_price": 45} if exit_leg == "stop_loss" else {"limit_price": 55}}
    entry = client.submit_order(
        LimitOrderRequest(
            symbol=symbol,
            qty=10,
            side="buy",
            time_in_force="gtc",
            limit_price=49,
            order_class=OrderClass.OTO,
            **leg,
        )
    )
    sim.advance(1)
    sim.fill(order_id=str(entry.id), qty="5")
    assert [(t, x.status) for t, x in _legs(client, entry.id).items()] == [(armed_type, OrderStatus.HELD)]

    sim.fill(order_id=str(entry.id))
    sim.advance(1)

    (armed,) = _legs(client, entry.id).values()
    assert (armed.status, armed.qty) == (OrderStatus.NEW, "10")
    flat_open = client.get_orders(GetOrdersRequest(symbols=[symbol]))
    assert [o.id for o in flat_open] == [armed.id]  # at the venue, so listed
    sim.set_price(symbol, "44.00" if exit_leg == "stop_loss" else "56.00")
    assert client.get_order_by_id(armed.id).status == OrderStatus.FILLED
    with pytest.raises(APIError):
        client.get_open_position(symbol)


def test_canceling_a_held_leg_while_the_entry_works_cancels_the_whole_group(
    sim: SimServer, client: TradingClient, fresh_symbol: Symbol
) -> None:
    symbol = fresh_symbol("50.00")
    entry = client.submit_order(bracket_buy(symbol, 10, limit=49, take_profit=55, stop=45))
    sim.advance(1)
    sim.fill(order_id=str(entry.id), qty="2")
    client.cancel_order_by_id(_legs(client, entry.id)["stop"].id)
    sim.advance(1)

    parent = client.get_order_by_id(entry.id, GetOrderByIdRequest(nested=True))
    assert {parent.status, *(leg.status for leg in parent.legs or [])} == {OrderStatus.CANCELED}
    assert Decimal(_position_qty(client, symbol)) == 2


def test_a_day_brackets_exits_expire_at_the_close_and_leave_the_position_bare(
    make_sim: Sim, client_for: Client
) -> None:
    sim = make_sim(parents=[], market={"calendar": True})  # Friday 11:59 ET; the close is at 16:00 ET
    client = client_for(sim)
    entry = client.submit_order(bracket_buy("STWD", 10, limit=19.5, take_profit=22, stop=18, tif="day"))
    sim.advance(1)
    sim.fill(order_id=str(entry.id))
    legs = _legs(client, entry.id)
    assert {leg.time_in_force for leg in legs.values()} == {TimeInForce.DAY}  # the legs take the entry's TIF
    assert legs["limit"].status == OrderStatus.NEW

    sim.advance(4 * 3600 + 60)

    assert {leg.status for leg in _legs(client, entry.id).values()} == {OrderStatus.EXPIRED}
    assert client.get_open_position("STWD").qty_available == "10"
