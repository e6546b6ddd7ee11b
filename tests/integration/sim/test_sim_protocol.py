"""Contract checks: every order shape passes alpaca-py's models, raw request and stream protocol details,
the control API over HTTP, and `serve()` as the CLI runs it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from decimal import Decimal

import httpx
import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderClass, OrderStatus
from alpaca.trading.models import Order
from alpaca.trading.requests import (
    ClosePositionRequest,
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    ReplaceOrderRequest,
    StopLimitOrderRequest,
    StopOrderRequest,
    TrailingStopOrderRequest,
)
from simtools import KEY, SECRET, StreamRecorder
from websockets.sync.client import connect

from ordersync.sim import SimServer


def test_every_kind_of_order_round_trips_through_the_sdk_models(
    sim: SimServer, client: TradingClient, fresh_symbol: Callable[..., str]
) -> None:
    symbol = fresh_symbol("50.00")
    client.submit_order(MarketOrderRequest(symbol=symbol, qty=30, side="buy", time_in_force="day"))
    sim.advance(1)
    requests = [
        LimitOrderRequest(symbol=symbol, qty=1, side="sell", time_in_force="gtc", limit_price=60),
        StopOrderRequest(symbol=symbol, qty=1, side="sell", time_in_force="gtc", stop_price=40),
        StopLimitOrderRequest(
            symbol=symbol, qty=1, side="sell", time_in_force="gtc", stop_price=40, limit_price=39.5
        ),
        TrailingStopOrderRequest(symbol=symbol, qty=1, side="sell", time_in_force="gtc", trail_percent=5),
        TrailingStopOrderRequest(symbol=symbol, qty=1, side="sell", time_in_force="day", trail_price=2.5),
        LimitOrderRequest(
            symbol=symbol,
            qty=2,
            side="sell",
            time_in_force="gtc",
            order_class=OrderClass.OCO,
            take_profit={"limit_price": 58},
            stop_loss={"stop_price": 42, "limit_price": 41.5},
        ),
    ]
    submitted = [client.submit_order(r) for r in requests]
    sim.advance(1)
    client.replace_order_by_id(submitted[0].id, ReplaceOrderRequest(limit_price=61))
    client.cancel_order_by_id(submitted[1].id)
    client.close_position(symbol, ClosePositionRequest(qty="5"))  # a market sell of 5 of the 24 not held
    client.submit_order(
        LimitOrderRequest(
            symbol=symbol,
            qty=2,
            side="buy",
            time_in_force="day",
            limit_price=45,
            order_class=OrderClass.OTO,
            stop_loss={"stop_price": 40},
        )
    )  # complex orders are exempt from the wash-trade check against the resting sells
    sim.advance(1)

    listed = client.get_orders(GetOrdersRequest(status="all", symbols=[symbol], nested=True))
    flat = client.get_orders(GetOrdersRequest(status="all", symbols=[symbol]))
    assert len(flat) > len(listed)
    raw = [o for o in sim.snapshot()["orders"] if o["symbol"] == symbol]
    parsed = [Order(**o) for o in raw]
    statuses = {o.status for o in parsed}
    assert {OrderStatus.FILLED, OrderStatus.NEW, OrderStatus.HELD, OrderStatus.REPLACED} <= statuses
    assert OrderStatus.CANCELED in statuses
    trailing = next(o for o in parsed if o.trail_price == "2.5")
    assert (trailing.stop_price, trailing.hwm) == ("47.5", "50")
    assert {o.position_intent.value for o in parsed if o.position_intent} >= {"buy_to_open", "sell_to_close"}


def test_a_trailing_stop_follows_the_high_water_mark_and_triggers(
    sim: SimServer, client: TradingClient, fresh_symbol: Callable[..., str]
) -> None:
    symbol = fresh_symbol("50.00")
    client.submit_order(MarketOrderRequest(symbol=symbol, qty=3, side="buy", time_in_force="day"))
    sim.advance(1)
    stop = client.submit_order(
        TrailingStopOrderRequest(symbol=symbol, qty=3, side="sell", time_in_force="gtc", trail_price=1)
    )
    sim.advance(1)
    for price in ("53.00", "52.10"):
        sim.set_price(symbol, price)
    moved = client.get_order_by_id(stop.id)
    assert (moved.status, moved.hwm, moved.stop_price) == (OrderStatus.NEW, "53", "52")

    sim.set_price(symbol, "51.90")

    filled = client.get_order_by_id(stop.id)
    assert (filled.status, filled.filled_avg_price) == (OrderStatus.FILLED, "51.9")


def test_request_bodies_the_sdk_would_not_send_are_refused(sim: SimServer, client: TradingClient) -> None:
    base = {"symbol": "OKE", "qty": "1", "side": "buy", "type": "market", "time_in_force": "day"}
    bad_bodies = [
        {k: v for k, v in base.items() if k != "symbol"},
        base | {"side": "hold"},
        base | {"type": "market", "limit_price": "70"},
        base | {"type": "stop"},
        base | {"qty": "abc"},
        base | {"qty": "-1"},
        base | {"time_in_force": "DAY"},
        base | {"type": "stop", "stop_price": "60", "order_class": "bracket"},
        base
        | {"order_class": "oco", "take_profit": {"limit_price": "80"}, "stop_loss": {"stop_price": "60"}},
        base | {"type": "trailing_stop"},
    ]
    for body in bad_bodies:
        with pytest.raises(APIError) as excinfo:
            client.post("/orders", body)
        assert (excinfo.value.status_code, excinfo.value.code) == (422, 40010001), body
    assert client.post("/orders", base | {"qty": "2"})["qty"] == "2"  # numeric strings are accepted


def test_the_venue_can_reject_after_a_200(
    make_sim: Callable[..., SimServer],
    client_for: Callable[..., TradingClient],
    recorder: Callable[[SimServer], StreamRecorder],
) -> None:
    sim = make_sim(parents=[{"id": "doomed", "symbol": "OKE", "qty": "5", "reject_after_s": 2}])
    client, stream = client_for(sim), recorder(sim)
    order = client.submit_order(
        MarketOrderRequest(symbol="OKE", qty=5, side="buy", time_in_force="day", client_order_id="doomed")
    )
    assert order.status == OrderStatus.ACCEPTED
    sim.advance(3)

    rejected = stream.wait_for(order.id, "rejected")[0]
    assert (rejected.order.status, rejected.order.failed_at is not None) == (OrderStatus.REJECTED, True)


def test_stream_protocol_frames_are_exactly_alpacas(sim: SimServer, client: TradingClient) -> None:
    with connect(sim.stream_url + "/") as ws:  # the trailing-slash form of older SDKs works too

        def exchange(message: dict[str, object]) -> object:
            ws.send(json.dumps(message))
            frame = ws.recv(timeout=5)
            assert isinstance(frame, bytes)  # binary frames, as the paper API sends
            return json.loads(frame)

        listen = {"action": "listen", "data": {"streams": ["trade_updates", "bogus"]}}
        assert exchange(listen) == {
            "stream": "authorization",
            "data": {"status": "unauthorized", "action": "listen"},
        }
        assert exchange({"action": "authenticate", "data": {"key_id": KEY, "secret_key": "wrong"}}) == {
            "stream": "authorization",
            "data": {
                "action": "authenticate",
                "status": "unauthorized",
                "message": "access key verification failed",
            },
        }
        assert exchange({"action": "authenticate", "data": {"key_id": KEY, "secret_key": SECRET}}) == {
            "stream": "authorization",
            "data": {"action": "authenticate", "status": "authorized"},
        }
        assert exchange(listen) == {"stream": "listening", "data": {"streams": ["trade_updates"]}}

        order = client.submit_order(MarketOrderRequest(symbol="OKE", qty=1, side="buy", time_in_force="day"))
        first = ws.recv(timeout=5)
    assert isinstance(first, bytes)
    update = json.loads(first)
    assert update["stream"] == "trade_updates"
    assert (update["data"]["event"], update["data"]["order"]["id"]) == ("new", str(order.id))
    assert update["data"]["timestamp"].endswith("Z")


def test_control_api_over_http(sim: SimServer, fresh_symbol: Callable[..., str]) -> None:
    symbol = fresh_symbol("10.00")
    with httpx.Client(base_url=sim.base_url, timeout=10) as http:
        assert http.post("/sim/price", json={"symbol": symbol, "price": "11.5"}).json()["price"] == "11.5"
        before = http.get("/sim/clock").json()["now"]
        after = http.post("/sim/clock/advance", json={"seconds": 2}).json()["now"]
        assert after > before
        bad = http.post("/sim/faults", json={"drop_event_p": 3})
        assert (bad.status_code, bad.json()["message"].split(":")[0]) == (422, "faults.drop_event_p")
        assert http.post("/sim/faults", json={"seed": 1}).json()["seed"] == 1
        assert http.post("/sim/stream/disconnect").json() == {"dropped": 0}
        state = http.get("/sim/state").json()
    assert state["prices"][symbol] == "11.5"
    assert {"orders", "positions", "account", "counters", "faults", "rate_limit", "stream"} <= set(state)
    assert Decimal(state["account"]["cash"]) > 0


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_serve_runs_the_default_scenario_until_a_signal_and_exits_cleanly(
    stop_signal: signal.Signals,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = os.environ | {"APCA_API_KEY_ID": "cli-key", "APCA_API_SECRET_KEY": "cli-secret"}
    code = f"from ordersync.sim import serve; serve('127.0.0.1', {port}, None, 'fast:60')"
    process = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while True:
            try:
                clock = httpx.get(f"{url}/sim/clock", timeout=1).json()
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "serve() did not come up"
                time.sleep(0.05)
        assert clock["kind"] == "FastClock"
        assert clock["now"].startswith("2025-10-10T15:59")  # the default scenario's start
        headers = {"APCA-API-KEY-ID": "cli-key", "APCA-API-SECRET-KEY": "cli-secret"}
        assert httpx.get(f"{url}/v2/account", headers=headers).status_code == 200
        wrong = {"APCA-API-KEY-ID": "other", "APCA-API-SECRET-KEY": "pair"}
        assert httpx.get(f"{url}/v2/account", headers=wrong).status_code == 401
    finally:
        process.send_signal(stop_signal)
        _, stderr = process.communicate(timeout=15)
    assert process.returncode == 0, stderr.decode()
