"""The child orders a plan releases, at concrete prices: exit kinds, fractions of a share, tick rounding.

Pure functions of the parent's broker-confirmed fill and its plan (docs/architecture.md §14): the whole
shares get one GTC child of the plan's kind, a fraction of a share one simple DAY exit (Alpaca takes no
fractional GTC, OCO or trailing stop: docs/alpaca.md §10.3). Relative prices are rounded to the tick away
from the fill.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

from ordersync.domain.ids import child_client_order_id
from ordersync.domain.kinds import HoldReason
from ordersync.domain.order import Order, OrderRole, OrderSide, OrderStatus, OrderType, TimeInForce, new_order
from ordersync.domain.plans import PriceRule, ProtectionPlan


@dataclass(frozen=True, slots=True)
class AttachedExits:
    """The exits a native parent carries in its own POST (``order_class`` bracket or oto).

    Absolute prices only (docs/comparison.md §8): Alpaca prices a bracket's legs before the entry fills.
    """

    take_profit: Decimal | None = None
    stop_price: Decimal | None = None
    stop_limit: Decimal | None = None  # the stop-loss leg's limit (a stop-limit leg)

    @property
    def order_class(self) -> str:
        """``bracket`` with both exits, ``oto`` with one."""
        return "bracket" if self.take_profit is not None and self.stop_price is not None else "oto"


def attached_exits(plan: ProtectionPlan) -> AttachedExits:
    """Return the exits a native plan attaches to its parent (``plans.native_refusal`` accepted it)."""
    return AttachedExits(
        take_profit=_absolute(plan.take_profit),
        stop_price=_absolute(plan.stop_loss),
        stop_limit=_absolute(plan.stop_limit),
    )


def _absolute(rule: PriceRule | None) -> Decimal | None:
    return None if rule is None or rule.price is None else tick_round(rule.price)


def child_order(parent: Order, plan: ProtectionPlan, qty: Decimal, attempt: int, now: datetime) -> Order:
    fill_price = parent.filled_avg_price
    assert fill_price is not None
    sign = 1 if parent.side is OrderSide.BUY else -1
    role = plan.role
    tp = _resolve(plan.take_profit, fill_price, sign) if plan.take_profit else None
    sl = _resolve(plan.stop_loss, fill_price, -sign) if plan.stop_loss else None
    sl_limit = _resolve(plan.stop_limit, fill_price, -sign) if plan.stop_limit else None
    trail = plan.trailing
    if role is OrderRole.OCO:
        kind, limit, stop, leg_limit = OrderType.LIMIT, tp, sl, sl_limit
    elif role is OrderRole.TAKE_PROFIT:
        kind, limit, stop, leg_limit = OrderType.LIMIT, tp, None, None
    else:
        kind, limit, stop, leg_limit = plan.stop_type, sl_limit, sl, None
    return _exit_order(
        parent,
        role,
        kind,
        qty,
        attempt,
        now,
        TimeInForce.GTC,  # protection must outlive the trading day
        limit_price=limit,
        stop_price=stop,
        stop_limit_price=leg_limit,
        trail_price=None if trail is None else trail.trail_price,
        trail_percent=None if trail is None else trail.trail_percent,
    )


FRACTION_REFUSALS_BEFORE_ALERT = 3  # a fractional exit refused this often is left to the operator


def unreleasable_fraction(
    plan: ProtectionPlan, children: Sequence[Order]
) -> tuple[HoldReason, str | None] | None:
    """Why the fraction of a share a plan owes can never be released, and the text when it carries a
    detail (None when it can be).

    Alpaca takes fractional quantities only in simple DAY market/limit/stop/stop-limit orders
    (docs/alpaca.md §10.3): a trailing-only plan cannot protect a fraction, and a fractional exit the broker
    refused ``FRACTION_REFUSALS_BEFORE_ALERT`` times is not tried again (no endless retry of a permanent
    refusal). The release gate does not even read the position for such a shortfall.
    """
    if plan.trailing is not None and plan.take_profit is None:
        return HoldReason.FRACTION_TRAILING, None
    refused = [c for c in children if c.status is OrderStatus.REJECTED and c.qty % 1 != 0]
    if len(refused) >= FRACTION_REFUSALS_BEFORE_ALERT:
        detail = f"the broker refused the fractional exit {len(refused)} times: not retried (alert)"
        return HoldReason.FRACTION_REFUSED, detail
    return None


def fraction_order(parent: Order, plan: ProtectionPlan, qty: Decimal, attempt: int, now: datetime) -> Order:
    """The fraction of a share's exit: one simple DAY order (the stop when the plan has one, else the
    take-profit), re-released after each close since a DAY order ends there (docs/architecture.md §14)."""
    fill_price = parent.filled_avg_price
    assert fill_price is not None
    sign = 1 if parent.side is OrderSide.BUY else -1
    if plan.stop_loss is not None:
        role, stop = OrderRole.STOP_LOSS, _resolve(plan.stop_loss, fill_price, -sign)
        limit = _resolve(plan.stop_limit, fill_price, -sign) if plan.stop_limit else None
        kind = OrderType.STOP_LIMIT if limit is not None else OrderType.STOP
    else:
        assert plan.take_profit is not None  # _fraction_hold refused a lone trailing stop
        role, stop, kind = OrderRole.TAKE_PROFIT, None, OrderType.LIMIT
        limit = _resolve(plan.take_profit, fill_price, sign)
    return _exit_order(
        parent,
        role,
        kind,
        qty,
        attempt,
        now,
        TimeInForce.DAY,  # Alpaca refuses a fractional GTC order (422)
        limit_price=limit,
        stop_price=stop,
    )


def _exit_order(
    parent: Order,
    role: OrderRole,
    kind: OrderType,
    qty: Decimal,
    attempt: int,
    now: datetime,
    tif: TimeInForce,
    **prices: Decimal | None,
) -> Order:
    # every exit: the opposite side of its parent, on its symbol, named after it (exactly-once ids)
    return new_order(
        client_order_id=child_client_order_id(parent.client_order_id, role.value, attempt),
        symbol=parent.symbol,
        side=parent.side.opposite,
        type=kind,
        qty=qty,
        created_at=now,
        time_in_force=tif,
        role=role,
        parent_id=parent.client_order_id,
        **prices,
    )


def _resolve(rule: PriceRule, fill_price: Decimal, sign: int) -> Decimal:
    if rule.price is not None:
        return tick_round(rule.price)
    # rounded away from the fill, as documented: a take-profit up to the next tick above it (for a long),
    # a stop down to the tick below, so neither is ever nearer the fill than the offset asked for
    raw = fill_price * (1 + sign * (rule.offset or 0))
    tick = _tick(raw)
    price = raw.quantize(tick, rounding=ROUND_CEILING if sign > 0 else ROUND_FLOOR)
    if sign * (price - fill_price) <= 0:
        # a small offset rounded onto (or behind) the fill: step one tick away, so a take-profit is a
        # profit and a stop does not trigger at once
        price = fill_price.quantize(tick, rounding=ROUND_CEILING if sign > 0 else ROUND_FLOOR) + sign * tick
    return price


def _tick(price: Decimal) -> Decimal:
    return Decimal("0.01") if price >= 1 else Decimal("0.0001")


def tick_round(price: Decimal) -> Decimal:
    """Round to Alpaca's tick: cents at or above $1, hundredths of a cent below (no sub-penny refusals)."""
    return price.quantize(_tick(price), rounding=ROUND_HALF_UP)
