"""Injected HTTP faults as alpaca-py meets them: lost responses, 5xx, 429 bursts, scheduled stream drops."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderStatus, QueryOrderStatus
from alpaca.trading.requests import GetOrdersRequest, MarketOrderRequest
from simtools import wait_until

from ordersync.sim import SimServer


def buy(qty: float, coid: str | None = None) -> MarketOrderRequest:
    return MarketOrderRequest(symbol="OKE", qty=qty, side="buy", time_in_force="gtc", client_order_id=coid)


def test_lost_response_creates_exactly_one_order_and_the_sdk_retry_gets_422(
    make_sim: Callable[..., SimServer], client_for: Callable[..., TradingClient]
) -> None:
    sim = make_sim(
        faults={"on_request": [{"nth": 1, "method": "POST", "path": "/v2/orders", "fault": "lost_response"}]}
    )
    client = client_for(sim)

    with pytest.raises(APIError) as excinfo:
        client.submit_order(
            buy(5, coid="intent-1")
        )  # 504, retried by alpaca-py with the same client_order_id

    assert (excinfo.value.status_code, excinfo.value.code) == (422, 40010001)
    adopted = client.get_order_by_client_id("intent-1")
    orders = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL))
    assert [o.id for o in orders] == [adopted.id]
    counters = sim.snapshot()["counters"]
    assert counters["faults"]["lost_response"] == 1
    assert counters["requests"]["POST /v2/orders"] == 2


def test_lost_response_without_client_order_id_doubles_the_order(
    make_sim: Callable[..., SimServer], client_for: Callable[..., TradingClient]
) -> None:
    """Why ordersync always sets client_order_id: alpaca-py's retry of a 504 places a second order."""
    sim = make_sim(
        faults={"on_request": [{"nth": 1, "path": "/v2/orders", "method": "POST", "fault": "lost_response"}]}
    )
    client = client_for(sim)

    client.submit_order(buy(5))

    assert len(client.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL))) == 2


def test_5xx_before_the_handler_changes_nothing_and_503_is_not_retried(
    make_sim: Callable[..., SimServer], client_for: Callable[..., TradingClient]
) -> None:
    sim = make_sim(
        faults={"on_request": [{"nth": 1, "path": "/v2/orders", "method": "POST", "fault": "503"}]}
    )
    client = client_for(sim)

    with pytest.raises(APIError) as excinfo:
        client.submit_order(buy(1, coid="after-503"))

    assert excinfo.value.status_code == 503
    assert client.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL)) == []
    assert client.submit_order(buy(1, coid="after-503")).client_order_id == "after-503"


def test_429_burst_is_retried_by_the_sdk_until_it_passes(
    make_sim: Callable[..., SimServer], client_for: Callable[..., TradingClient]
) -> None:
    sim = make_sim(faults={"on_request": [{"nth": 1, "count": 3, "path": "/v2/account", "fault": "429"}]})
    client = client_for(sim)

    assert client.get_account().status == "ACTIVE"  # alpaca-py retried 429 three times

    counters = sim.snapshot()["counters"]
    assert (counters["faults"]["http_429"], counters["requests"]["GET /v2/account"]) == (3, 4)


def test_scheduled_stream_drop_and_random_5xx_are_reproducible_from_the_seed(
    make_sim: Callable[..., SimServer], client_for: Callable[..., TradingClient]
) -> None:
    def statuses(sim: SimServer) -> list[int]:
        client = client_for(sim)
        client._retry = 0
        seen = []
        for _ in range(20):
            try:
                client.get_clock()
                seen.append(200)
            except APIError as e:
                seen.append(e.status_code or 0)
        return seen

    faults = {"seed": 11, "http_5xx_p": 0.3, "stream_drop_at_s": [30]}
    first, second = make_sim(faults=faults), make_sim(faults=faults)
    assert statuses(first) == statuses(second)
    assert set(statuses(first)) > {200}
    first.advance(31)
    assert first.snapshot()["counters"]["faults"]["stream_disconnect"] == 1


def test_added_latency_still_answers(
    make_sim: Callable[..., SimServer], client_for: Callable[..., TradingClient]
) -> None:
    sim = make_sim(faults={"latency_ms": 20, "routes": ["POST /v2/orders"]})
    client = client_for(sim)
    order = client.submit_order(buy(1))
    wait_until(lambda: client.get_order_by_id(order.id).status == OrderStatus.FILLED, what="the fill")
    assert sim.snapshot()["counters"]["faults"]["latency"] == 1
