"""Protection plans and the release rule for dependent orders (take-profit, stop-loss, OCO).

A plan is stored with its parent as a durable intent. ``release_decision`` is the whole rule for what
to do about it, as a pure function of the parent's *broker-confirmed* state, the children that exist and
the broker's ``qty_available``. Its properties are docs/architecture.md §2, invariant 1, 2 and 7:

* nothing is released before the broker confirms a fill, and never more than the confirmed quantity;
* coverage (open children count in full, finished ones by what they filled) converges to exactly the
  filled quantity: short -> submit the difference, long -> cancel the newest children first;
* a take-profit and a stop-loss on the same shares are one OCO, so the shares are reserved once (two
  separate sells are how the seed's ``held_for_orders`` refusals happened);
* while any child's submit outcome is unknown, nothing new is released (it may already be live);
* a parent that dies unfilled releases nothing and cancels whatever is pending.

Because coverage counts a child until the broker confirms it ended, a cancel is always confirmed before
its replacement is released: exit sequencing (cancel -> confirmed -> submit) falls out of the rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal

from ordersync.domain.coverage import coverage, entry_complete, legs_by_group, native_legs, unread_legs
from ordersync.domain.errors import InvalidOrder
from ordersync.domain.exits import (
    FRACTION_REFUSALS_BEFORE_ALERT,
    child_order,
    fraction_order,
    tick_round,
    unreleasable_fraction,
)
from ordersync.domain.ids import ClientOrderId, child_client_order_id
from ordersync.domain.kinds import HOLD_TEXT, HoldReason
from ordersync.domain.order import Order, OrderRole, OrderSide, OrderStatus, OrderType, TimeInForce, new_order
from ordersync.domain.plans import PartialFillPolicy, PriceRule, ProtectionPlan, TrailRule, validate_plan

# the plan types and the child-order helpers live in plans.py and exits.py; importable from here too
__all__ = [
    "FRACTION_REFUSALS_BEFORE_ALERT",
    "NATIVE_CUT",
    "NATIVE_HOLDS",
    "NATIVE_UNREAD",
    "WASH_TRADE_CUT",
    "WASH_TRADE_HOLD",
    "CancelChild",
    "Command",
    "Hold",
    "PartialFillPolicy",
    "PriceRule",
    "ProtectionPlan",
    "ReleaseDecision",
    "SubmitChild",
    "TrailRule",
    "coverage",
    "exit_decision",
    "release_decision",
    "target_qty",
    "tick_round",
    "unread_legs",
    "unreleasable_fraction",
    "validate_plan",
]


# -- commands the release gate executes ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SubmitChild:
    """Record ``order`` as an intent, then send it."""

    order: Order


@dataclass(frozen=True, slots=True)
class CancelChild:
    """Cancel a child (an unsent intent is dropped locally; a live order gets a cancel request)."""

    client_order_id: ClientOrderId
    reason: str


@dataclass(frozen=True, slots=True)
class Hold:
    """Protection is owed but cannot be released yet: ``kind`` is what code decides on, ``reason`` the text
    journaled (``release_held``); either may lead to an alert."""

    qty: Decimal
    kind: HoldReason
    detail: str | None = None  # the text, when it carries a detail of its own (else HOLD_TEXT's)

    @property
    def reason(self) -> str:
        return self.detail or HOLD_TEXT[self.kind]


Command = SubmitChild | CancelChild


@dataclass(frozen=True, slots=True)
class ReleaseDecision:
    """What to do for one parent, and the coverage figures it was decided on."""

    target: Decimal
    covered: Decimal
    commands: tuple[Command, ...] = ()
    holds: tuple[Hold, ...] = ()

    @property
    def qty_used(self) -> Decimal:
        """Return the available quantity the new children reserve."""
        return sum((c.order.qty for c in self.commands if isinstance(c, SubmitChild)), Decimal(0))


def target_qty(parent: Order, plan: ProtectionPlan) -> Decimal:
    """Return the quantity that must be protected now: only what the broker confirmed filled."""
    if parent.status.is_local:
        return Decimal(0)  # invariant 1: never on submission, never on local belief
    if (
        plan.policy is PartialFillPolicy.FULL_FILL
        and parent.filled_qty < parent.qty
        and not parent.is_terminal
    ):
        return Decimal(0)
    return parent.filled_qty


def release_decision(
    parent: Order,
    plan: ProtectionPlan,
    children: Sequence[Order],
    qty_available: Decimal | None,
    now: datetime,
    opposing: Sequence[Order] = (),
    replaced_at: datetime | None = None,
    cut_blockers: bool = False,
    native_cut: bool = False,
) -> ReleaseDecision:
    """Decide which children to submit or cancel for ``parent`` (pure; see the module docstring).

    ``qty_available`` is the broker's available quantity for the closing side still unallocated in this
    pass (None when unknown: then nothing is released, since the broker check cannot be made).
    ``opposing`` are our open orders on the symbol on the parent's side (the parent included), which a
    simple exit could trade against (Alpaca's wash-trade refusal). ``replaced_at`` is when the plan was
    last changed: open children made before it are cancelled, and replaced once the broker confirms.
    ``cut_blockers``: a lone exit has waited the wash-trade bound; cancel our orders that block it.
    ``native_cut``: a native parent's held legs have waited ``native_partial_bound_s`` (_native_decision).
    """
    target = target_qty(parent, plan)
    covered = coverage(children, parent)
    if parent.is_terminal and parent.filled_qty == 0:
        return ReleaseDecision(target, covered, _cancel_all(children, f"parent {parent.status} unfilled"))
    held = [leg for leg in native_legs(children) if leg.is_open]
    if held and not entry_complete(parent):
        return _native_decision(parent, held, target, covered, native_cut)
    if plan.native and not native_legs(children) and target > covered and not native_cut:
        # sent as a group, legs not read yet (the POST's answer was lost): an exit now could sit beside
        # them once they arm; the engine reads the parent with its legs, for at most the bound
        return ReleaseDecision(target, covered, holds=(Hold(target - covered, HoldReason.NATIVE_UNREAD),))
    if plan.native and not native_legs(children) and parent.is_open and native_cut:
        return _native_decision(parent, [], target, covered, native_cut)
    stale = _made_before(children, replaced_at)
    if stale:  # the plan changed: cancel first; they count until the broker confirms (no double sell)
        return ReleaseDecision(
            target, covered, tuple(CancelChild(c.client_order_id, "plan changed") for c in stale)
        )
    if covered > target:
        return ReleaseDecision(target, covered, _trim(children, covered - target))
    need = target - covered
    if need == 0:
        return ReleaseDecision(target, covered)
    if need < 1 and (never := unreleasable_fraction(plan, children)):
        return ReleaseDecision(target, covered, holds=(Hold(need, *never),))
    hold = _hold_reason(parent, plan, children, qty_available, opposing)
    if hold is HoldReason.WASH_TRADE and cut_blockers:
        # the bound is reached (docs/architecture.md §14): our own working orders that block the stop are
        # canceled; once the broker confirms, the stop goes (protection before completing the entry)
        blockers = [o for o in (parent, *opposing) if _blocks(parent, plan, o)]
        cancels = tuple(CancelChild(o.client_order_id, WASH_TRADE_CUT) for o in blockers if _cancelable(o))
        return ReleaseDecision(target, covered, cancels, (Hold(need, HoldReason.WASH_TRADE_CUT),))
    if hold:
        return ReleaseDecision(target, covered, holds=(Hold(need, hold),))
    assert qty_available is not None  # _hold_reason returns a reason when it is unknown
    qty = min(need, qty_available)
    attempt = len([c for c in children if c.group_id is None]) + 1
    whole = qty.to_integral_value(rounding=ROUND_FLOOR)
    fraction = qty - whole
    orders: list[Order] = []
    holds: list[Hold] = []
    cuts: list[Command] = []
    try:
        if whole > 0:
            orders.append(child_order(parent, plan, whole, attempt=attempt, now=now))
        if fraction > 0:
            waits = _fraction_hold(parent, plan, children, opposing)
            if waits is None:
                orders.append(fraction_order(parent, plan, fraction, attempt + len(orders), now))
            else:
                holds.append(Hold(fraction, *waits))
            if waits and waits[0] is HoldReason.WASH_TRADE and cut_blockers:  # its lone stop waited the bound
                blockers = [o for o in (parent, *opposing) if o.is_open and o.side is parent.side]
                cuts += [CancelChild(o.client_order_id, WASH_TRADE_CUT) for o in blockers if _cancelable(o)]
    except InvalidOrder as e:  # e.g. a relative stop below a $0.0001 fill rounds to zero
        invalid = Hold(need, HoldReason.NO_EXIT_PRICE, f"no valid exit price: {e}")
        return ReleaseDecision(target, covered, holds=(invalid,))
    if qty < need:
        holds.append(Hold(need - qty, HoldReason.AVAILABLE_SHORT))
    commands = (*(SubmitChild(o) for o in orders), *cuts)
    return ReleaseDecision(target, covered, commands, tuple(holds))


NATIVE_PARTIAL = HOLD_TEXT[HoldReason.NATIVE_PARTIAL]
NATIVE_LEGS_LEFT = HOLD_TEXT[HoldReason.NATIVE_LEGS_LEFT]
NATIVE_UNREAD = HOLD_TEXT[HoldReason.NATIVE_UNREAD]
NATIVE_HOLDS = (NATIVE_PARTIAL, NATIVE_LEGS_LEFT, NATIVE_UNREAD)
NATIVE_CUT = "native bound reached: cancel the rest of the group, then protect the filled shares"


def _native_decision(
    parent: Order, held: Sequence[Order], target: Decimal, covered: Decimal, cut: bool
) -> ReleaseDecision:
    """A native parent whose legs are held: never an exit of ours beside them (it would over-cover once
    they arm). A part-filled entry waits, at most the bound, then its rest is cancelled (Alpaca's group
    rule ends the legs); legs still open after their entry ended are cancelled past the bound. Once the
    broker confirms every leg ended, the parent is an ordinary part-filled parent (docs/comparison.md §8).
    """
    need = target - covered
    if need <= 0:
        return ReleaseDecision(target, covered)  # a full-fill policy waits for the complete fill anyway
    if parent.is_open:
        reason, victims = HoldReason.NATIVE_PARTIAL, [parent]
    else:
        reason, victims = HoldReason.NATIVE_LEGS_LEFT, list(held)
    cancels = tuple(CancelChild(o.client_order_id, NATIVE_CUT) for o in victims if cut and _cancelable(o))
    return ReleaseDecision(target, covered, cancels, (Hold(need, reason),))


def exit_decision(
    parent: Order, children: Sequence[Order], qty_available: Decimal | None, now: datetime
) -> ReleaseDecision:
    """Decide how to close a parent's position: cancel -> broker confirms -> sell what is left (pure).

    The entry and every protective child are cancelled first; nothing is sold while any of them may
    still be live (a fill that races a cancel simply shrinks what is left). Then one market exit sells
    the parent's filled quantity not already sold, within the broker's ``qty_available``.
    """
    primaries = [c for c in children if c.group_id is None]
    covered = coverage(children)
    cancels: list[Command] = []
    if parent.is_open and not parent.is_inflight and parent.status is not OrderStatus.PENDING_CANCEL:
        cancels.append(CancelChild(parent.client_order_id, "closing: stop the entry"))
    # a native parent's legs are its protection too (held or armed): cancelled like an OCO
    protective = [
        c for c in (*primaries, *native_legs(children)) if c.is_open and c.role is not OrderRole.EXIT
    ]
    cancels += [
        CancelChild(c.client_order_id, "closing: cancel protection before selling")
        for c in protective
        if not c.is_inflight and c.status is not OrderStatus.PENDING_CANCEL
    ]
    legs_of = legs_by_group(children)
    unread = [c for c in primaries if unread_legs(c, legs_of.get(c.client_order_id, []))]
    if cancels or protective or unread or parent.is_open or any(c.is_inflight for c in children):
        waiting = Hold(parent.filled_qty, HoldReason.CLOSING_CANCELS)
        return ReleaseDecision(parent.filled_qty, covered, tuple(cancels), (waiting,))
    sold = sum((c.filled_qty for c in children), Decimal(0))
    working = sum((c.leaves_qty for c in primaries if c.role is OrderRole.EXIT), Decimal(0))
    remaining = parent.filled_qty - sold - working
    if remaining <= 0:
        return ReleaseDecision(parent.filled_qty, covered)
    if not qty_available:
        return ReleaseDecision(
            parent.filled_qty, covered, holds=(Hold(remaining, HoldReason.CLOSING_AVAILABLE_ZERO),)
        )
    qty = min(remaining, qty_available)
    exit_order = new_order(
        client_order_id=child_client_order_id(
            parent.client_order_id, OrderRole.EXIT.value, len(primaries) + 1
        ),
        symbol=parent.symbol,
        side=parent.side.opposite,
        type=OrderType.MARKET,
        qty=qty,
        created_at=now,
        time_in_force=TimeInForce.DAY,
        role=OrderRole.EXIT,
        parent_id=parent.client_order_id,
    )
    return ReleaseDecision(parent.filled_qty, covered, (SubmitChild(exit_order),))


def _made_before(children: Sequence[Order], replaced_at: datetime | None) -> list[Order]:
    if replaced_at is None:
        return []
    return [
        c
        for c in children
        if c.group_id is None
        and c.is_open
        and c.created_at < replaced_at
        and not c.is_inflight
        and c.status is not OrderStatus.PENDING_CANCEL
    ]


def _hold_reason(
    parent: Order,
    plan: ProtectionPlan,
    children: Sequence[Order],
    qty_available: Decimal | None,
    opposing: Sequence[Order],
) -> HoldReason | None:
    if any(c.is_inflight for c in children):
        return HoldReason.SUBMIT_UNKNOWN
    if parent.filled_avg_price is None:
        return HoldReason.FILL_PRICE_UNKNOWN
    if qty_available is None:
        return HoldReason.AVAILABLE_UNKNOWN
    if qty_available <= 0:
        return HoldReason.AVAILABLE_ZERO
    if any(_blocks(parent, plan, o) for o in (parent, *opposing)):
        # Alpaca refuses a simple order that could trade against our own open opposite order (docs/alpaca.md,
        # 6.3); an OCO and a trailing stop are exempt, a lone exit is not: it waits until those orders stop
        # working, at most the wash-trade bound (then ``cut_blockers``)
        return HoldReason.WASH_TRADE
    return None


WASH_TRADE_HOLD = HOLD_TEXT[HoldReason.WASH_TRADE]
WASH_TRADE_CUT = "wash-trade bound reached: cancel our working orders that block the stop"


def _blocks(parent: Order, plan: ProtectionPlan, other: Order) -> bool:
    if not other.is_open or other.side is not parent.side:
        return False
    if plan.role is OrderRole.OCO or plan.trailing is not None:
        return False
    return _could_cross(parent, plan, other)


def _cancelable(order: Order) -> bool:
    # only what the broker has (an intent or a submit in flight is not working there yet)
    return not order.status.is_local and order.status is not OrderStatus.PENDING_CANCEL


def _could_cross(parent: Order, plan: ProtectionPlan, other: Order) -> bool:
    if plan.role is OrderRole.STOP_LOSS or other.type is not OrderType.LIMIT or other.limit_price is None:
        return True  # a stop against anything, or any exit against a market/stop order: always refused
    assert plan.take_profit is not None
    sign = 1 if parent.side is OrderSide.BUY else -1
    price = plan.take_profit.price or (parent.filled_avg_price or other.limit_price) * (
        1 + sign * (plan.take_profit.offset or 0)
    )
    # opposing limits are refused when they cross (buy limit >= sell limit)
    return sign * (tick_round(price) - other.limit_price) <= 0


def _cancel_all(children: Sequence[Order], reason: str) -> tuple[Command, ...]:
    return tuple(CancelChild(c.client_order_id, reason) for c in children if c.is_open and c.group_id is None)


def _trim(children: Sequence[Order], excess: Decimal) -> tuple[Command, ...]:
    commands: list[Command] = []
    newest_first = sorted((c for c in children if c.is_open and c.group_id is None), key=_newest)
    for child in newest_first:
        if excess <= 0:
            break
        if child.status is OrderStatus.PENDING_CANCEL:
            excess -= child.qty
            continue
        commands.append(CancelChild(child.client_order_id, "coverage above the filled quantity"))
        excess -= child.qty
    return tuple(commands)


def _newest(order: Order) -> tuple[float, str]:
    return (-order.created_at.timestamp(), order.client_order_id)


def _fraction_hold(
    parent: Order, plan: ProtectionPlan, children: Sequence[Order], opposing: Sequence[Order]
) -> tuple[HoldReason, str | None] | None:
    if never := unreleasable_fraction(plan, children):
        return never
    if plan.stop_loss is not None:  # a lone stop on the fraction: the wash-trade rule applies to it
        working = [o for o in (parent, *opposing) if o.is_open and o.side is parent.side]
        if working:
            return HoldReason.WASH_TRADE, None
    return None
