"""PATCH replace as Alpaca runs it: asynchronous (pending_replace, then replaced and the new order lives),
lost when the old order fills first (order_replace_rejected, the new order never lives), and allowed on the
exit legs of a bracket after its entry filled, which stay in their group."""

from __future__ import annotations

from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderStatus
from alpaca.trading.requests import (
    GetOrderByIdRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    ReplaceOrderRequest,
    StopLossRequest,
    TakeProfitRequest,
)
from simtools import Client, Recorder, Sim, wait_until

SLOW_REPLACE = {"latency": {"replace_s": 5.0}, "parents": []}


def _status(client: TradingClient, order_id: object) -> OrderStatus:
    return client.get_order_by_id(str(order_id)).status


def test_a_replace_is_pending_until_the_venue_confirms_it(
    make_sim: Sim, client_for: Client, recorder: Recorder
) -> None:
    sim = make_sim(**SLOW_REPLACE)
    client = client_for(sim)
    events = recorder(sim)
    old = client.submit_order(
        LimitOrderRequest(symbol="OKE", qty=4, side="buy", time_in_force="gtc", limit_price=70)
    )
    events.wait_for(old.id, "new")

    new = client.replace_order_by_id(old.id, ReplaceOrderRequest(limit_price=71))
    events.wait_for(old.id, "pending_replace")
    pending = (_status(client, old.id), _status(client, new.id))
    sim.advance(5)

    assert pending == (OrderStatus.PENDING_REPLACE, OrderStatus.ACCEPTED)
    events.wait_for(old.id, "replaced")
    events.wait_for(new.id, "new")
    replaced = client.get_order_by_id(old.id)
    assert (replaced.status, str(replaced.replaced_by)) == (OrderStatus.REPLACED, str(new.id))
    assert (str(new.replaces), new.limit_price) == (str(old.id), "71")


def test_a_fill_before_the_confirmation_rejects_the_replace(
    make_sim: Sim, client_for: Client, recorder: Recorder
) -> None:
    sim = make_sim(**SLOW_REPLACE)
    client = client_for(sim)
    events = recorder(sim)
    old = client.submit_order(
        LimitOrderRequest(symbol="OKE", qty=4, side="buy", time_in_force="gtc", limit_price=70)
    )
    events.wait_for(old.id, "new")
    new = client.replace_order_by_id(old.id, ReplaceOrderRequest(limit_price=69))

    sim.set_price("OKE", "69.90")  # the old order (limit 70) still works and fills
    events.wait_for(old.id, "fill")
    sim.advance(5)

    events.wait_for(old.id, "order_replace_rejected")
    assert _status(client, old.id) == OrderStatus.FILLED
    assert _status(client, new.id) == OrderStatus.REJECTED
    assert events.for_order(new.id) == []  # the new order never lived
    assert client.get_open_position("OKE").qty == "4"


def test_the_exit_legs_of_a_filled_bracket_can_be_replaced_and_stay_in_the_group(
    make_sim: Sim, client_for: Client
) -> None:
    sim = make_sim(parents=[])
    client = client_for(sim)
    entry = client.submit_order(
        MarketOrderRequest(
            symbol="OKE",
            qty=10,
            side="buy",
            time_in_force="gtc",
            order_class="bracket",
            take_profit=TakeProfitRequest(limit_price=80),
            stop_loss=StopLossRequest(stop_price=65),
        )
    )
    wait_until(lambda: _status(client, entry.id) == OrderStatus.FILLED)
    legs = client.get_order_by_id(entry.id, GetOrderByIdRequest(nested=True)).legs or []
    take_profit = next(leg for leg in legs if leg.type == "limit")
    stop_loss = next(leg for leg in legs if leg.type == "stop")
    assert (take_profit.status, _status(client, stop_loss.id)) == (OrderStatus.NEW, OrderStatus.HELD)

    new_tp = client.replace_order_by_id(take_profit.id, ReplaceOrderRequest(limit_price=79))
    new_sl = client.replace_order_by_id(stop_loss.id, ReplaceOrderRequest(stop_price=66))
    wait_until(lambda: _status(client, stop_loss.id) == OrderStatus.REPLACED)
    wait_until(lambda: _status(client, new_tp.id) == OrderStatus.NEW)

    assert _status(client, new_sl.id) == OrderStatus.HELD
    legs_now = client.get_order_by_id(entry.id, GetOrderByIdRequest(nested=True)).legs or []
    assert {str(leg.id) for leg in legs_now} == {str(new_tp.id), str(new_sl.id)}
    assert client.get_open_position("OKE").qty_available == "0"  # the group still reserves the shares once
    sim.set_price("OKE", "65.50")  # through the new stop (66), not the old one (65)
    wait_until(lambda: _status(client, new_sl.id) == OrderStatus.FILLED)
    assert _status(client, new_tp.id) == OrderStatus.REPLACED  # the stop's trigger ends its sibling
