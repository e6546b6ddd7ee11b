"""Reconciliation decisions: compare what we hold with what the broker reports, and say what to fix.

The engine's reconciler only gathers inputs (store reads, broker list/position calls), calls
``reconcile`` and applies the corrections as ordinary observations (source ``reconcile``), so a
correction goes through the same idempotent lifecycle as a stream event. Reconciling twice with the
same inputs after applying the corrections returns only discrepancies (no new observations).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from ordersync.domain.attribution import attribute
from ordersync.domain.events import BrokerOrderView, OrderObserved, Source
from ordersync.domain.ids import BrokerOrderId, ClientOrderId, Symbol
from ordersync.domain.kinds import AlertKind
from ordersync.domain.lifecycle import Move, observed_move
from ordersync.domain.order import Order, OrderSide, OrderStatus


@dataclass(frozen=True, slots=True)
class Observe:
    """Apply the broker's view of one of our orders."""

    observation: OrderObserved


@dataclass(frozen=True, slots=True)
class Lookup:
    """One of our open or in-flight orders is in no broker list we read: look it up by client id."""

    client_order_id: ClientOrderId


@dataclass(frozen=True, slots=True)
class Discrepancy:
    """A difference the corrections cannot remove (alerted when it persists)."""

    kind: AlertKind  # the alert it becomes once it persists
    key: str
    detail: str


@dataclass(frozen=True, slots=True)
class Note:
    """Something of others' the run saw, reported but never alerted: not a difference of ours.

    ``foreign_order``: an open order we did not place (another application, a person);
    ``others_position``: shares of a symbol that are not ours (pre-existing, another application, a
    person's trades), or shares of ours someone else sold (docs/architecture.md §2, invariant 8).
    """

    kind: str  # "foreign_order" | "others_position"
    key: str
    detail: str


Correction = Observe | Lookup | Discrepancy | Note


def reconcile(
    local_open: Sequence[Order],
    broker_orders: Sequence[BrokerOrderView],
    expected_positions: Mapping[Symbol, Decimal],
    broker_positions: Mapping[Symbol, Decimal],
    now: datetime,
    ours: Collection[BrokerOrderId] = (),
) -> list[Correction]:
    """Return the corrections that bring local state to the broker's (pure; see the module docstring).

    ``expected_positions`` are our own shares per symbol (``expected_positions(orders, {}, views)``, our
    book). The broker's position is attributed against it (``domain/attribution.py``): what is not ours is
    others' and what of ours is gone was sold by someone else, reported as ``Note``, never a
    ``Discrepancy``; so are open orders we did not place.

    ``broker_orders`` must hold every open broker order and every order closed since the oldest local
    open order was submitted; ``local_open`` every non-terminal local order; ``ours`` the broker ids of
    every order we hold (ended ones included): an order that replaced one of them (``replaces``) is ours
    too, observed so that it is adopted, never reported as foreign.
    """
    by_coid = {v.client_order_id: v for v in broker_orders}
    by_id = {v.broker_order_id: v for v in broker_orders}
    corrections: list[Correction] = []
    for order in local_open:
        view = by_coid.get(order.client_order_id) or (
            by_id.get(order.broker_order_id) if order.broker_order_id else None
        )
        if view is None:
            if order.status is not OrderStatus.INTENT:  # an intent was never sent: nothing to look up
                corrections.append(Lookup(order.client_order_id))
        elif _is_news(order, view):
            corrections.append(Observe(OrderObserved(view, Source.RECONCILE, view.updated_at, now)))
    known = {o.client_order_id for o in local_open}
    stored = set(ours)
    for view in successors(
        broker_orders, stored | {o.broker_order_id for o in local_open if o.broker_order_id}
    ):
        known.add(view.client_order_id)  # a successor is never one of ``stored``: not adopted yet
        corrections.append(Observe(OrderObserved(view, Source.RECONCILE, view.updated_at, now)))
    corrections.extend(_foreign(broker_orders, known))
    corrections.extend(_attribution(expected_positions, broker_positions))
    return corrections


def successors(views: Sequence[BrokerOrderView], ours: Collection[BrokerOrderId]) -> list[BrokerOrderView]:
    """The views that replaced one of ``ours``, directly or down a chain of replacements."""
    chain = set(ours)
    found: list[BrokerOrderView] = []
    pending = [v for v in views if v.replaces is not None and v.broker_order_id not in chain]
    while True:
        step = [v for v in pending if v.replaces in chain]
        if not step:
            return found
        found += step
        chain.update(v.broker_order_id for v in step)
        pending = [v for v in pending if v.broker_order_id not in chain]


def _is_news(order: Order, view: BrokerOrderView) -> bool:
    # exactly what the lifecycle would take: a view it refuses (an overfill, an older status) is not
    # proposed again on every run
    if view.filled_qty > order.qty:
        return False
    if view.filled_qty > order.filled_qty:
        return True
    if view.status == order.status:
        return False
    return observed_move(order, view) in (Move.ADVANCE, Move.LATERAL, Move.INVALID)


def _foreign(broker_orders: Sequence[BrokerOrderView], known: set[ClientOrderId]) -> list[Correction]:
    # open broker orders we did not place (manual trades, another system): theirs, reported, never fought
    return [
        Note("foreign_order", v.broker_order_id, f"{v.symbol} {v.side} {v.qty} {v.status} not placed by us")
        for v in broker_orders
        if v.client_order_id not in known and not v.status.is_terminal and v.status.value != "held"
    ]


def _attribution(ours: Mapping[Symbol, Decimal], actual: Mapping[Symbol, Decimal]) -> list[Correction]:
    return [
        Note("others_position", symbol, ledger.describe())
        for symbol, ledger in attribute(ours, actual).items()
        if ledger.others or ledger.gone
    ]


def expected_positions(
    orders: Sequence[Order],
    baseline: Mapping[Symbol, Decimal],
    views: Sequence[BrokerOrderView] = (),
) -> dict[Symbol, Decimal]:
    """Return the positions our own fills imply on top of ``baseline`` (the broker's at first start).

    ``views`` are broker reads not applied yet (a reconciliation's own reads): an order counts with the
    larger of its stored and its read ``filled_qty``, and a filled leg of one of our groups that we have
    not stored yet counts too, so the expectation is the one that holds once the reads are applied.
    """
    by_coid = {v.client_order_id: v for v in views}
    by_id = {v.broker_order_id: v for v in views}
    positions: dict[Symbol, Decimal] = dict(baseline)
    matched: set[BrokerOrderId] = set()
    legs: set[BrokerOrderId] = set()

    def add(symbol: Symbol, side: OrderSide, qty: Decimal) -> None:
        if qty:
            sign = 1 if side is OrderSide.BUY else -1
            positions[symbol] = positions.get(symbol, Decimal(0)) + sign * qty

    for order in orders:
        view = by_coid.get(order.client_order_id) or (
            by_id.get(order.broker_order_id) if order.broker_order_id else None
        )
        filled = order.filled_qty
        if view is not None:
            matched.add(view.broker_order_id)
            legs.update(view.leg_ids)
            filled = max(filled, view.filled_qty)
        if order.broker_order_id:
            matched.add(order.broker_order_id)
        legs.update(order.leg_ids)
        add(order.symbol, order.side, filled)
    for leg_id in sorted(legs - matched):
        leg = by_id.get(leg_id)
        if leg is not None and leg.side is not None:
            add(leg.symbol, OrderSide(leg.side), leg.filled_qty)
            matched.add(leg_id)
    for view in successors(views, matched):  # replacements of ours not stored yet (a PATCH mid-fill)
        if view.side is not None:
            add(view.symbol, OrderSide(view.side), view.filled_qty)
    return {s: q for s, q in positions.items() if q != 0}
