"""alpaca-py order requests for a scenario parent, shared by the baseline platforms."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from alpaca.trading.enums import OrderClass, OrderSide, TimeInForce
from alpaca.trading.requests import (
    LimitOrderRequest,
    MarketOrderRequest,
    OrderRequest,
    StopLossRequest,
    TakeProfitRequest,
)

from ordersync.sim.scenarios import Scenario


def entry_request(parent: Any, **extra: Any) -> OrderRequest:
    """Return the parent's entry order (market or limit), with ``extra`` fields (order class, legs)."""
    common = {
        "symbol": parent.symbol,
        "qty": float(parent.qty),
        "side": OrderSide(parent.side),
        "client_order_id": parent.id,
        "time_in_force": TimeInForce(parent.time_in_force),
        **extra,
    }
    if parent.type == "limit":
        return LimitOrderRequest(**common, limit_price=float(parent.limit_price))
    return MarketOrderRequest(**common)


def exit_side(parent: Any) -> OrderSide:
    """Return the side that closes the parent's position."""
    return OrderSide.SELL if parent.side == "buy" else OrderSide.BUY


def take_profit_price(parent: Any) -> Decimal | None:
    """The parent's fixed take-profit limit, if it has one."""
    return None if parent.take_profit is None else Decimal(parent.take_profit.limit_price)


def bracket_request(parent: Any) -> OrderRequest:
    """Return the parent as one Alpaca bracket (both exits) or OTO (one exit); the broker holds the legs."""
    extra: dict[str, Any] = {}
    if parent.take_profit is not None:
        extra["take_profit"] = TakeProfitRequest(limit_price=float(parent.take_profit.limit_price))
    if parent.stop_loss is not None:
        limit = parent.stop_loss.limit_price
        extra["stop_loss"] = StopLossRequest(
            stop_price=float(parent.stop_loss.stop_price), limit_price=None if limit is None else float(limit)
        )
    if not extra:
        return entry_request(parent)
    order_class = OrderClass.BRACKET if len(extra) == 2 else OrderClass.OTO
    return entry_request(parent, order_class=order_class, **extra)


def parents_of(scenario: Scenario) -> list[Any]:
    """Return the scenario's parents in submission order."""
    return sorted(scenario.parents, key=lambda p: (p.submit_at_s, p.id))
