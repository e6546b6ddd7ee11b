"""Orders through alpaca-py against the simulator: submission, plans, reads, lists, and Alpaca's refusals."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, OrderStatus, QueryOrderStatus, TimeInForce
from alpaca.trading.models import Order
from alpaca.trading.requests import (
    GetOrderByIdRequest,
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    ReplaceOrderRequest,
    StopOrderRequest,
)
from simtools import wait_until

from ordersync.sim import SimServer


def market(
    symbol: str, qty: str, side: OrderSide = OrderSide.BUY, coid: str | None = None
) -> MarketOrderRequest:
    return MarketOrderRequest(
        symbol=symbol, qty=float(qty), side=side, time_in_force=TimeInForce.GTC, client_order_id=coid
    )


def limit_sell(symbol: str, qty: str, price: str, coid: str | None = None) -> LimitOrderRequest:
    return LimitOrderRequest(
        symbol=symbol,
        qty=float(qty),
        side=OrderSide.SELL,
        time_in_force=TimeInForce.GTC,
        limit_price=float(price),
        client_order_id=coid,
    )


def refusal(excinfo: pytest.ExceptionInfo[APIError]) -> dict[str, object]:
    body = json.loads(str(excinfo.value))
    assert isinstance(body, dict)
    return body


def test_market_buy_fills_per_plan_and_reads_back_by_id_client_id_and_lists(
    sim: SimServer, client: TradingClient
) -> None:
    order = client.submit_order(market("EPD", "10", coid="plan-epd"))
    assert order.status in (OrderStatus.ACCEPTED, OrderStatus.PENDING_NEW)
    assert order.filled_qty in ("0", 0.0)

    sim.advance(61)
    partly = client.get_order_by_id(order.id)
    assert (partly.status, Decimal(str(partly.filled_qty))) == (OrderStatus.PARTIALLY_FILLED, Decimal(3))
    sim.advance(60)
    by_client = client.get_order_by_client_id("plan-epd")
    assert by_client.id == order.id
    assert by_client.status == OrderStatus.PARTIALLY_FILLED  # the plan stops at 7 of 10
    assert Decimal(str(by_client.filled_qty)) == Decimal(7)
    average = (3 * Decimal("31.20") + 4 * Decimal("31.25")) / 7
    assert Decimal(str(by_client.filled_avg_price)) == average.quantize(Decimal("1e-9"))

    open_epd = client.get_orders(GetOrdersRequest(symbols=["EPD"]))
    assert [o.id for o in open_epd] == [order.id]
    position = client.get_open_position("EPD")
    assert (Decimal(position.qty), Decimal(position.qty_available or "0")) == (Decimal(7), Decimal(7))


def test_order_lists_filter_by_status_side_time_and_page_with_after(
    sim: SimServer, client: TradingClient, fresh_symbol: Callable[..., str]
) -> None:
    symbol = fresh_symbol("10.00")
    submitted: list[Order] = []
    for _ in range(4):
        submitted.append(client.submit_order(market(symbol, "1")))
        sim.advance(1)
    first = submitted[0]
    filled = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.CLOSED, symbols=[symbol]))
    assert {o.id for o in filled} == {o.id for o in submitted}
    assert client.get_orders(GetOrdersRequest(symbols=[symbol])) == []  # default status=open
    assert (
        client.get_orders(
            GetOrdersRequest(status=QueryOrderStatus.ALL, symbols=[symbol], side=OrderSide.SELL)
        )
        == []
    )

    desc = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, symbols=[symbol]))
    assert [o.id for o in desc] == [o.id for o in reversed(submitted)]  # default direction=desc

    page1 = client.get_orders(GetOrdersRequest(status="all", symbols=[symbol], direction="asc", limit=2))
    page2 = client.get_orders(
        GetOrdersRequest(
            status="all", symbols=[symbol], direction="asc", limit=2, after=page1[-1].submitted_at
        )
    )
    assert [o.id for o in page1 + page2] == [o.id for o in submitted]
    until = client.get_orders(
        GetOrdersRequest(status="all", symbols=[symbol], until=submitted[1].submitted_at)
    )
    assert [o.id for o in until] == [first.id]  # until is exclusive
    nested = client.get_orders(GetOrdersRequest(status="all", symbols=[symbol], nested=True))
    assert len(nested) == 4


def test_take_profit_right_after_parent_is_refused_as_a_short_sell(
    sim: SimServer, client: TradingClient
) -> None:
    """The seed incident's first failure: the child is sent before the broker filled the parent."""
    parent = client.submit_order(market("OKE", "9", coid="plan-oke"))

    with pytest.raises(APIError) as excinfo:
        client.submit_order(limit_sell("OKE", "9", "76.00"))

    assert excinfo.value.status_code == 403
    assert refusal(excinfo) == {
        "code": 40310000,
        "message": "cannot open a short sell while a long buy order is open",
        "symbol": "OKE",
        "existing_qty": "0",
        "held_for_orders": "0",
        "available": "0",
        "related_orders": [str(parent.id)],
    }


def test_second_sell_while_the_first_holds_the_shares_reproduces_the_seed_body(
    sim: SimServer, client: TradingClient
) -> None:
    """The seed's bodies: existing_qty = held_for_orders, related_orders = the sell already holding them."""
    client.submit_order(market("STWD", "37", coid="plan-stwd"))
    sim.advance(175)
    take_profit = client.submit_order(limit_sell("STWD", "37", "21.20"))

    with pytest.raises(APIError) as excinfo:
        client.submit_order(
            StopOrderRequest(symbol="STWD", qty=37, side="sell", time_in_force="gtc", stop_price=19.1)
        )

    assert excinfo.value.status_code == 403
    assert refusal(excinfo) == {
        "code": 40310000,
        "message": "insufficient qty available for order (requested: 37, available: 0)",
        "symbol": "STWD",
        "existing_qty": "37",
        "held_for_orders": "37",
        "available": "0",
        "related_orders": [str(take_profit.id)],
    }
    position = client.get_open_position("STWD")
    assert (position.qty, position.qty_available) == ("37", "0")


def test_sell_while_flat_without_open_buy_is_insufficient_qty(
    sim: SimServer, client: TradingClient, fresh_symbol: Callable[..., str]
) -> None:
    symbol = fresh_symbol()
    with pytest.raises(APIError) as excinfo:
        client.submit_order(limit_sell(symbol, "5", "60.00"))
    assert excinfo.value.status_code == 403
    assert refusal(excinfo)["message"] == "insufficient qty available for order (requested: 5, available: 0)"


def test_duplicate_client_order_id_is_422_even_after_cancel(
    sim: SimServer, client: TradingClient, fresh_symbol: Callable[..., str]
) -> None:
    symbol = fresh_symbol()
    order = client.submit_order(
        LimitOrderRequest(
            symbol=symbol, qty=1, side="buy", time_in_force="gtc", limit_price=40, client_order_id="dup-1"
        )
    )
    with pytest.raises(APIError) as while_open:
        client.submit_order(market(symbol, "1", coid="dup-1"))
    client.cancel_order_by_id(order.id)
    sim.advance(1)
    assert client.get_order_by_id(order.id).status == OrderStatus.CANCELED
    with pytest.raises(APIError) as after_cancel:
        client.submit_order(market(symbol, "1", coid="dup-1"))

    for excinfo in (while_open, after_cancel):
        assert excinfo.value.status_code == 422
        assert refusal(excinfo) == {"code": 40010001, "message": "client_order_id must be unique"}


def test_cancel_of_a_filled_order_is_422_and_unknown_ids_are_404(
    sim: SimServer, client: TradingClient, fresh_symbol: Callable[..., str]
) -> None:
    symbol = fresh_symbol()
    order = client.submit_order(market(symbol, "2"))
    sim.advance(1)
    assert client.get_order_by_id(order.id).status == OrderStatus.FILLED

    with pytest.raises(APIError) as filled:
        client.cancel_order_by_id(order.id)
    assert (filled.value.status_code, filled.value.code) == (422, 42210000)

    unknown = "1b0a3b4e-0000-4000-8000-000000000000"
    with pytest.raises(APIError) as no_order:
        client.get_order_by_id(unknown)
    with pytest.raises(APIError) as no_cancel:
        client.cancel_order_by_id(unknown)
    with pytest.raises(APIError) as no_client_id:
        client.get_order_by_client_id("never-submitted")
    for excinfo in (no_order, no_cancel, no_client_id):
        assert (excinfo.value.status_code, refusal(excinfo)) == (
            404,
            {"code": 40410000, "message": "order not found"},
        )
    with pytest.raises(APIError) as no_position:
        client.get_open_position(fresh_symbol())
    assert refusal(no_position) == {"code": 40410000, "message": "position does not exist"}


def test_bad_keys_are_401_without_a_code(sim: SimServer, client_for: Callable[..., TradingClient]) -> None:
    stranger = client_for(sim, key="wrong", secret="keys")
    with pytest.raises(APIError) as excinfo:
        stranger.get_account()
    assert excinfo.value.status_code == 401
    assert refusal(excinfo) == {"message": "unauthorized."}


def test_rate_limit_is_429_with_alpaca_headers(
    sim: SimServer, client_for: Callable[..., TradingClient]
) -> None:
    limited = client_for(sim)
    limited._retry = 0
    sim.set_rate_limit(3)  # also restarts the key's count for this minute
    try:
        for _ in range(3):
            limited.get_clock()
        with pytest.raises(APIError) as excinfo:
            limited.get_clock()
    finally:
        sim.set_rate_limit(10_000)
    response = excinfo.value.response
    assert response is not None
    assert excinfo.value.status_code == 429
    assert response.headers["X-Ratelimit-Limit"] == "3"
    assert response.headers["X-Ratelimit-Remaining"] == "0"
    assert int(response.headers["X-Ratelimit-Reset"]) > int(sim.now().timestamp())
    assert sim.snapshot()["counters"]["rate_limited"] >= 1


def test_invalid_requests_get_alpaca_codes(
    sim: SimServer, client: TradingClient, fresh_symbol: Callable[..., str]
) -> None:
    symbol = fresh_symbol("5.00")
    bad_requests = {
        "non-positive qty": (market(symbol, "0"), 40010001),
        "sub-penny limit": (
            LimitOrderRequest(symbol=symbol, qty=1, side="buy", time_in_force="day", limit_price=4.999),
            42210000,
        ),
        "client_order_id over 128 chars": (market(symbol, "1", coid="x" * 129), 40010001),
    }
    for name, (request, code) in bad_requests.items():
        with pytest.raises(APIError) as excinfo:
            client.submit_order(request)
        assert (excinfo.value.status_code, excinfo.value.code) == (422, code), name
    sub_penny = "invalid limit_price 4.999. sub-penny increment does not fulfill minimum pricing criteria"
    assert sim.snapshot()["counters"]["rejections"]["by_message"][f"42210000 {sub_penny}"] >= 1


def test_wash_trade_is_refused_but_complex_orders_are_exempt(
    sim: SimServer, client: TradingClient, fresh_symbol: Callable[..., str]
) -> None:
    symbol = fresh_symbol("50.00")
    client.submit_order(market(symbol, "10"))
    sim.advance(1)
    client.submit_order(
        LimitOrderRequest(symbol=symbol, qty=5, side="buy", time_in_force="gtc", limit_price=45)
    )  # a resting limit buy
    with pytest.raises(APIError) as excinfo:
        client.submit_order(
            StopOrderRequest(symbol=symbol, qty=5, side="sell", time_in_force="gtc", stop_price=44)
        )
    assert excinfo.value.status_code == 403
    assert refusal(excinfo) == {
        "code": 40310000,
        "message": "potential wash trade detected. use complex orders",
    }

    oco = client.submit_order(
        LimitOrderRequest(
            symbol=symbol,
            qty=5,
            side="sell",
            time_in_force="gtc",
            order_class="oco",
            take_profit={"limit_price": 55},
            stop_loss={"stop_price": 44},
        )
    )
    assert oco.order_class == "oco"


def test_replace_creates_a_new_order_and_marks_the_old_replaced(
    sim: SimServer, client: TradingClient, fresh_symbol: Callable[..., str]
) -> None:
    symbol = fresh_symbol("30.00")
    old = client.submit_order(
        LimitOrderRequest(symbol=symbol, qty=4, side="buy", time_in_force="gtc", limit_price=25)
    )
    sim.advance(1)
    new = client.replace_order_by_id(old.id, ReplaceOrderRequest(qty=6, limit_price=26))

    assert new.id != old.id
    assert (str(new.replaces), new.qty, new.limit_price) == (str(old.id), "6", "26")
    wait_until(lambda: client.get_order_by_id(old.id).status == OrderStatus.REPLACED)  # asynchronous
    replaced = client.get_order_by_id(old.id)
    assert (replaced.status, str(replaced.replaced_by)) == (OrderStatus.REPLACED, str(new.id))


def test_cancel_all_answers_207_per_order(
    sim: SimServer, client: TradingClient, fresh_symbol: Callable[..., str]
) -> None:
    symbol = fresh_symbol("30.00")
    orders = [
        client.submit_order(
            LimitOrderRequest(symbol=symbol, qty=1, side="buy", time_in_force="gtc", limit_price=20)
        )
        for _ in range(2)
    ]
    responses = client.cancel_orders()
    assert {o.id for o in orders} <= {r.id for r in responses}
    assert {r.status for r in responses} == {200}
    sim.advance(1)
    assert {client.get_order_by_id(o.id).status for o in orders} == {OrderStatus.CANCELED}


def test_account_and_positions_round_trip_through_the_sdk_models(
    sim: SimServer, client: TradingClient, fresh_symbol: Callable[..., str]
) -> None:
    symbol = fresh_symbol("12.34")
    cash_before = Decimal(client.get_account().cash or "0")
    client.submit_order(market(symbol, "10"))
    sim.advance(1)

    account = client.get_account()
    assert account.status == "ACTIVE"
    assert Decimal(account.cash or "0") == cash_before - Decimal("123.4")
    position = client.get_open_position(symbol)
    assert (position.qty, position.avg_entry_price, position.cost_basis, position.side) == (
        "10",
        "12.34",
        "123.4",
        "long",
    )
    assert symbol in {p.symbol for p in client.get_all_positions()}
    nested = client.get_order_by_id(
        client.get_orders(GetOrdersRequest(status="all", symbols=[symbol]))[0].id,
        GetOrderByIdRequest(nested=True),
    )
    assert nested.symbol == symbol
    assert sim.now() - nested.submitted_at < timedelta(seconds=2)
