"""Stops as a venue works them: a stop already through the market triggers on arrival, a stop-limit keeps its
limit once triggered (and rests if the price is past it), trailing stops follow the high-water mark."""

from __future__ import annotations

from typing import Any

from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderStatus
from alpaca.trading.requests import (
    GetOrderByIdRequest,
    LimitOrderRequest,
    StopLimitOrderRequest,
    StopLossRequest,
    StopOrderRequest,
    TakeProfitRequest,
    TrailingStopOrderRequest,
)
from simtools import Client, Recorder, Sim, wait_until

HOLDING: dict[str, Any] = {"account": {"positions": [{"symbol": "OKE", "qty": "10"}]}}  # OKE at 72.10


def _status(client: TradingClient, order_id: object) -> OrderStatus:
    return client.get_order_by_id(str(order_id)).status


def test_a_sell_stop_above_the_price_triggers_on_arrival(
    make_sim: Sim, client_for: Client, recorder: Recorder
) -> None:
    sim = make_sim(**HOLDING)
    client = client_for(sim)
    events = recorder(sim)

    stop = client.submit_order(
        StopOrderRequest(symbol="OKE", qty=10, side="sell", time_in_force="gtc", stop_price=73)
    )

    [fill] = events.wait_for(stop.id, "fill")
    assert fill.price == 72.10
    assert [e.event for e in events.for_order(stop.id)] == ["new", "fill"]


def test_an_oco_stop_leg_through_the_market_triggers_when_placed(make_sim: Sim, client_for: Client) -> None:
    sim = make_sim(**HOLDING)
    client = client_for(sim)

    oco = client.submit_order(
        LimitOrderRequest(
            symbol="OKE",
            qty=10,
            side="sell",
            time_in_force="gtc",
            limit_price=80,
            order_class="oco",
            take_profit=TakeProfitRequest(limit_price=80),
            stop_loss=StopLossRequest(stop_price=73),
        )
    )
    [stop_leg] = client.get_order_by_id(oco.id, GetOrderByIdRequest(nested=True)).legs or []

    wait_until(lambda: _status(client, stop_leg.id) == OrderStatus.FILLED)
    assert _status(client, oco.id) == OrderStatus.REPLACED


def test_a_triggered_stop_limit_leg_keeps_its_limit(make_sim: Sim, client_for: Client) -> None:
    sim = make_sim(**HOLDING)
    client = client_for(sim)
    oco = client.submit_order(
        LimitOrderRequest(
            symbol="OKE",
            qty=10,
            side="sell",
            time_in_force="gtc",
            limit_price=80,
            order_class="oco",
            take_profit=TakeProfitRequest(limit_price=80),
            stop_loss=StopLossRequest(stop_price=70, limit_price=69.5),
        )
    )
    [stop_leg] = client.get_order_by_id(oco.id, GetOrderByIdRequest(nested=True)).legs or []

    sim.set_price("OKE", "69.00")  # through the stop and past the limit: triggered, resting
    wait_until(lambda: _status(client, stop_leg.id) == OrderStatus.NEW)
    resting = client.get_order_by_id(stop_leg.id)
    sim.set_price("OKE", "69.60")
    wait_until(lambda: _status(client, stop_leg.id) == OrderStatus.FILLED)

    assert (resting.type, resting.limit_price, resting.filled_qty) == ("stop_limit", "69.5", "0")
    assert client.get_order_by_id(stop_leg.id).filled_avg_price == "69.6"


def test_a_simple_stop_limit_through_the_market_rests_at_its_limit(make_sim: Sim, client_for: Client) -> None:
    sim = make_sim(**HOLDING)
    client = client_for(sim)

    order = client.submit_order(
        StopLimitOrderRequest(
            symbol="OKE", qty=5, side="sell", time_in_force="gtc", stop_price=73, limit_price=72.5
        )
    )
    wait_until(lambda: _status(client, order.id) == OrderStatus.NEW)
    sim.set_price("OKE", "72.60")

    wait_until(lambda: _status(client, order.id) == OrderStatus.FILLED)
    assert client.get_order_by_id(order.id).filled_avg_price == "72.6"


def test_a_trailing_stop_by_percent_follows_the_high_water_mark(make_sim: Sim, client_for: Client) -> None:
    sim = make_sim(
        account={"positions": [{"symbol": "EPD", "qty": "10"}]}, symbols={"EPD": {"price": "100"}}, parents=[]
    )
    client = client_for(sim)
    order = client.submit_order(
        TrailingStopOrderRequest(symbol="EPD", qty=10, side="sell", time_in_force="gtc", trail_percent=5)
    )
    wait_until(lambda: _status(client, order.id) == OrderStatus.NEW)

    sim.set_price("EPD", "110")
    raised = client.get_order_by_id(order.id)
    sim.set_price("EPD", "105")  # above 104.5: holds
    held = client.get_order_by_id(order.id)
    sim.set_price("EPD", "104")

    assert (raised.hwm, raised.stop_price) == ("110", "104.5")
    assert (held.status, held.hwm) == (OrderStatus.NEW, "110")
    wait_until(lambda: _status(client, order.id) == OrderStatus.FILLED)
    assert client.get_order_by_id(order.id).filled_avg_price == "104"


def test_a_buy_trailing_stop_by_price_follows_the_low_water_mark(make_sim: Sim, client_for: Client) -> None:
    sim = make_sim(symbols={"EPD": {"price": "100"}}, parents=[])
    client = client_for(sim)
    order = client.submit_order(
        TrailingStopOrderRequest(symbol="EPD", qty=3, side="buy", time_in_force="gtc", trail_price=2)
    )
    wait_until(lambda: _status(client, order.id) == OrderStatus.NEW)

    sim.set_price("EPD", "95")
    lowered = client.get_order_by_id(order.id)
    sim.set_price("EPD", "97.5")

    assert (lowered.hwm, lowered.stop_price) == ("95", "97")
    wait_until(lambda: _status(client, order.id) == OrderStatus.FILLED)
