"""The account configuration is enforced (docs/simulator.md, "Account configuration"), and buying power values
market buys and short sales as Alpaca does, through alpaca-py."""

from __future__ import annotations

from decimal import Decimal

import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest
from simtools import Client, Sim


def _configure(client: TradingClient, **changes: object) -> None:
    config = client.get_account_configurations()
    for name, value in changes.items():
        setattr(config, name, value)
    client.set_account_configurations(config)


def _buy(symbol: str, qty: float, **extra: object) -> MarketOrderRequest:
    return MarketOrderRequest(symbol=symbol, qty=qty, side="buy", time_in_force="day", **extra)


def _refusal(client: TradingClient, order: object) -> tuple[int, int, str]:
    with pytest.raises(APIError) as refused:
        client.submit_order(order)
    return refused.value.status_code, refused.value.code, refused.value.message


def test_suspend_trade_refuses_new_orders_until_it_is_lifted(make_sim: Sim, client_for: Client) -> None:
    sim = make_sim(parents=[])
    client = client_for(sim)
    resting = client.submit_order(
        LimitOrderRequest(symbol="OKE", qty=1, side="buy", time_in_force="gtc", limit_price=60)
    )
    _configure(client, suspend_trade=True)

    assert _refusal(client, _buy("OKE", 1)) == (403, 40310000, "new orders are rejected by user request")
    assert client.get_account().trade_suspended_by_user is True
    client.cancel_order_by_id(resting.id)  # canceling is not a new order
    _configure(client, suspend_trade=False)
    assert client.submit_order(_buy("OKE", 1)).qty == "1"


def test_no_shorting_refuses_a_short_sale_that_the_account_would_otherwise_take(
    make_sim: Sim, client_for: Client
) -> None:
    sim = make_sim(parents=[], shorting_enabled=True)
    client = client_for(sim)
    short = MarketOrderRequest(symbol="OKE", qty=2, side="sell", time_in_force="day")
    assert client.get_account_configurations().no_shorting is False
    assert client.submit_order(short).side == "sell"

    _configure(client, no_shorting=True)

    status, code, message = _refusal(
        client, MarketOrderRequest(symbol="EPD", qty=2, side="sell", time_in_force="day")
    )
    assert (status, code) == (403, 40310000)
    assert message.startswith("insufficient qty available")
    assert client.get_account().shorting_enabled is False


def test_max_margin_multiplier_caps_the_buying_power(make_sim: Sim, client_for: Client) -> None:
    sim = make_sim(parents=[], account={"cash": "10000", "margin_multiplier": 4})
    client = client_for(sim)
    assert Decimal(str(client.get_account().buying_power)) == 40000

    _configure(client, max_margin_multiplier="2")

    account = client.get_account()
    assert (account.multiplier, Decimal(str(account.buying_power))) == ("2", 20000)
    limit_buy = LimitOrderRequest(symbol="OKE", qty=300, side="buy", time_in_force="day", limit_price=72)
    assert _refusal(client, limit_buy)[:2] == (403, 40310000)  # $21,600 fits 4x, not 2x


def test_fractional_trading_off_refuses_fractional_and_notional_orders(
    make_sim: Sim, client_for: Client
) -> None:
    sim = make_sim(parents=[])
    client = client_for(sim)
    _configure(client, fractional_trading=False)

    assert _refusal(client, _buy("OKE", 0.5))[:2] == (422, 42210000)
    assert _refusal(client, MarketOrderRequest(symbol="OKE", notional=100, side="buy", time_in_force="day"))[
        :2
    ] == (
        422,
        42210000,
    )
    assert client.submit_order(_buy("OKE", 1)).qty == "1"


@pytest.mark.parametrize(
    ("symbol", "fits", "too_many"),
    [
        ("OKE", 135, 136),  # $72.10: valued 2.5 % above; 135 x 73.9025 = 9,976.84, 136 x = 10,050.74
        ("STWD", 479, 480),  # $20.05: valued 4 % above; 479 x 20.852 = 9,988.11, 480 x = 10,008.96
    ],
)
def test_a_market_buy_is_valued_a_collar_above_the_price(
    make_sim: Sim, client_for: Client, symbol: str, fits: int, too_many: int
) -> None:
    sim = make_sim(parents=[], account={"cash": "10000"}, latency={"ack_s": 1.0})  # acked when time moves
    client = client_for(sim)

    status, code, message = _refusal(client, _buy(symbol, too_many))
    assert (status, code, message) == (403, 40310000, "insufficient buying power")
    client.submit_order(_buy(symbol, fits))  # not acknowledged before the clock moves: it holds its value
    price = Decimal("72.10") if symbol == "OKE" else Decimal("20.05")
    collar = Decimal("1.025") if price >= 50 else Decimal("1.04")
    assert Decimal(str(client.get_account().buying_power)) == 10000 - fits * price * collar


def test_a_limit_buy_is_valued_at_its_limit_and_a_short_sale_three_percent_above_the_price(
    make_sim: Sim, client_for: Client
) -> None:
    sim = make_sim(parents=[], account={"cash": "10000"}, shorting_enabled=True)
    client = client_for(sim)

    resting = LimitOrderRequest(symbol="OKE", qty=138, side="buy", time_in_force="day", limit_price=72)
    order = client.submit_order(resting)  # 9,936 at its limit: with a collar it would not fit
    assert Decimal(str(client.get_account().buying_power)) == 10000 - 138 * 72
    client.cancel_order_by_id(order.id)
    sim.advance(1)
    short = MarketOrderRequest(symbol="OKE", qty=135, side="sell", time_in_force="day")
    assert _refusal(client, short)[2] == "insufficient buying power"  # 135 x 74.263 = 10,025.51
    assert client.submit_order(MarketOrderRequest(symbol="OKE", qty=134, side="sell", time_in_force="day"))
