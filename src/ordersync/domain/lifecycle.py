"""The order state machine: how a broker observation changes an order, as an explicit table.

Alpaca gives no formal state machine, its stream duplicates events (even after a terminal one), has no
ordering guarantee, and polls race the stream (docs/alpaca.md, 1.2 and 7). So the rules are:

* statuses are ranked in tiers (local < acknowledged < new < working < terminal); an observation of a
  lower tier is *stale* and changes nothing, a higher tier *advances*, the same tier is *lateral*; a
  non-terminal view older (broker ``updated_at``) than the one applied is stale whatever its tier;
* a terminal order never reopens; a different terminal status is *invalid*: reported, state kept;
* fills are facts: ``filled_qty`` only grows, an ``execution_id`` is applied once, and a fill above the
  order quantity is an ``Overfill`` (reported, not applied).

``TRANSITIONS`` is the whole table over (current, observed); the quirk rows are spelled out below it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType

from ordersync.domain.errors import DomainError, InvalidTransition, MalformedObservation, Overfill
from ordersync.domain.events import BrokerOrderView, OrderObserved
from ordersync.domain.order import BROKER_STATUSES, Order, OrderStatus

S = OrderStatus


class Move(StrEnum):
    """What an observed status does to the current one."""

    ADVANCE = "advance"  # forward in the lifecycle: take it
    LATERAL = "lateral"  # same tier (e.g. partially_filled <-> pending_cancel): take it if newer
    SAME = "same"  # same status: only a fill increase can change anything
    STALE = "stale"  # behind what we know (duplicate or late delivery): ignore
    INVALID = "invalid"  # impossible (terminal -> another terminal): report, keep state


_TIERS: tuple[frozenset[OrderStatus], ...] = (
    frozenset({S.INTENT}),
    frozenset({S.SUBMITTING}),
    frozenset({S.PENDING_REVIEW, S.ACCEPTED, S.PENDING_NEW, S.ACCEPTED_FOR_BIDDING, S.HELD}),
    frozenset({S.NEW}),
    frozenset(
        {S.PARTIALLY_FILLED, S.DONE_FOR_DAY, S.CALCULATED, S.STOPPED, S.SUSPENDED}
        | {S.PENDING_CANCEL, S.PENDING_REPLACE}
    ),
    frozenset({S.FILLED, S.CANCELED, S.EXPIRED, S.REPLACED, S.REJECTED}),
)
TIER: Mapping[OrderStatus, int] = MappingProxyType(
    {status: rank for rank, tier in enumerate(_TIERS) for status in tier}
)


def _default_move(current: OrderStatus, observed: OrderStatus) -> Move:
    if current == observed:
        return Move.SAME
    if current.is_terminal:
        # duplicates after a terminal event are normal on Alpaca (QuantConnect logs, docs/alpaca.md, 7)
        return Move.INVALID if observed.is_terminal else Move.STALE
    if TIER[observed] > TIER[current]:
        return Move.ADVANCE
    if TIER[observed] < TIER[current]:
        return Move.STALE
    return Move.LATERAL


def _build_table() -> Mapping[tuple[OrderStatus, OrderStatus], Move]:
    table = {(c, o): _default_move(c, o) for c in OrderStatus for o in BROKER_STATUSES}
    table.update(_QUIRKS)
    return MappingProxyType(table)


# Venue quirks, each an explicit row rather than an `if` somewhere:
_QUIRKS: dict[tuple[OrderStatus, OrderStatus], Move] = {
    # A replace that has been processed is terminal for that id; the new id carries on. A late
    # `canceled` for the old id (cancel-all racing a replace) adds nothing: stale, not invalid.
    (S.REPLACED, S.CANCELED): Move.STALE,
    # done_for_day / calculated are end-of-day marks, not terminal: a GTC order works again next day.
    (S.DONE_FOR_DAY, S.NEW): Move.LATERAL,
    (S.CALCULATED, S.NEW): Move.LATERAL,
    # A rejected cancel (order_cancel_rejected) returns the order to the working state it had.
    (S.PENDING_CANCEL, S.NEW): Move.LATERAL,
    (S.PENDING_REPLACE, S.NEW): Move.LATERAL,
}

TRANSITIONS: Mapping[tuple[OrderStatus, OrderStatus], Move] = _build_table()


class Outcome(StrEnum):
    """What applying one observation did; journaled with it."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    STALE = "stale"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class Applied:
    """The result of applying an observation: the new order, what happened, and the fill increase."""

    order: Order
    outcome: Outcome
    fill_delta: Decimal = Decimal(0)
    error: DomainError | None = None

    @property
    def changed(self) -> bool:
        """True when the order must be saved."""
        return self.outcome is Outcome.APPLIED


def next_move(current: OrderStatus, observed: OrderStatus) -> Move:
    """Look up the move for an observed status.

    Raises:
        MalformedObservation: when the observed status is a local one (brokers never report those).
    """
    try:
        return TRANSITIONS[(current, observed)]
    except KeyError as e:
        raise MalformedObservation(f"{observed} is not a broker status") from e


def apply(order: Order, obs: OrderObserved) -> Applied:
    """Apply a broker observation to ``order``; idempotent, monotonic, never raises for bad input.

    Returns an ``Applied`` whose outcome says whether anything changed; invalid observations come back
    with ``outcome=INVALID`` and ``error`` set, and the order unchanged.
    """
    view = obs.order
    if view.client_order_id != order.client_order_id or (
        order.broker_order_id is not None and view.broker_order_id != order.broker_order_id
    ):
        return _invalid(
            order, view.status, f"ids differ: observed {view.broker_order_id}/{view.client_order_id}"
        )
    if obs.execution is not None and obs.execution.execution_id in order.execution_ids:
        return Applied(order, Outcome.DUPLICATE)
    if view.filled_qty > order.qty:
        error = Overfill(f"{order.client_order_id}: broker filled {view.filled_qty} of {order.qty}")
        return Applied(order, Outcome.INVALID, error=error)
    return _take(order, obs, observed_move(order, view))


def observed_move(order: Order, view: BrokerOrderView) -> Move:
    """The move ``view``'s status makes on ``order``, its age considered (reconcile asks it too).

    An older non-terminal view never moves the status, whatever its tier: a late pending_cancel must not
    undo the newer cancel-reject that already took the order back to new.
    """
    move = next_move(order.status, view.status)
    older = order.broker_updated_at is not None and view.updated_at < order.broker_updated_at
    if older and move in (Move.ADVANCE, Move.LATERAL) and not view.status.is_terminal:
        return Move.STALE
    return move


def _take(order: Order, obs: OrderObserved, move: Move) -> Applied:
    view = obs.order
    new_filled = max(order.filled_qty, view.filled_qty)  # fills are facts: never lost, never undone
    delta = new_filled - order.filled_qty
    takes_status = move in (Move.ADVANCE, Move.LATERAL)
    executions = order.execution_ids
    if obs.execution is not None:
        executions = executions | {obs.execution.execution_id}
    # a newer view of the same status still moves the watermark that later stale views are judged by
    newer = move is Move.SAME and (
        order.broker_updated_at is None or view.updated_at > order.broker_updated_at
    )
    if not takes_status and not newer and delta == 0 and executions == order.execution_ids:
        if move is Move.INVALID:
            return _invalid(order, view.status, "a terminal order never changes its outcome")
        return Applied(order, Outcome.DUPLICATE if move is Move.SAME else Outcome.STALE)
    # built field by field, not with ``dataclasses.replace`` (which walks the fields and re-parses
    # keywords on every call, a tenth of a stream event's cost in bench/bench_throughput.py)
    updated = Order(
        client_order_id=order.client_order_id,
        symbol=order.symbol,
        side=order.side,
        type=order.type,
        qty=order.qty,
        time_in_force=order.time_in_force,
        created_at=order.created_at,
        role=order.role,
        parent_id=order.parent_id,
        group_id=order.group_id,
        limit_price=order.limit_price,
        stop_price=order.stop_price,
        stop_limit_price=order.stop_limit_price,
        trail_price=order.trail_price,
        trail_percent=order.trail_percent,
        status=view.status if takes_status else order.status,
        broker_order_id=order.broker_order_id or view.broker_order_id,
        leg_ids=order.leg_ids or view.leg_ids,
        filled_qty=new_filled,
        filled_avg_price=view.filled_avg_price if delta > 0 else order.filled_avg_price,
        broker_updated_at=max(filter(None, (order.broker_updated_at, view.updated_at))),
        execution_ids=executions,
        version=order.version,
    )
    error = None
    if move is Move.INVALID:  # the fill is taken (shares are real) but the status change is refused
        error = InvalidTransition(order.client_order_id, order.status, view.status, "terminal order")
    elif order.is_terminal and delta > 0:  # shares are real, but a terminal order filling is reported
        error = InvalidTransition(order.client_order_id, order.status, view.status, "fill after terminal")
    return Applied(updated, Outcome.APPLIED, delta, error)


def _invalid(order: Order, observed: OrderStatus, reason: str) -> Applied:
    error = InvalidTransition(order.client_order_id, order.status, observed, reason)
    return Applied(order, Outcome.INVALID, error=error)


# -- local steps: the parts of the lifecycle that happen on our side of the wire ----------------------


def mark_submitting(order: Order) -> Order:
    """Record that the POST is about to be sent: from here the outcome is unknown until settled.

    Raises:
        InvalidTransition: unless the order is an unsent intent.
    """
    if order.status is not S.INTENT:
        raise InvalidTransition(order.client_order_id, order.status, S.SUBMITTING, "only an intent is sent")
    return replace(order, status=S.SUBMITTING)


def settle_not_found(order: Order) -> Order:
    """A lookup by client_order_id proved the broker never received it: back to a sendable intent.

    Raises:
        InvalidTransition: unless the order was in flight.
    """
    if order.status is not S.SUBMITTING:
        raise InvalidTransition(order.client_order_id, order.status, S.INTENT, "only an in-flight order")
    return replace(order, status=S.INTENT)


def mark_refused(order: Order) -> Order:
    """The broker refused the POST outright (4xx with a body): no order exists at the broker.

    Raises:
        InvalidTransition: unless the order was an intent or in flight.
    """
    if not order.status.is_local:
        raise InvalidTransition(order.client_order_id, order.status, S.REJECTED, "already at the broker")
    return replace(order, status=S.REJECTED)


def cancel_intent(order: Order) -> Order:
    """Drop an intent that was never sent (its parent died): it ends canceled, with nothing at the broker.

    Raises:
        InvalidTransition: unless the order is an unsent intent.
    """
    if order.status is not S.INTENT:
        raise InvalidTransition(order.client_order_id, order.status, S.CANCELED, "only an unsent intent")
    return replace(order, status=S.CANCELED)
