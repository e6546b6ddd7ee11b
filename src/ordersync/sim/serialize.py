"""JSON shapes of orders, positions, the account and trade updates, as Alpaca sends them.

Every shape here must pass alpaca-py 0.44.0's models (docs/alpaca.md §11.3): UUID ids, `Z` timestamps,
non-null `updated_at`/`submitted_at`, numbers as strings, `order_class` "" for simple orders (as the live API
often sends), `extended_hours` a bool, an exchange from alpaca-py's `AssetExchange` list, account status
upper-case. The integration tests round-trip each one through the SDK models."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from .model import Position, SimOrder, SymbolInfo
from .wire import JsonDict, fmt_decimal, fmt_opt_decimal, fmt_time

__all__ = ["account_json", "order_json", "position_json", "trade_update"]

ACCOUNT_ID = "6b2f2c1e-3f0a-4a59-9b8e-5a5d0c7e2f10"
ACCOUNT_NUMBER = "PA0SIM000001"
AVG_PRICE_STEP = Decimal("0.000000001")


def order_json(order: SimOrder, legs: Callable[[SimOrder], list[SimOrder]] | None = None) -> JsonDict:
    """Render an order; with `legs`, include its group legs under `legs` (Alpaca's nested form)."""
    return {
        "id": order.id,
        "client_order_id": order.client_order_id,
        "created_at": fmt_time(order.created_at),
        "updated_at": fmt_time(order.updated_at or order.created_at),
        "submitted_at": fmt_time(order.created_at),
        "filled_at": fmt_time(order.filled_at),
        "expired_at": fmt_time(order.expired_at),
        "expires_at": fmt_time(order.expires_at),
        "canceled_at": fmt_time(order.canceled_at),
        "failed_at": fmt_time(order.failed_at),
        "replaced_at": fmt_time(order.replaced_at),
        "replaced_by": order.replaced_by,
        "replaces": order.replaces,
        "asset_id": order.asset_id,
        "symbol": order.symbol,
        "asset_class": "us_equity",
        "notional": fmt_opt_decimal(order.notional),
        # a notional order has no quantity until it fills
        "qty": None if order.notional is not None and order.filled_qty == 0 else fmt_decimal(order.qty),
        "filled_qty": fmt_decimal(order.filled_qty),
        "filled_avg_price": None
        if order.filled_avg_price is None
        else fmt_decimal(_avg(order.filled_avg_price)),
        "order_class": "" if order.order_class == "simple" else order.order_class,
        "order_type": order.type,
        "type": order.type,
        "side": order.side,
        "position_intent": order.position_intent,
        "time_in_force": order.time_in_force,
        "limit_price": fmt_opt_decimal(order.limit_price),
        "stop_price": fmt_opt_decimal(order.stop_price),
        "status": order.status,
        "extended_hours": order.extended_hours,
        "legs": None if legs is None else [order_json(leg) for leg in legs(order)] or None,
        "trail_percent": fmt_opt_decimal(order.trail_percent),
        "trail_price": fmt_opt_decimal(order.trail_price),
        "hwm": fmt_opt_decimal(order.hwm),
        "commission": "0",
        "source": None,
        "subtag": None,
    }


def _avg(value: Decimal) -> Decimal:
    # Exact internally; rounded to 9 places on the wire (Alpaca sends e.g. "105.8988475").
    return value.quantize(AVG_PRICE_STEP)


def position_json(position: Position, info: SymbolInfo, held: Decimal) -> JsonDict:
    """Render a position with Alpaca's string fields; `held` = shares reserved by open sell orders."""
    qty, price = position.qty, info.price
    market_value = qty * price
    cost_basis = qty * position.avg_entry_price
    pl = market_value - cost_basis
    return {
        "asset_id": info.asset_id,
        "symbol": position.symbol,
        "exchange": info.exchange,
        "asset_class": "us_equity",
        "asset_marginable": True,
        "avg_entry_price": fmt_decimal(_avg(position.avg_entry_price)),
        "qty": fmt_decimal(qty),
        "qty_available": fmt_decimal(qty - held if qty > 0 else qty),
        "side": "long" if qty > 0 else "short",
        "market_value": fmt_decimal(market_value),
        "cost_basis": fmt_decimal(cost_basis),
        "unrealized_pl": fmt_decimal(pl),
        "unrealized_plpc": fmt_decimal(pl / cost_basis if cost_basis else Decimal(0)),
        "unrealized_intraday_pl": fmt_decimal(pl),
        "unrealized_intraday_plpc": fmt_decimal(pl / cost_basis if cost_basis else Decimal(0)),
        "current_price": fmt_decimal(price),
        "lastday_price": fmt_decimal(price),
        "change_today": "0",
    }


def account_json(
    cash: Decimal,
    buying_power: Decimal,
    long_value: Decimal,
    short_value: Decimal,
    created_at: datetime,
    multiplier: int = 1,
    account_id: str = ACCOUNT_ID,
    account_number: str = ACCOUNT_NUMBER,
) -> JsonDict:
    """Render the account: status upper-case, every amount a string; `multiplier` 1 = cash account."""
    equity = cash + long_value + short_value
    cash_power = min(buying_power, max(cash, Decimal(0)))
    return {
        "id": account_id,
        "account_number": account_number,
        "status": "ACTIVE",
        "crypto_status": "ACTIVE",
        "currency": "USD",
        "cash": fmt_decimal(cash),
        "buying_power": fmt_decimal(buying_power),
        "regt_buying_power": fmt_decimal(buying_power if multiplier <= 2 else buying_power / 2),
        "daytrading_buying_power": fmt_decimal(buying_power if multiplier == 4 else Decimal(0)),
        "non_marginable_buying_power": fmt_decimal(cash_power if multiplier > 1 else buying_power),
        "options_buying_power": fmt_decimal(cash_power if multiplier > 1 else buying_power),
        "portfolio_value": fmt_decimal(equity),
        "equity": fmt_decimal(equity),
        "last_equity": fmt_decimal(equity),
        "long_market_value": fmt_decimal(long_value),
        "short_market_value": fmt_decimal(short_value),
        "initial_margin": "0",
        "maintenance_margin": "0",
        "last_maintenance_margin": "0",
        "sma": "0",
        "multiplier": str(multiplier),
        "accrued_fees": "0",
        "pending_transfer_in": "0",
        "pending_transfer_out": "0",
        "shorting_enabled": False,
        "trading_blocked": False,
        "transfers_blocked": False,
        "account_blocked": False,
        "trade_suspended_by_user": False,
        "created_at": fmt_time(created_at),
        "options_approved_level": 0,
        "options_trading_level": 0,
    }


def trade_update(
    event: str,
    order: JsonDict,
    timestamp: datetime,
    execution_id: str | None = None,
    fill: tuple[Decimal, Decimal, Decimal] | None = None,
) -> JsonDict:
    """Build one trade_updates message; `fill` = (qty, price, position_qty) for fill/partial_fill events."""
    data: JsonDict = {"event": event, "timestamp": fmt_time(timestamp), "order": order}
    if execution_id is not None:
        data["execution_id"] = execution_id
    if fill is not None:
        qty, price, position_qty = fill
        data.update(qty=fmt_decimal(qty), price=fmt_decimal(price), position_qty=fmt_decimal(position_qty))
    return {"stream": "trade_updates", "data": data}
