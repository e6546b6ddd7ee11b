"""Faults limited to a window of virtual time and/or to symbols and routes, virtual-time HTTP latency, and the
omitted sibling `canceled` event, as alpaca-py (or raw HTTP, for headers) meets them."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import httpx
import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderStatus, QueryOrderStatus
from alpaca.trading.models import Order
from alpaca.trading.requests import (
    GetOrderByIdRequest,
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    StopLossRequest,
    TakeProfitRequest,
)
from simtools import HEADERS, START, Client, Recorder, Sim, wait_until


def buy(symbol: str = "OKE", qty: float = 1, coid: str | None = None) -> MarketOrderRequest:
    return MarketOrderRequest(symbol=symbol, qty=qty, side="buy", time_in_force="day", client_order_id=coid)


def window(**fields: Any) -> dict[str, Any]:
    return {"faults": {"windows": [fields]}}


def test_a_silent_stream_window_drops_every_event_and_only_in_the_window(
    make_sim: Sim, client_for: Client, recorder: Recorder
) -> None:
    sim = make_sim(**window(from_s=100, to_s=200, stream_silent=True))
    client = client_for(sim)
    events = recorder(sim)

    before = client.submit_order(buy(coid="before"))
    events.wait_for(before.id, "fill")
    sim.advance(150)
    during = client.submit_order(buy(coid="during"))
    wait_until(lambda: client.get_order_by_id(during.id).status == OrderStatus.FILLED)
    sim.advance(100)
    after = client.submit_order(buy(coid="after"))
    events.wait_for(
        after.id, "fill"
    )  # delivered in order on one connection: `during`'s would have come first

    assert events.for_order(during.id) == []
    assert sim.snapshot()["counters"]["faults"]["stream_silent"] == 2  # its new and fill


def test_a_window_limited_to_a_symbol_spares_the_others(
    make_sim: Sim, client_for: Client, recorder: Recorder
) -> None:
    sim = make_sim(**window(from_s=0, to_s=1000, stream_silent=True, symbols=["OKE"]))
    client = client_for(sim)
    events = recorder(sim)

    oke = client.submit_order(buy("OKE"))
    wait_until(lambda: client.get_order_by_id(oke.id).status == OrderStatus.FILLED)
    stwd = client.submit_order(buy("STWD"))
    events.wait_for(stwd.id, "fill")

    assert events.for_order(oke.id) == []


def test_a_429_storm_says_when_it_ends_and_ends_then(make_sim: Sim, client_for: Client) -> None:
    sim = make_sim(**window(from_s=60, to_s=150, http_429_storm=True))
    client = client_for(sim)
    storm_end = int((START + timedelta(seconds=150)).timestamp())

    with httpx.Client(base_url=sim.base_url, headers=HEADERS) as http:
        assert http.get("/v2/account").status_code == 200
        sim.advance(60)
        refused = http.get("/v2/account")
        with pytest.raises(APIError) as sdk_refused:
            client.get_account()  # alpaca-py retries a 429 three times, then gives up
        sim.advance(90)
        after = http.get("/v2/account")

    assert refused.status_code == 429
    assert refused.headers["X-Ratelimit-Remaining"] == "0"
    assert int(refused.headers["X-Ratelimit-Reset"]) == storm_end
    assert sdk_refused.value.status_code == 429
    assert after.status_code == 200
    assert int(after.headers["X-Ratelimit-Remaining"]) > 0


def test_5xx_on_post_orders_only_leaves_reads_working(make_sim: Sim, client_for: Client) -> None:
    sim = make_sim(
        **window(from_s=0, to_s=100, http_5xx_p=1.0, http_5xx_statuses=[503], routes=["POST /v2/orders"])
    )
    client = client_for(sim)

    with pytest.raises(APIError) as refused:
        client.submit_order(buy(coid="in-window"))
    listed = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL))
    sim.advance(100)
    accepted = client.submit_order(buy(coid="in-window"))

    assert refused.value.status_code == 503
    assert listed == []
    assert accepted.client_order_id == "in-window"


def test_lost_post_responses_in_a_window_take_effect(make_sim: Sim, client_for: Client) -> None:
    sim = make_sim(**window(from_s=0, to_s=100, lost_response_p=1.0))
    client = client_for(sim)

    with pytest.raises(APIError) as lost:
        client.submit_order(buy(coid="lost-1"))  # every answer lost, alpaca-py's retries included

    assert lost.value.status_code == 504
    orders = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL))
    assert [o.client_order_id for o in orders] == ["lost-1"], (
        "the first POST took effect, the retries met 422"
    )
    assert sim.snapshot()["counters"]["rejections"]["by_code"]["40010001"] >= 1


def _submit_in_thread(
    client: TradingClient, request: MarketOrderRequest
) -> tuple[threading.Thread, list[Order]]:
    result: list[Order] = []
    thread = threading.Thread(target=lambda: result.append(client.submit_order(request)), daemon=True)
    thread.start()
    return thread, result


def test_http_latency_is_virtual_time(make_sim: Sim, client_for: Client) -> None:
    """On a stepped clock a request waits until the clock has moved by the latency; the order is made then."""
    sim = make_sim(latency={"routes": {"POST /v2/orders": 5.0}})
    client = client_for(sim)

    thread, result = _submit_in_thread(client, buy(coid="slow"))
    wait_until(lambda: sim.snapshot()["counters"]["requests"].get("POST /v2/orders") == 1)
    assert client.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL)) == []  # GET has no latency
    sim.advance(5)
    thread.join(timeout=10)

    [order] = result
    assert order.created_at == START + timedelta(seconds=5)


def test_a_latency_window_delays_only_its_route(make_sim: Sim, client_for: Client) -> None:
    sim = make_sim(**window(from_s=0, to_s=100, latency_s=3.0, routes=["POST /v2/orders"]))
    client = client_for(sim)

    thread, result = _submit_in_thread(client, buy(coid="slow"))
    wait_until(lambda: sim.snapshot()["counters"]["faults"].get("window_latency") == 1)
    sim.advance(3)
    thread.join(timeout=10)

    assert result[0].created_at == START + timedelta(seconds=3)


def test_the_omitted_sibling_cancel_event_still_cancels_the_sibling(
    make_sim: Sim, client_for: Client, recorder: Recorder
) -> None:
    sim = make_sim(
        account={"positions": [{"symbol": "OKE", "qty": "10"}]},
        faults={"omit_sibling_cancel_event_p": 1.0},
    )
    client = client_for(sim)
    events = recorder(sim)
    oco = client.submit_order(
        LimitOrderRequest(
            symbol="OKE",
            qty=10,
            side="sell",
            time_in_force="gtc",
            limit_price=75,
            order_class="oco",
            take_profit=TakeProfitRequest(limit_price=75),
            stop_loss=StopLossRequest(stop_price=70),
        )
    )
    [stop_leg] = client.get_order_by_id(oco.id, GetOrderByIdRequest(nested=True)).legs or []
    events.wait_for(oco.id, "new")

    sim.set_price("OKE", "75.50")
    events.wait_for(oco.id, "fill")
    marker = client.submit_order(buy("STWD", coid="marker"))
    events.wait_for(marker.id, "fill")  # anything sent for the stop leg would have arrived before this

    assert client.get_order_by_id(stop_leg.id).status == OrderStatus.CANCELED
    assert [e.event for e in events.for_order(stop_leg.id)] == []
    assert sim.snapshot()["counters"]["faults"]["omit_sibling_cancel_event"] == 1
