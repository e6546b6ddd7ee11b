"""From what was read to what it means: shares held and unprotected per symbol, a verdict per parent."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime
from decimal import Decimal

from ordersync.domain.events import BrokerOrderView
from ordersync.domain.ids import Symbol
from ordersync.forensics import ParentIssue
from ordersync.forensics.report import Cause
from ordersync.incident_check.model import LOG_SAYS, OPEN_STATUSES, Holder, ParentCheck, SymbolAtBroker
from ordersync.ports import PositionView


def _remaining(order: BrokerOrderView) -> Decimal:
    return max(Decimal(0), (order.qty or Decimal(0)) - order.filled_qty)


def symbol_at_broker(
    symbol: str,
    positions: dict[Symbol, PositionView] | None,
    orders: Iterable[BrokerOrderView],
    logged: Collection[str],
) -> SymbolAtBroker:
    holders = tuple(
        sorted(
            (
                Holder(o, _remaining(o), o.broker_order_id in logged or o.client_order_id in logged)
                for o in orders
                if o.symbol == symbol and o.side == "sell" and str(o.status) in OPEN_STATUSES
            ),
            key=lambda h: (h.order.submitted_at or h.order.updated_at, h.order.broker_order_id),
        )
    )
    position = positions.get(Symbol(symbol)) if positions is not None else None
    qty = position.qty if position is not None else Decimal(0)
    held = sum((h.remaining for h in holders), Decimal(0))
    unprotected = max(Decimal(0), qty - held) if qty > 0 else Decimal(0)
    available = position.qty_available if position is not None else None
    return SymbolAtBroker(symbol, qty, available, holders, held, unprotected)


def parent_check(
    p: ParentIssue,
    orders: dict[str, BrokerOrderView],
    symbols: dict[str, SymbolAtBroker],
    logged: Collection[str],
) -> ParentCheck:
    target = p.parent_order_id or p.broker_order_id or ""
    order = orders.get(target)
    now = symbols.get(p.symbol or "")
    outcome, verdict = _verdict(p, target, order, orders, now)
    return ParentCheck(target, p.symbol, p.cause, order, outcome, verdict)


def _verdict(
    p: ParentIssue,
    target: str,
    order: BrokerOrderView | None,
    orders: dict[str, BrokerOrderView],
    now: SymbolAtBroker | None,
) -> tuple[str, str]:
    says = f"the log says {LOG_SAYS[p.cause]}"
    if order is None:
        return "unchecked", f"{says}; the broker does not know {target} (or it was not read): unchecked"
    holding = _holding(now)
    if order.side == "sell":  # the row is an order that competed for the shares
        outcome = "confirmed" if p.cause is Cause.RESERVED_BY_OPEN_ORDER else "corrected"
        shown = (
            f"the broker shows {target} is a {order.order_type or ''} sell of {order.qty} "
            f"({order.status}, submitted {hm(order.submitted_at)}): the order holding the shares, "
            f"not a parent"
        )
        return outcome, f"{says}; {shown}; {holding}"
    first = p.first_error_at
    fill = _fill(order)
    filled_before = (
        order.filled_qty > 0
        and str(order.status) == "filled"
        and first is not None
        and order.updated_at < first
    )
    if p.cause is Cause.SELL_BEFORE_FILL:
        outcome = "corrected" if filled_before else "confirmed"
        why = (
            " (before the first refusal, so the shares existed when the sell was refused)"
            if filled_before
            else ""
        )
    elif p.cause in (Cause.RESERVED_BY_OPEN_ORDER, Cause.OVERSIZED_SELL):
        outcome = "confirmed" if order.filled_qty > 0 else "corrected"
        why = "" if order.filled_qty > 0 else " (no shares ever arrived: the sell came before any fill)"
    else:
        outcome, why = "confirmed", ""
    return outcome, f"{says}; the broker shows the parent {fill}{why}; {holding}"


def _fill(order: BrokerOrderView) -> str:
    status = str(order.status)
    if status == "filled":
        return f"filled at {hm(order.updated_at)} ({order.filled_qty} shares)"
    if order.filled_qty > 0:
        return f"{status}, {order.filled_qty} of {order.qty} filled (last update {hm(order.updated_at)})"
    return f"{status} with nothing filled"


def _holding(now: SymbolAtBroker | None) -> str:
    if now is None:
        return "the symbol was not read"
    if not now.holders:
        text = "nothing holds the shares now"
    else:
        text = " and ".join(holder_text(h) for h in now.holders) + " holding the shares"
    return f"{text}; {now.unprotected} of {now.qty} shares unprotected now"


def holder_text(h: Holder) -> str:
    o = h.order
    whose = "of ours" if h.ours else "the log never mentions"
    return f"{_kind(o)} {whose} ({o.broker_order_id}, {h.remaining} shares) since {hm(o.submitted_at)}"


def _kind(order: BrokerOrderView) -> str:
    kind = (order.order_type or "").lower()
    if kind == "limit":
        return "a take-profit"
    if kind in ("stop", "stop_limit"):
        return "a stop-loss"
    if kind == "trailing_stop":
        return "a trailing stop"
    return f"a {kind or 'sell'} order"


def hm(at: datetime | None) -> str:
    return "?" if at is None else f"{at:%Y-%m-%d %H:%M}"
