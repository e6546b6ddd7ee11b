"""Applying one broker observation to the store: the single path by which the broker's word becomes ours.

Kept apart from the ``Context`` bag because this is the engine's core rule (lifecycle + journal +
adoption of legs and replacements), read top-down in one place; the bag only holds collaborators.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import structlog

from ordersync.domain import lifecycle
from ordersync.domain.errors import BrokerError
from ordersync.domain.events import BrokerOrderView, OrderObserved, Source
from ordersync.domain.ids import BrokerOrderId
from ordersync.domain.kinds import JournalKind, NotificationKind
from ordersync.domain.lifecycle import Outcome
from ordersync.domain.order import Order, OrderRole, OrderSide, OrderStatus, OrderType
from ordersync.engine.holds import check_operator_cancel
from ordersync.ports import REQUEST_PRIORITY, JournalEntry, PlanState, Priority, Transaction

if TYPE_CHECKING:  # the bag re-exports this module's names: a runtime import would be circular
    from ordersync.engine.context import Context

log = structlog.get_logger("ordersync.engine")

_ALWAYS_JOURNALED = frozenset({Source.STREAM, Source.SUBMIT, Source.LOOKUP})


def apply_observation(ctx: Context, tx: Transaction, obs: OrderObserved) -> Order | None:
    """Apply one broker observation inside ``tx``; journal it; return the order if it changed.

    The legs nested in it are applied too, so an OCO's stop leg becomes a stored order the first time
    the broker shows it (it then survives a restart, and its events find it by broker id).
    """
    changed = _apply_one(ctx, tx, obs)
    if obs.order.legs:
        owner = tx.get_order(obs.order.client_order_id) or tx.find_by_broker_id(obs.order.broker_order_id)
        for leg in obs.order.legs:
            if owner is not None:  # the view itself names its legs: no need to have seen leg_ids before
                ctx.leg_owner.setdefault(leg.broker_order_id, owner.client_order_id)
            _apply_one(ctx, tx, replace(obs, order=leg, event=None, execution=None))
    return changed


def _apply_one(ctx: Context, tx: Transaction, obs: OrderObserved) -> Order | None:
    view = obs.order
    order = tx.get_order(view.client_order_id) or tx.find_by_broker_id(view.broker_order_id)
    if order is None:
        order = _adopt_leg(ctx, tx, obs) or _adopt_replacement(ctx, tx, obs)
    if order is None:
        _observed(ctx, obs.source, "foreign").inc()
        return None
    result = lifecycle.apply(order, obs)
    _observed(ctx, obs.source, result.outcome).inc()
    # every stream event, submit answer and lookup is journaled (rare, and the forensic record); a poll or
    # reconcile read only when it changed something or was refused — re-reading 1,000 unchanged open
    # orders every poll would bury the journal (and the disk) in copies
    if obs.source in _ALWAYS_JOURNALED or result.outcome in (Outcome.APPLIED, Outcome.INVALID):
        tx.journal(_observation_entry(ctx, order, obs, result.outcome, result.error))
    if not result.changed:
        return None
    if obs.source is Source.POLL:
        ctx.poll_news += 1  # a read found what the stream did not deliver
    tx.save_order(result.order)
    if obs.execution is not None:
        e = obs.execution
        tx.record_fill(e.execution_id, order.client_order_id, e.qty, e.price, obs.ts_event)
    ctx.remember_legs(result.order)
    _follow_replacement(ctx, tx, result.order, view)
    ctx.mark_dirty(order.parent_id or order.client_order_id)
    if result.order.is_terminal and not order.is_terminal:
        ctx.mark_symbol(order.symbol)  # holds on this symbol (wash-trade, availability) may clear now
    if result.fill_delta > 0 and ctx.ours is not None:
        sign = 1 if order.side is OrderSide.BUY else -1
        ctx.ours[order.symbol] = ctx.ours.get(order.symbol, Decimal(0)) + sign * result.fill_delta
    if result.order.is_terminal and not order.is_terminal and result.order.is_child:
        check_operator_cancel(ctx, tx, result.order)
    if result.fill_delta > 0:
        ctx.notify(
            NotificationKind.FILL,
            order.client_order_id,
            qty=result.fill_delta,
            filled_qty=result.order.filled_qty,
        )
    return result.order


# each observations counter's children by (source, outcome): ``labels()`` converts, locks and looks up
# on every call, a few microseconds per stream event. Keyed by the counter's id, checked against the
# counter itself (an id can be reused once a counter is gone); a fleet's engines have a counter each
_CHILDREN: dict[int, tuple[Any, dict[tuple[str, str], Any]]] = {}


def _observed(ctx: Context, source: str, outcome: str) -> Any:
    counter = ctx.metrics.observations
    known = _CHILDREN.get(id(counter))
    if known is None or known[0] is not counter:
        if len(_CHILDREN) > 256:  # engines come and go in one process (tests): keep the recent ones
            _CHILDREN.clear()
        known = _CHILDREN[id(counter)] = (counter, {})
    child = known[1].get((source, outcome))
    if child is None:
        child = known[1][(source, outcome)] = counter.labels(str(source), str(outcome))
    return child


def _observation_entry(
    ctx: Context, order: Order, obs: OrderObserved, outcome: Outcome, error: Exception | None
) -> JournalEntry:
    view = obs.order
    payload: dict[str, Any] = {
        "source": obs.source._value_,  # (``_value_``: the enum's plain attribute, not its property)
        "event": obs.event,
        "status": view.status._value_,
        "filled_qty": view.filled_qty,
        "broker_order_id": view.broker_order_id,
        "symbol": view.symbol,
        "outcome": outcome._value_,
        "ts_event": obs.ts_event,
    }
    if obs.execution is not None:
        payload.update(
            execution_id=obs.execution.execution_id, qty=obs.execution.qty, price=obs.execution.price
        )
    if error is not None:
        payload["error"] = str(error)
    return ctx.entry(JournalKind.OBSERVED, order.client_order_id, **payload)


def _adopt_replacement(ctx: Context, tx: Transaction, obs: OrderObserved) -> Order | None:
    """Adopt the order that replaced one of ours (a PATCH, ours or a person's): it inherits the role.

    Alpaca gives the replacement a new id (and, unless the PATCH named one, a new client_order_id) and
    points it at its predecessor with ``replaces``. A replaced entry's fills before the replace stay its
    own (its children cover them); the replacement becomes an entry of its own under the same plan, so
    its fills are protected too. A replaced child's successor is a child of the same parent (and group),
    so the shares it covers stay covered (docs/architecture.md §2, invariant 8: replacements inherit
    their role).
    """
    view = obs.order
    if view.replaces is None:
        return None
    predecessor = tx.find_by_broker_id(view.replaces)
    if predecessor is None:
        return None
    successor = replace(
        predecessor,
        client_order_id=view.client_order_id,
        broker_order_id=view.broker_order_id,
        qty=view.qty or predecessor.qty,
        limit_price=view.limit_price if view.limit_price is not None else predecessor.limit_price,
        stop_price=view.stop_price if view.stop_price is not None else predecessor.stop_price,
        status=OrderStatus.NEW,
        filled_qty=Decimal(0),
        filled_avg_price=None,
        broker_updated_at=None,
        execution_ids=frozenset(),
        leg_ids=view.leg_ids,
        created_at=ctx.clock.now(),
        version=0,
    )
    tx.add_order(successor)
    if predecessor.group_id is not None:
        ctx.leg_owner[view.broker_order_id] = predecessor.group_id
    elif predecessor.is_child:
        _hand_over_group(ctx, tx, predecessor, successor)
    plan = tx.get_plan(predecessor.client_order_id) if predecessor.parent_id is None else None
    if plan is not None and tx.get_plan(successor.client_order_id) is None:
        tx.add_plan(PlanState(successor.client_order_id, plan.plan))
    tx.journal(
        ctx.entry(
            JournalKind.REPLACEMENT_ADOPTED,
            successor.client_order_id,
            replaces=predecessor.client_order_id,
            role=successor.role.value,
            parent=successor.parent_id,
            plan=plan is not None,
        )
    )
    log.info("engine.replacement_adopted", replaces=predecessor.client_order_id, by=successor.client_order_id)
    return successor


def _hand_over_group(ctx: Context, tx: Transaction, predecessor: Order, successor: Order) -> None:
    """An exit of ours edited by PATCH (a person moving our take-profit): the replacement is the group's
    primary now. A replaced leg keeps its place in its group at the broker (docs/simulator.md), so the
    other legs sit under the replacement and move with it here too, and the replaced order becomes
    a member of the new group (its fills before the edit still count there, once): the shares it covered
    stay covered by one group, never counted twice (which would make the release rule cancel the edit)."""
    assert predecessor.parent_id is not None
    for leg in tx.children_of(predecessor.parent_id):
        if leg.group_id == predecessor.client_order_id:
            tx.save_order(replace(leg, group_id=successor.client_order_id))
            if leg.broker_order_id:
                ctx.leg_owner[leg.broker_order_id] = successor.client_order_id
    current = tx.get_order(predecessor.client_order_id) or predecessor
    tx.save_order(replace(current, group_id=successor.client_order_id))


def _follow_replacement(ctx: Context, tx: Transaction, order: Order, view: BrokerOrderView) -> None:
    # ours was replaced by an order we have not seen: read it now (its own events may never come)
    successor = view.replaced_by
    if order.status is not OrderStatus.REPLACED or successor is None or successor in ctx.following:
        return
    if tx.find_by_broker_id(successor) is None:
        ctx.following.add(successor)
        ctx.spawn(_read_successor(ctx, successor), f"replacement:{successor}")


async def _read_successor(ctx: Context, broker_id: BrokerOrderId) -> None:
    REQUEST_PRIORITY.set(Priority.DETECT)  # its fills are ours to protect: as urgent as noticing a fill
    try:
        view = await ctx.broker.get_order(broker_id, nested=True)
    except BrokerError:
        view = None  # the next catch-up or reconciliation lists it (and adopts it through `replaces`)
    finally:
        ctx.following.discard(broker_id)
    if view is not None:
        with ctx.store.transaction() as tx:
            read = OrderObserved(view, Source.RECONCILE, view.updated_at, ctx.clock.now())
            apply_observation(ctx, tx, read)


def _adopt_leg(ctx: Context, tx: Transaction, obs: OrderObserved) -> Order | None:
    # an OCO's stop leg carries a broker-made client_order_id: it is ours through its group. A leg of an
    # entry (a native bracket/OTO, docs/comparison.md §8) is a child of that entry, in the entry's group
    view = obs.order
    owner = ctx.leg_owner.get(view.broker_order_id)
    primary = tx.get_order(owner) if owner else None
    if primary is None:
        return None
    native = primary.parent_id is None
    role = OrderRole.STOP_LOSS
    if native and view.order_type == OrderType.LIMIT.value:
        role = OrderRole.TAKE_PROFIT
    leg = Order(
        client_order_id=view.client_order_id,
        symbol=primary.symbol,
        side=OrderSide(view.side) if view.side else primary.side,
        type=OrderType(view.order_type) if view.order_type else OrderType.STOP,
        qty=view.qty or primary.qty,
        time_in_force=primary.time_in_force,
        created_at=ctx.clock.now(),
        role=role,
        parent_id=primary.client_order_id if native else primary.parent_id,
        group_id=primary.client_order_id,
        limit_price=view.limit_price,
        stop_price=view.stop_price,
        status=OrderStatus.HELD,
        broker_order_id=view.broker_order_id,
    )
    tx.add_order(leg)
    tx.journal(ctx.entry(JournalKind.LEG_ADOPTED, leg.client_order_id, group=primary.client_order_id))
    return replace(leg)
