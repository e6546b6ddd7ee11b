"""trade_updates through alpaca-py's TradingStream: events, fills, cancels, disconnects and stream faults."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from uuid import UUID

from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderStatus
from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest
from simtools import StreamRecorder, wait_until

from ordersync.sim import SimServer


def buy(symbol: str, qty: float, coid: str | None = None) -> MarketOrderRequest:
    return MarketOrderRequest(symbol=symbol, qty=qty, side="buy", time_in_force="gtc", client_order_id=coid)


def test_partial_fills_carry_per_execution_qty_and_cumulative_filled_qty(
    sim: SimServer, client: TradingClient, recorder: Callable[[SimServer], StreamRecorder]
) -> None:
    stream = recorder(sim)
    symbol = "EPD"
    order = client.submit_order(buy(symbol, 10, coid="plan-epd"))
    sim.advance(121)

    partials = stream.wait_for(order.id, "partial_fill", count=2)
    first, second = partials
    assert (Decimal(str(first.qty)), Decimal(str(first.price))) == (Decimal(3), Decimal("31.20"))
    assert (Decimal(str(second.qty)), Decimal(str(second.price))) == (Decimal(4), Decimal("31.25"))
    assert [Decimal(str(e.order.filled_qty)) for e in partials] == [Decimal(3), Decimal(7)]
    assert Decimal(str(second.position_qty)) - Decimal(str(first.position_qty)) == Decimal(4)
    assert first.execution_id != second.execution_id
    assert all(isinstance(e.execution_id, UUID) for e in partials)
    assert [e.event for e in stream.for_order(order.id)] == ["new", "partial_fill", "partial_fill"]


def test_market_order_goes_new_then_fill_with_position_qty(
    sim: SimServer,
    client: TradingClient,
    fresh_symbol: Callable[..., str],
    recorder: Callable[[SimServer], StreamRecorder],
) -> None:
    stream = recorder(sim)
    symbol = fresh_symbol("20.00")
    order = client.submit_order(buy(symbol, 5))
    assert order.status == OrderStatus.ACCEPTED

    fill = stream.wait_for(order.id, "fill")[0]
    assert [e.event for e in stream.for_order(order.id)] == ["new", "fill"]
    assert (fill.qty, fill.price, fill.position_qty) == (5.0, 20.0, 5.0)
    assert fill.order.status == OrderStatus.FILLED
    assert fill.timestamp.tzinfo is not None


def test_cancel_answers_204_then_canceled_arrives_on_the_stream(
    sim: SimServer,
    client: TradingClient,
    fresh_symbol: Callable[..., str],
    recorder: Callable[[SimServer], StreamRecorder],
) -> None:
    stream = recorder(sim)
    symbol = fresh_symbol("20.00")
    order = client.submit_order(
        LimitOrderRequest(symbol=symbol, qty=3, side="buy", time_in_force="gtc", limit_price=15)
    )
    stream.wait_for(order.id, "new")

    client.cancel_order_by_id(order.id)  # alpaca-py returns None on 204

    canceled = stream.wait_for(order.id, "canceled")[0]
    assert canceled.order.status == OrderStatus.CANCELED
    assert canceled.order.canceled_at is not None


def test_a_fill_that_races_the_cancel_wins_and_the_cancel_is_rejected(
    make_sim: Callable[..., SimServer],
    client_for: Callable[..., TradingClient],
    recorder: Callable[[SimServer], StreamRecorder],
) -> None:
    sim = make_sim(latency={"cancel_s": 5})
    client = client_for(sim)
    stream = recorder(sim)
    order = client.submit_order(
        LimitOrderRequest(symbol="OKE", qty=3, side="buy", time_in_force="gtc", limit_price=70)
    )
    sim.advance(1)
    client.cancel_order_by_id(order.id)
    sim.fill(order_id=str(order.id))  # the venue fills it while the cancel is in flight
    sim.advance(5)

    stream.wait_for(order.id, "order_cancel_rejected")
    assert [e.event for e in stream.for_order(order.id)] == ["new", "fill", "order_cancel_rejected"]
    assert client.get_order_by_id(order.id).status == OrderStatus.FILLED


def test_after_a_disconnect_missed_events_are_not_replayed_and_later_ones_arrive(
    sim: SimServer,
    client: TradingClient,
    fresh_symbol: Callable[..., str],
    recorder: Callable[[SimServer], StreamRecorder],
) -> None:
    stream = recorder(sim)
    symbol = fresh_symbol("20.00")
    first = client.submit_order(buy(symbol, 1))
    stream.wait_for(first.id, "fill")

    sim.disconnect_streams()
    missed = client.submit_order(buy(symbol, 1))  # filled while the SDK is reconnecting
    wait_until(lambda: client.get_order_by_id(missed.id).status == OrderStatus.FILLED, what="the missed fill")
    wait_until(lambda: sim.stream_listeners() == 1, timeout=10, what="alpaca-py to reconnect and listen")
    later = client.submit_order(buy(symbol, 1))

    stream.wait_for(later.id, "fill")
    assert stream.for_order(missed.id) == []
    assert sim.snapshot()["counters"]["faults"]["stream_disconnect"] >= 1


def test_duplicated_events_repeat_the_execution_id(
    make_sim: Callable[..., SimServer],
    client_for: Callable[..., TradingClient],
    recorder: Callable[[SimServer], StreamRecorder],
) -> None:
    sim = make_sim(faults={"seed": 3, "duplicate_event_p": 1.0})
    client = client_for(sim)
    stream = recorder(sim)
    order = client.submit_order(buy("OKE", 2))

    fills = stream.wait_for(order.id, "fill", count=2)
    assert fills[0].execution_id == fills[1].execution_id
    assert fills[0].timestamp == fills[1].timestamp
    assert [e.event for e in stream.for_order(order.id)] == ["new", "new", "fill", "fill"]
    assert sim.snapshot()["counters"]["faults"]["stream_duplicate"] == 2


def test_reordered_event_is_delivered_after_the_next_one(
    make_sim: Callable[..., SimServer],
    client_for: Callable[..., TradingClient],
    recorder: Callable[[SimServer], StreamRecorder],
) -> None:
    sim = make_sim(faults={"seed": 3, "reorder_event_p": 1.0})
    client = client_for(sim)
    stream = recorder(sim)
    order = client.submit_order(buy("OKE", 2))

    stream.wait_for(order.id, "new")
    assert [e.event for e in stream.for_order(order.id)] == ["fill", "new"]


def test_two_connections_both_receive_every_event(
    sim: SimServer,
    client: TradingClient,
    fresh_symbol: Callable[..., str],
    recorder: Callable[[SimServer], StreamRecorder],
) -> None:
    engine, poller = recorder(sim), recorder(sim)
    order = client.submit_order(buy(fresh_symbol("9.00"), 1))
    for stream in (engine, poller):
        stream.wait_for(order.id, "fill")
        assert [e.event for e in stream.for_order(order.id)] == ["new", "fill"]
