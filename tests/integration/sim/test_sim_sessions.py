"""Market sessions with `market: {calendar: true}`: the clock follows the NYSE calendar, DAY orders expire at
the close, orders placed while closed rest until the open, opg/cls trade only in the auctions, and
extended-hours DAY limit orders trade before the open and after the close."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderStatus
from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest
from simtools import KEY, SECRET, Recorder, scenario, trading_client, wait_until

from ordersync.sim import SimServer, SteppedClock

# Friday 2025-10-10, 15:59 ET (19:59 UTC): one minute before the close; the next open is Monday 09:30 ET.
FRIDAY_1559 = datetime(2025, 10, 10, 19, 59, tzinfo=UTC)
MONDAY_OPEN = datetime(2025, 10, 13, 13, 30, tzinfo=UTC)


@pytest.fixture
def market() -> Iterator[SimServer]:
    server = SimServer(
        scenario(start=FRIDAY_1559.isoformat(), market={"calendar": True}, parents=[]),
        SteppedClock(FRIDAY_1559),
        api_key=KEY,
        secret_key=SECRET,
    ).start()
    yield server
    server.stop()


def _status(client: TradingClient, order_id: object) -> OrderStatus:
    return client.get_order_by_id(str(order_id)).status


def _limit(
    side: str = "buy", price: float = 70, tif: str = "day", qty: float = 1, **extra: object
) -> LimitOrderRequest:
    return LimitOrderRequest(symbol="OKE", qty=qty, side=side, time_in_force=tif, limit_price=price, **extra)


def test_the_clock_opens_and_closes_on_the_calendar(market: SimServer) -> None:
    client = trading_client(market)

    before = client.get_clock()
    market.advance(120)
    after = client.get_clock()

    assert before.is_open
    assert before.next_close == datetime(2025, 10, 10, 20, 0, tzinfo=UTC)
    assert not after.is_open
    assert after.next_open == MONDAY_OPEN


def test_day_orders_expire_at_the_close_and_gtc_orders_stay(market: SimServer, recorder: Recorder) -> None:
    client = trading_client(market)
    events = recorder(market)
    day = client.submit_order(_limit())
    gtc = client.submit_order(_limit(tif="gtc"))

    market.advance(120)

    [expired] = events.wait_for(day.id, "expired")
    assert expired.order.status == OrderStatus.EXPIRED
    assert _status(client, gtc.id) == OrderStatus.NEW


def test_an_order_placed_while_closed_rests_until_the_open(market: SimServer) -> None:
    client = trading_client(market)
    market.advance(600)  # 16:09 ET Friday

    order = client.submit_order(MarketOrderRequest(symbol="OKE", qty=2, side="buy", time_in_force="gtc"))
    market.advance_to(MONDAY_OPEN.replace(hour=13, minute=0))  # Monday 09:00 ET: still closed
    waiting = _status(client, order.id)
    market.advance_to(MONDAY_OPEN)

    assert waiting == OrderStatus.NEW
    wait_until(lambda: _status(client, order.id) == OrderStatus.FILLED)
    assert client.get_order_by_id(order.id).filled_at == MONDAY_OPEN


def test_opg_orders_trade_in_the_opening_auction_only(market: SimServer) -> None:
    client = trading_client(market)
    market.advance(600)
    at_open = client.submit_order(MarketOrderRequest(symbol="OKE", qty=1, side="buy", time_in_force="opg"))
    unfilled = client.submit_order(_limit(price=60, tif="opg"))

    market.advance_to(MONDAY_OPEN)

    wait_until(lambda: _status(client, at_open.id) == OrderStatus.FILLED)
    wait_until(lambda: _status(client, unfilled.id) == OrderStatus.CANCELED)


def test_cls_orders_trade_in_the_closing_auction_only(market: SimServer) -> None:
    client = trading_client(market)
    market.advance_to(MONDAY_OPEN)
    order = client.submit_order(MarketOrderRequest(symbol="OKE", qty=1, side="buy", time_in_force="cls"))

    market.advance(3600)
    during_the_day = _status(client, order.id)
    market.advance_to(datetime(2025, 10, 13, 20, 0, tzinfo=UTC))

    assert during_the_day == OrderStatus.NEW
    wait_until(lambda: _status(client, order.id) == OrderStatus.FILLED)
    assert client.get_order_by_id(order.id).filled_at == datetime(2025, 10, 13, 20, 0, tzinfo=UTC)


def test_extended_hours_day_limit_orders_trade_after_the_close(market: SimServer) -> None:
    client = trading_client(market)
    market.advance(600)  # after hours

    regular = client.submit_order(_limit(price=73))
    extended = client.submit_order(_limit(price=73, extended_hours=True))

    wait_until(lambda: _status(client, extended.id) == OrderStatus.FILLED)
    assert _status(client, regular.id) == OrderStatus.NEW


def test_an_extended_hours_order_expires_at_the_end_of_after_hours(market: SimServer) -> None:
    client = trading_client(market)
    market.advance(600)
    order = client.submit_order(_limit(price=60, extended_hours=True))

    market.advance_to(datetime(2025, 10, 10, 23, 59, tzinfo=UTC))  # 19:59 ET
    still_open = _status(client, order.id)
    market.advance(60)

    assert still_open == OrderStatus.NEW
    wait_until(lambda: _status(client, order.id) == OrderStatus.EXPIRED)


@pytest.mark.parametrize(
    "request_",
    [
        _limit(tif="gtc", extended_hours=True),
        MarketOrderRequest(symbol="OKE", qty=1, side="buy", time_in_force="day", extended_hours=True),
    ],
)
def test_extended_hours_is_only_for_day_limit_orders(market: SimServer, request_: object) -> None:
    client = trading_client(market)

    with pytest.raises(APIError) as refused:
        client.submit_order(request_)  # type: ignore[arg-type]

    assert refused.value.status_code == 422


def test_done_for_day_is_sent_for_partly_filled_gtc_orders_when_asked(recorder: Recorder) -> None:
    server = SimServer(
        scenario(start=FRIDAY_1559.isoformat(), market={"calendar": True, "done_for_day": True}, parents=[]),
        SteppedClock(FRIDAY_1559),
        api_key=KEY,
        secret_key=SECRET,
    ).start()
    try:
        client = trading_client(server)
        events = recorder(server)
        order = client.submit_order(_limit(tif="gtc", qty=10))
        events.wait_for(order.id, "new")
        server.fill(order_id=str(order.id), qty="4")

        server.advance(120)
        [done] = events.wait_for(order.id, "done_for_day")
        overnight = _status(client, order.id)
        server.advance_to(MONDAY_OPEN)

        assert (done.order.status, overnight) == (OrderStatus.DONE_FOR_DAY, OrderStatus.DONE_FOR_DAY)
        wait_until(lambda: _status(client, order.id) == OrderStatus.PARTIALLY_FILLED)
    finally:
        server.stop()
