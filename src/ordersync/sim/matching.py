"""When a working order executes against the symbol's price (the default matching of orders without a plan).

Alpaca's paper venue fills an order when it is marketable against the quote, without checking size
(docs/alpaca.md §7); the simulator has one price per symbol and fills the whole remainder at it. Market
orders are always marketable; a limit buy when price <= limit (sell: >=); a stop triggers when the price
reaches the stop (sell: falls to it) and then behaves as a market order, or as a limit order for stop_limit;
a trailing stop follows the high-water mark (sell) or low-water mark (buy) and triggers like a stop at hwm ∓
trail."""

from __future__ import annotations

from decimal import Decimal

from .model import SimOrder

__all__ = ["is_marketable", "update_trailing_stop"]


def update_trailing_stop(order: SimOrder, price: Decimal) -> None:
    """Move a trailing stop's water mark and derived stop price with the latest price."""
    if order.type != "trailing_stop":
        return
    if order.hwm is None:
        order.hwm = price
    elif order.side == "sell":
        order.hwm = max(order.hwm, price)
    else:
        order.hwm = min(order.hwm, price)
    if order.trail_price is not None:
        offset = order.trail_price
    else:
        offset = order.hwm * (order.trail_percent or Decimal(0)) / Decimal(100)
    order.stop_price = order.hwm - offset if order.side == "sell" else order.hwm + offset


def is_marketable(order: SimOrder, price: Decimal) -> bool:
    """Return whether `order` executes at `price` now; triggers stops (sets `triggered`) as a side effect."""
    if order.type in ("stop", "stop_limit", "trailing_stop") and not order.triggered:
        update_trailing_stop(order, price)
        if order.stop_price is None or not _stop_reached(order.side, order.stop_price, price):
            return False
        order.triggered = True
    if order.type in ("limit", "stop_limit"):
        return _limit_ok(order.side, order.limit_price, price)
    return True


def _stop_reached(side: str, stop: Decimal, price: Decimal) -> bool:
    return price <= stop if side == "sell" else price >= stop


def _limit_ok(side: str, limit: Decimal | None, price: Decimal) -> bool:
    if limit is None:
        return True
    return price <= limit if side == "buy" else price >= limit
