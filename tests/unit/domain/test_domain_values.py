"""The small rules of the domain values: error classifications and bodies, fill events, child orders, OCO
requests."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ordersync.domain.errors import (
    BrokerError,
    BrokerUnavailable,
    Classification,
    DuplicateClientOrderId,
    InsufficientQty,
    InvalidOrder,
    OrderRefused,
    RateLimited,
)
from ordersync.domain.order import OrderRole, OrderStatus, OrderType, new_order
from ordersync.testing import T0, make_order, observe


@pytest.mark.parametrize(
    ("error", "classification"),
    [
        (InsufficientQty("403"), Classification.NEEDS_RECONCILE),
        (DuplicateClientOrderId("422"), Classification.NEEDS_RECONCILE),
        (RateLimited("429"), Classification.RATE_LIMITED),
        (BrokerUnavailable("503"), Classification.RETRYABLE),
        (OrderRefused("422"), Classification.FATAL),
        (BrokerError("?"), Classification.FATAL),
    ],
)
def test_each_broker_error_says_how_the_engine_must_react(
    error: BrokerError, classification: Classification
) -> None:
    assert error.classification is classification


def test_an_insufficient_qty_refusal_names_the_orders_holding_the_shares_as_strings() -> None:
    body: dict[str, object] = {"code": 40310000, "related_orders": ["b-1", 2]}
    error = InsufficientQty("403 40310000", status_code=403, code=40310000, body=body)
    assert error.related_orders == ["b-1", "2"]
    assert (error.status_code, error.code) == (403, 40310000)


@pytest.mark.parametrize("body", [None, {}, {"related_orders": "b-1"}])
def test_an_insufficient_qty_refusal_without_a_list_of_holders_names_none(
    body: dict[str, object] | None,
) -> None:
    error = InsufficientQty("403 40310000", body=body)
    assert error.related_orders == []
    assert error.body == (body or {})


def test_a_rate_limit_keeps_the_wait_the_broker_asked_for_and_its_body() -> None:
    error = RateLimited("429 too many requests", retry_after_s=12.5, status_code=429, body={"message": "x"})
    assert error.retry_after_s == 12.5
    assert (error.status_code, error.body) == (429, {"message": "x"})
    assert RateLimited("429").retry_after_s is None


@pytest.mark.parametrize(
    ("event", "is_fill"), [("fill", True), ("partial_fill", True), ("new", False), (None, False)]
)
def test_only_fill_events_report_an_execution(event: str | None, is_fill: bool) -> None:
    order = make_order("p1", status=OrderStatus.NEW)
    obs = observe(order, OrderStatus.PARTIALLY_FILLED, 4, event=event)
    assert obs.is_fill is is_fill


def test_an_order_with_a_parent_is_a_child() -> None:
    assert make_order("p1~tp1", side="sell", role=OrderRole.TAKE_PROFIT, parent_id="p1").is_child
    assert not make_order("p1").is_child


@pytest.mark.parametrize(
    ("type_", "limit", "stop"),
    [
        (OrderType.STOP, None, Decimal(95)),  # an OCO's primary is the take-profit limit
        (OrderType.LIMIT, None, Decimal(95)),  # no take-profit price
        (OrderType.LIMIT, Decimal(110), None),  # no stop-loss price
    ],
)
def test_an_oco_request_needs_a_limit_type_and_both_prices(
    type_: OrderType, limit: Decimal | None, stop: Decimal | None
) -> None:
    with pytest.raises(InvalidOrder, match="OCO child"):
        new_order(
            client_order_id="p1~oco1",
            symbol="AAPL",
            side="sell",
            type=type_,
            qty=5,
            created_at=T0,
            limit_price=limit,
            stop_price=stop,
            role=OrderRole.OCO,
        )


def test_an_oco_request_with_both_prices_keeps_them() -> None:
    oco = new_order(
        client_order_id="p1~oco1",
        symbol="AAPL",
        side="sell",
        type="limit",
        qty=5,
        created_at=T0,
        limit_price="110",
        stop_price="90",
        role=OrderRole.OCO,
        stop_limit_price="89.5",
    )
    assert (oco.limit_price, oco.stop_price, oco.stop_limit_price) == (
        Decimal(110),
        Decimal(90),
        Decimal("89.5"),
    )
