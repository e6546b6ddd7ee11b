"""Fractional and notional orders as Alpaca takes them: notional market DAY orders sized at the fill,
fractional quantities only on simple DAY orders, at most 9 decimals, and per-asset `fractionable`."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.enums import OrderStatus
from alpaca.trading.requests import (
    LimitOrderRequest,
    MarketOrderRequest,
    OrderRequest,
    StopLossRequest,
    TakeProfitRequest,
)
from simtools import Client, Sim, wait_until


def test_a_notional_market_day_order_is_sized_at_its_fill(make_sim: Sim, client_for: Client) -> None:
    sim = make_sim()
    client = client_for(sim)

    order = client.submit_order(
        MarketOrderRequest(symbol="OKE", notional=1000, side="buy", time_in_force="day")
    )
    wait_until(lambda: client.get_order_by_id(order.id).status == OrderStatus.FILLED)
    filled = client.get_order_by_id(order.id)

    expected = (Decimal(1000) / Decimal("72.10")).quantize(Decimal("0.000000001"), rounding=ROUND_DOWN)
    assert (order.notional, order.qty) == ("1000", None)  # no quantity until it fills
    assert Decimal(str(filled.filled_qty)) == expected
    assert Decimal(client.get_open_position("OKE").qty or "0") == expected


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (
            MarketOrderRequest(symbol="OKE", qty=1.5, side="buy", time_in_force="gtc"),
            "fractional orders must be DAY orders",
        ),
        (
            MarketOrderRequest(symbol="OKE", notional=500, side="buy", time_in_force="gtc"),
            "fractional orders must be DAY orders",
        ),
        (
            LimitOrderRequest(
                symbol="OKE",
                qty=1.5,
                side="buy",
                time_in_force="day",
                limit_price=72,
                order_class="bracket",
                take_profit=TakeProfitRequest(limit_price=80),
                stop_loss=StopLossRequest(stop_price=65),
            ),
            "fractional orders must be simple orders",
        ),
        (
            LimitOrderRequest(symbol="OKE", notional=500, side="buy", time_in_force="day", limit_price=72),
            "notional orders must be market orders",
        ),
    ],
)
def test_fractional_and_notional_orders_are_day_simple_orders(
    make_sim: Sim, client_for: Client, request_: OrderRequest, message: str
) -> None:
    client = client_for(make_sim())

    with pytest.raises(APIError) as refused:
        client.submit_order(request_)

    assert (refused.value.status_code, refused.value.message) == (422, message)


def test_a_quantity_has_at_most_nine_decimals(make_sim: Sim, client_for: Client) -> None:
    client = client_for(make_sim())

    nine = client.submit_order(
        MarketOrderRequest(symbol="OKE", qty=0.123456789, side="buy", time_in_force="day")
    )
    with pytest.raises(APIError) as refused:
        client.submit_order(
            MarketOrderRequest(symbol="OKE", qty=0.1234567891, side="buy", time_in_force="day")
        )

    assert nine.qty == "0.123456789"
    assert refused.value.status_code == 422
    assert "9 decimal places" in refused.value.message


def test_a_non_fractionable_asset_takes_whole_shares_only(make_sim: Sim, client_for: Client) -> None:
    sim = make_sim(symbols={"OKE": {"price": "72.10", "fractionable": False}}, parents=[])
    client = client_for(sim)

    whole = client.submit_order(MarketOrderRequest(symbol="OKE", qty=2, side="buy", time_in_force="gtc"))
    with pytest.raises(APIError) as refused:
        client.submit_order(MarketOrderRequest(symbol="OKE", qty=0.5, side="buy", time_in_force="day"))

    assert whole.qty == "2"
    assert (refused.value.status_code, refused.value.message) == (422, "asset OKE is not fractionable")


def test_a_fractional_position_sells_in_fractions(make_sim: Sim, client_for: Client) -> None:
    sim = make_sim(account={"positions": [{"symbol": "OKE", "qty": "0.75"}]})
    client = client_for(sim)

    sale = client.submit_order(MarketOrderRequest(symbol="OKE", qty=0.5, side="sell", time_in_force="day"))
    wait_until(lambda: client.get_order_by_id(sale.id).status == OrderStatus.FILLED)
    with pytest.raises(APIError) as refused:
        client.submit_order(MarketOrderRequest(symbol="OKE", qty=0.5, side="sell", time_in_force="day"))

    assert client.get_open_position("OKE").qty == "0.25"
    assert refused.value.status_code == 403  # only 0.25 left
