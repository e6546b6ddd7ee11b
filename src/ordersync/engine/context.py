"""State shared by the engine's parts, and the one function that applies an observation.

Every transaction here is synchronous and never spans an ``await``: on one event loop that makes each
unit of work atomic with respect to every other task, which is the single-writer rule in practice.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

import structlog

from ordersync.domain import lifecycle
from ordersync.domain.attribution import operator_canceled
from ordersync.domain.errors import BrokerError
from ordersync.domain.events import BrokerOrderView, OrderObserved, Source
from ordersync.domain.ids import BrokerOrderId, ClientOrderId, Symbol
from ordersync.domain.lifecycle import Outcome
from ordersync.domain.order import Order, OrderRole, OrderSide, OrderStatus, OrderType
from ordersync.engine.metrics import EngineMetrics
from ordersync.engine.options import EngineOptions
from ordersync.ports import (
    REQUEST_PRIORITY,
    Alert,
    Broker,
    Clock,
    JournalEntry,
    Lease,
    PlanState,
    Priority,
    Store,
    Transaction,
)

log = structlog.get_logger("ordersync.engine")


@dataclass(frozen=True, slots=True)
class Notification:
    """What an embedding platform hears about: fills, children released/accepted/refused, alerts."""

    kind: str
    client_order_id: str | None
    detail: dict[str, Any]


@dataclass
class Context:
    """The engine's collaborators and in-memory bookkeeping (all durable state is in the store)."""

    broker: Broker
    store: Store
    clock: Clock
    options: EngineOptions
    metrics: EngineMetrics
    listeners: list[Callable[[Notification], None]] = field(default_factory=list)
    dirty: set[ClientOrderId] = field(default_factory=set)
    dirty_symbols: set[str] = field(default_factory=set)  # a sibling ended: every plan there may move
    leg_owner: dict[BrokerOrderId, ClientOrderId] = field(default_factory=dict)
    following: set[BrokerOrderId] = field(default_factory=set)  # replacements being read
    sending: set[ClientOrderId] = field(default_factory=set)
    settling: set[ClientOrderId] = field(default_factory=set)
    stopping: bool = False
    poll_news: int = 0  # changes first learned from catch-up reads (the stream missed them)
    canceling: dict[ClientOrderId, datetime] = field(default_factory=dict)
    wash_waits: dict[ClientOrderId, datetime] = field(default_factory=dict)  # release.py: held since
    native_waits: dict[ClientOrderId, tuple[str, datetime]] = field(default_factory=dict)  # native.py
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    symbol_locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    on_dirty: Callable[[], None] = lambda: None
    lease: Lease | None = None
    lease_lost: bool = False
    lease_unconfirmed: bool = False
    ours: dict[Symbol, Decimal] | None = None  # our book per symbol (domain/attribution.py); None: re-read
    holds: dict[ClientOrderId, str] = field(default_factory=dict)  # operator holds, as of the last read

    def may_write(self) -> bool:
        """True if this instance may send to the broker: it holds the lease (or runs without one).

        Checked right before every submit and cancel. A lease another instance took over is *lost*: this
        instance stops for good. A lease that cannot be renewed because the database does not answer is
        *unconfirmed*: broker writes pause and resume once a renewal succeeds with the same token.
        """
        if self.lease is None:
            return True
        if self.lease.held():
            if self.lease_unconfirmed:
                self.lease_unconfirmed = False
                log.warning(
                    "engine.lease_confirmed", detail="the database answers again: broker writes resume"
                )
            self.metrics.lease_held.set(1)
            return True
        self.metrics.lease_held.set(0)
        if self.lease.lost:
            if not self.lease_lost:
                self.lease_lost = True
                log.error("engine.lease_lost", detail="another instance is active: no more broker writes")
        elif not self.lease_unconfirmed:
            self.lease_unconfirmed = True
            log.error(
                "engine.lease_unconfirmed",
                detail="the lease cannot be renewed (database unreachable?): broker writes paused",
            )
        return False

    def entry(self, kind: str, client_order_id: str | None, **payload: Any) -> JournalEntry:
        """Return a journal entry stamped with the engine clock."""
        return JournalEntry(self.clock.now(), kind, client_order_id, payload)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        """Run ``coro`` in the background; its failure is logged, never lost silently.

        Once the engine is stopping nothing new starts (the work stays journaled for the next start).
        """
        if self.stopping:
            coro.close()
            return
        task = asyncio.create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("engine.task_failed", task=task.get_name(), error=repr(task.exception()))

    def mark_dirty(self, parent_id: ClientOrderId) -> None:
        """Ask the release gate to look at ``parent_id`` again."""
        self.dirty.add(parent_id)
        self.on_dirty()

    def mark_symbol(self, symbol: str) -> None:
        """Ask the release gate to look at every active plan on ``symbol`` (an order there ended)."""
        self.dirty_symbols.add(symbol)
        self.on_dirty()

    def notify(self, kind: str, client_order_id: str | None, **detail: Any) -> None:
        """Tell every listener, and the log at INFO (an order's life, readable by an operator).

        A listener that raises is logged and ignored. Alerts log themselves as ``engine.alert``."""
        if kind != "alert":
            log.info(
                f"order.{kind}", client_order_id=client_order_id, **{k: str(v) for k, v in detail.items()}
            )
        note = Notification(kind, client_order_id, detail)
        for listener in list(self.listeners):
            try:
                listener(note)
            except Exception as e:  # a platform callback must never stop the engine
                log.warning("engine.listener_failed", kind=kind, error=repr(e))

    def symbol_lock(self, symbol: str) -> asyncio.Lock:
        """Return the lock that serializes releases on one symbol (one qty_available read at a time)."""
        return self.symbol_locks.setdefault(symbol, asyncio.Lock())

    def raise_alert(self, tx: Transaction, kind: str, key: str, message: str) -> bool:
        """Open an alert (once per kind/key while open): journal, log, count and notify it."""
        if not tx.raise_alert(Alert(kind, key, message, self.clock.now())):
            return False
        self.metrics.alerts.labels(kind).inc()
        self.metrics.open_alerts.labels(kind).inc()
        tx.journal(self.entry("alert", None, alert=kind, key=key, message=message))
        log.warning("engine.alert", alert=kind, key=key, message=message)
        self.notify("alert", None, alert=kind, key=key, message=message)
        return True

    def resolve_alert(self, tx: Transaction, kind: str, key: str) -> None:
        """Close an open alert whose condition has cleared."""
        if tx.resolve_alert(kind, key, self.clock.now()):
            self.metrics.open_alerts.labels(kind).dec()
            tx.journal(self.entry("alert_resolved", None, alert=kind, key=key))

    def remember_legs(self, order: Order) -> None:
        """Index an OCO child's leg ids so their events find their group."""
        for leg in order.leg_ids:
            self.leg_owner[leg] = order.client_order_id


async def pause(clock: Clock, seconds: float) -> None:
    """Wait ``seconds`` of the engine clock, or as many real seconds, whichever ends first.

    For the few waits that must end even when nobody advances a virtual clock: the start-up read and a
    dry-run reconciliation, which a driver (the demo) may run while its clock stands still.
    """
    sleeper = asyncio.ensure_future(clock.sleep(seconds))
    try:
        await asyncio.wait([sleeper], timeout=max(0.0, seconds))
    finally:
        sleeper.cancel()


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
        ctx.metrics.observations.labels(obs.source.value, "foreign").inc()
        return None
    result = lifecycle.apply(order, obs)
    ctx.metrics.observations.labels(obs.source.value, result.outcome.value).inc()
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
        _check_operator_cancel(ctx, tx, result.order)
    if result.fill_delta > 0:
        ctx.notify("fill", order.client_order_id, qty=result.fill_delta, filled_qty=result.order.filled_qty)
    return result.order


def _observation_entry(
    ctx: Context, order: Order, obs: OrderObserved, outcome: Outcome, error: Exception | None
) -> JournalEntry:
    view = obs.order
    payload: dict[str, Any] = {
        "source": obs.source.value,
        "event": obs.event,
        "status": view.status.value,
        "filled_qty": view.filled_qty,
        "broker_order_id": view.broker_order_id,
        "symbol": view.symbol,
        "outcome": outcome.value,
        "ts_event": obs.ts_event,
    }
    if obs.execution is not None:
        payload.update(
            execution_id=obs.execution.execution_id, qty=obs.execution.qty, price=obs.execution.price
        )
    if error is not None:
        payload["error"] = str(error)
    return ctx.entry("observed", order.client_order_id, **payload)


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
            "replacement_adopted",
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
    tx.journal(ctx.entry("leg_adopted", leg.client_order_id, group=primary.client_order_id))
    return replace(leg)


# -- operator intent (docs/architecture.md §2, invariant 8) ------------------------------------------------

HOLDS = "operator_holds"  # cursor: {parent client_order_id: the child a person canceled}
_PROTECTIVE = (OrderRole.TAKE_PROFIT, OrderRole.STOP_LOSS, OrderRole.OCO)


def read_holds(tx: Transaction) -> dict[ClientOrderId, str]:
    """Return the parents on operator hold (a person canceled their protection; ``ordersync protect``
    lifts the hold)."""
    raw = tx.get_cursor(HOLDS)
    loaded: dict[str, str] = json.loads(raw) if raw else {}
    return {ClientOrderId(k): v for k, v in loaded.items()}


def write_holds(tx: Transaction, holds: dict[ClientOrderId, str]) -> None:
    """Store the operator holds (read-modify-write inside one transaction)."""
    tx.set_cursor(HOLDS, json.dumps(holds, sort_keys=True))


class UnknownParent(LookupError):
    """``ordersync protect`` named an id that is no parent with a protection plan in this store."""


def lift_hold(store: Store, parent_id: ClientOrderId, now: datetime) -> str | None:
    """Lift a parent's operator hold (``ordersync protect``); return the child a person had canceled, or
    None when the parent was not on hold. The engine (this process or the running one, through the store)
    re-arms the parent on its next tick and resolves ``protection_cancelled_by_operator``.

    Raises:
        UnknownParent: no parent with a protection plan has that id.
    """
    with store.transaction() as tx:
        if tx.get_plan(parent_id) is None:
            order = tx.get_order(parent_id)
            what = "no such order" if order is None else "it has no protection plan (a child?)"
            raise UnknownParent(f"unknown parent id {parent_id}: {what}")
        holds = read_holds(tx)
        child = holds.pop(parent_id, None)
        if child is None:
            return None
        write_holds(tx, holds)
        tx.journal(JournalEntry(now, "operator_protect", parent_id, {"child": child}))
    return child


def _check_operator_cancel(ctx: Context, tx: Transaction, child: Order) -> None:
    """A protective group of ours that ended canceled without a cancel of ours is a person's deliberate act:
    the parent goes on hold (the release gate does not re-arm it) and one alert names it."""
    parent_id = child.parent_id
    if parent_id is None:
        return
    found = _protective_group(tx, child, parent_id)
    if found is None:
        return
    primary_id, group = found
    state = tx.get_plan(parent_id)
    if state is None or state.closing or state.done:
        return
    members = [c.client_order_id for c in group]
    if not operator_canceled(group, ctx.canceling) or _cancel_journaled(ctx, members):
        return
    holds = read_holds(tx)
    if parent_id in holds:
        return
    holds[parent_id] = primary_id
    write_holds(tx, holds)
    ctx.holds = holds
    tx.journal(ctx.entry("operator_hold", parent_id, child=primary_id))
    ctx.raise_alert(
        tx,
        "protection_cancelled_by_operator",
        parent_id,
        f"{child.symbol}: {primary_id} of {parent_id} was canceled by someone else; not re-armed "
        f"(run `ordersync protect {parent_id}` to protect it again)",
    )


def _protective_group(
    tx: Transaction, child: Order, parent_id: ClientOrderId
) -> tuple[str, list[Order]] | None:
    """The protective group ``child`` belongs to, named by its primary (None: not a protective group)."""
    if child.group_id is not None and child.group_id == parent_id:
        # a native parent's legs: a person's act only once its entry completely filled; legs that ended
        # with a part-filled entry went with it (the group rule), and the ordinary rule protects the fill
        entry = tx.get_order(parent_id)
        if entry is None or entry.filled_qty < entry.qty:
            return None
        return child.client_order_id, [c for c in tx.children_of(parent_id) if c.group_id == parent_id]
    primary_id = child.group_id or child.client_order_id
    group = [c for c in tx.children_of(parent_id) if primary_id in (c.client_order_id, c.group_id)]
    primary = next((c for c in group if c.client_order_id == primary_id), None)
    if primary is None or primary.role not in _PROTECTIVE:
        return None
    return primary_id, group


def _cancel_journaled(ctx: Context, coids: list[ClientOrderId]) -> bool:
    # a cancel asked for before a restart is not in memory: the journal has it (rare: read only when a
    # protective group ended canceled with no request of ours in memory)
    wanted = set(coids)
    after = 0
    while entries := ctx.store.read_journal(after_seq=after):
        if any(e.kind == "cancel_requested" and e.client_order_id in wanted for e in entries):
            return True
        after = entries[-1].seq or after
        if entries[-1].seq is None:
            return False
    return False
