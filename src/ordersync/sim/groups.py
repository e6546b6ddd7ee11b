"""Building orders from requests: a simple order, or a group of orders linked as Alpaca links them.

A bracket is an entry plus a take-profit limit leg and a stop-loss stop (or stop-limit) leg on the exit side;
an OTO is an entry plus one of them; an OCO is an exit-only pair whose take-profit is the parent (the order
the client gets back) and whose stop-loss is its leg (docs/alpaca.md §6.1). Legs are separate orders
with their own ids and generated client_order_ids, created `held`. A replacement (PATCH) takes the old
order's place in its group. Nothing here emits events or takes locks: `exchange.py` calls it under the books
lock."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

from .book import Book
from .matching import update_trailing_stop
from .model import SimOrder
from .order_request import OrderSpec, ReplaceSpec, StopLossSpec
from .wire import ApiError, new_id

__all__ = ["create_group", "new_order", "replacement_spec", "swap_into_group"]

GTC_LIFETIME = timedelta(days=90)  # about 90 days per users' reports (docs/alpaca.md §1.2)


def new_order(
    book: Book, now: datetime, spec: OrderSpec, qty: Decimal, coid: str, role: str = "entry"
) -> SimOrder:
    """Create (but do not register) one order for `spec`."""
    order = SimOrder(
        id=new_id(),
        client_order_id=coid,
        symbol=spec.symbol,
        asset_id=book.symbol(spec.symbol).asset_id,
        side=spec.side,
        type=spec.type,
        time_in_force=spec.time_in_force,
        qty=qty,
        created_at=now,
        updated_at=now,
        order_class=spec.order_class,
        role=role,
        limit_price=spec.limit_price,
        stop_price=spec.stop_price,
        trail_price=spec.trail_price,
        trail_percent=spec.trail_percent,
        extended_hours=spec.extended_hours,
        expires_at=now + GTC_LIFETIME if spec.time_in_force == "gtc" else None,
    )
    order.history.append((now, order.status))
    if order.type == "trailing_stop":
        update_trailing_stop(order, book.price(order.symbol))
    order.position_intent = _position_intent(spec.side, book.position_qty(spec.symbol))
    return order


def _position_intent(side: str, position: Decimal) -> str:
    closes = position > 0 if side == "sell" else position < 0
    return f"{side}_to_{'close' if closes else 'open'}"


def create_group(book: Book, now: datetime, spec: OrderSpec, qty: Decimal, coid: str) -> SimOrder:
    """Create and register the order(s) for `spec`; return the root (the order the client POSTed)."""
    if spec.order_class == "oco":
        take_profit = spec.take_profit or spec.limit_price
        root = new_order(book, now, replace(spec, limit_price=take_profit), qty, coid, role="take_profit")
        legs = [_leg(book, now, spec, root, spec.side, "stop_loss")]
    else:
        root = new_order(book, now, spec, qty, coid)
        exit_side = "sell" if spec.side == "buy" else "buy"
        roles = [] if spec.order_class == "simple" else ["take_profit", "stop_loss"]
        present = {"take_profit": spec.take_profit is not None, "stop_loss": spec.stop_loss is not None}
        legs = [_leg(book, now, spec, root, exit_side, role) for role in roles if present[role]]
    if legs:
        root.group_id = root.id
        root.leg_ids = [leg.id for leg in legs]
    for order in (root, *legs):
        book.add(order)
    return root


def _leg(book: Book, now: datetime, spec: OrderSpec, root: SimOrder, side: str, role: str) -> SimOrder:
    if role == "take_profit":
        leg_spec = replace(spec, side=side, type="limit", limit_price=spec.take_profit, stop_price=None)
    else:
        stop = spec.stop_loss or StopLossSpec(Decimal(0))
        kind = "stop" if stop.limit_price is None else "stop_limit"
        leg_spec = replace(
            spec, side=side, type=kind, stop_price=stop.stop_price, limit_price=stop.limit_price
        )
    leg = new_order(book, now, leg_spec, root.qty, new_id(), role=role)
    leg.group_id, leg.status, leg.history = root.id, "held", [(now, "held")]
    return leg


def swap_into_group(book: Book, old: SimOrder, new: SimOrder) -> None:
    """Put a replacement order in the old one's place in its group."""
    new.group_id, new.order_class, new.replaces = old.group_id, old.order_class, old.id
    if old.group_id is None:
        return
    root = book.root(old)
    if root is old:  # an OCO's take-profit root: its legs follow the new id
        new.group_id, new.leg_ids = new.id, old.leg_ids
        for leg_id in old.leg_ids:
            book.orders[leg_id].group_id = new.id
    else:
        root.leg_ids = [new.id if i == old.id else i for i in root.leg_ids]


def replacement_spec(old: SimOrder, spec: ReplaceSpec) -> OrderSpec:
    """Merge a PATCH body into the old order's parameters.

    Raises:
        ApiError: 422 for a field the order type does not take, 403 when nothing changes.
    """
    if spec.limit_price is not None and old.type not in ("limit", "stop_limit"):
        raise ApiError.unprocessable(f"limit_price is not allowed for {old.type} orders")
    if spec.stop_price is not None and old.type not in ("stop", "stop_limit"):
        raise ApiError.unprocessable(f"stop_price is not allowed for {old.type} orders")
    trail_price, trail_percent = _merged_trail(old, spec.trail)
    new = OrderSpec(
        symbol=old.symbol,
        side=old.side,
        type=old.type,
        time_in_force=spec.time_in_force or old.time_in_force,
        qty=spec.qty if spec.qty is not None else old.remaining,
        limit_price=spec.limit_price if spec.limit_price is not None else old.limit_price,
        # a trailing stop's stop price is derived from its water mark, never carried over
        stop_price=spec.stop_price or (None if old.type == "trailing_stop" else old.stop_price),
        trail_price=trail_price,
        trail_percent=trail_percent,
        extended_hours=old.extended_hours,
    )
    if spec.client_order_id is None and _unchanged(old, new):
        raise ApiError.forbidden("order parameters are not changed")
    return new


def _merged_trail(old: SimOrder, trail: Decimal | None) -> tuple[Decimal | None, Decimal | None]:
    if trail is None:
        return old.trail_price, old.trail_percent
    if old.type != "trailing_stop":
        raise ApiError.unprocessable("trail is only for trailing_stop orders")
    return (trail, None) if old.trail_price is not None else (None, trail)


def _unchanged(old: SimOrder, new: OrderSpec) -> bool:
    return (
        new.qty == old.remaining
        and new.time_in_force == old.time_in_force
        and new.limit_price == old.limit_price
        and (old.type == "trailing_stop" or new.stop_price == old.stop_price)
        and (new.trail_price, new.trail_percent) == (old.trail_price, old.trail_percent)
    )
