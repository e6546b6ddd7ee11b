"""The release gate: runs the pure release rule for parents whose state changed, and executes it.

One pass is one transaction (docs/architecture.md §4): it reads the dirty parents and their plans once,
their children in one query and each symbol's open orders once by index, decides every parent of a symbol
against one amount of available shares (so two parents never spend the same shares), writes each new
child already as ``submitting`` with its ``child_released`` and ``submit_sent`` journal entries, and
commits; only then are the POSTs sent (outbox: a crash in between leaves a submit of unknown outcome that
``settle`` looks up by the same client_order_id). The available shares come from the stream's own
``position_qty`` when that provably describes the account (``positions.py``); a symbol whose decision
needs the broker's word (its position, or the legs of an OCO that ended unseen) is set aside, read, and
decided again in a transaction of its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal

from ordersync.domain import lifecycle
from ordersync.domain.attribution import Attribution, our_shares, reserved, unprotected
from ordersync.domain.errors import BrokerError
from ordersync.domain.events import Source
from ordersync.domain.ids import BrokerOrderId, ClientOrderId, Symbol
from ordersync.domain.kinds import HoldReason, JournalKind, NotificationKind
from ordersync.domain.order import Order, OrderSide, OrderStatus
from ordersync.domain.protection import (
    CancelChild,
    ReleaseDecision,
    SubmitChild,
    coverage,
    exit_decision,
    release_decision,
    target_qty,
    unread_legs,
    unreleasable_fraction,
)
from ordersync.engine import native
from ordersync.engine.context import Context, apply_observation, read_holds
from ordersync.engine.positions import PositionEvidence, read_position
from ordersync.engine.retry import short_shares_backoff_s
from ordersync.engine.sender import observed, post_submitting, start_cancel, start_send, submit_sent
from ordersync.ports import PlanState, Priority, Transaction, prioritized

UNLIMITED = Decimal(10) ** 12  # buy-to-cover children are not limited by a long position's availability


@dataclass(frozen=True, slots=True)
class _Parent:
    order: Order
    state: PlanState
    children: list[Order]  # read once per pass for all parents (children_of_many)


@dataclass(slots=True)
class _Reads:
    """What the broker said for one set-aside symbol: its OCO legs were read, its position (if read)."""

    legs_read: bool = False
    position_read: bool = False
    available: Decimal | None = None
    position: Decimal | None = None


@dataclass(slots=True)
class _SetAside:
    """A symbol the pass could not decide without the broker: what to read first."""

    symbol: Symbol
    parent_ids: list[ClientOrderId]
    urgency: Priority
    legs: list[BrokerOrderId] = field(default_factory=list)
    reads: _Reads = field(default_factory=_Reads)


async def release(
    ctx: Context,
    parent_ids: Iterable[ClientOrderId],
    symbols: Iterable[Symbol] = (),
    positions: PositionEvidence | None = None,
) -> None:
    """Decide and act for ``parent_ids`` and every active plan on ``symbols``: one transaction, then the
    rare reads some symbol needs (each followed by that symbol's own transaction)."""
    set_aside = _pass(ctx, list(parent_ids), set(symbols), positions, {})
    # one symbol after the other, in this task: every wait (a position read, the request budget) is then
    # this task's own, which a virtual clock can see as asleep
    for first in set_aside:
        work: _SetAside | None = first
        while work is not None:
            with prioritized(work.urgency):
                if work.legs and not work.reads.legs_read:
                    await _read_legs(ctx, work.legs)
                    work.reads.legs_read = True
                else:
                    found = await read_position(ctx.broker, ctx.clock, work.symbol)
                    work.reads.available, work.reads.position = found
                    work.reads.position_read = True
            again = _pass(ctx, work.parent_ids, set(), positions, {work.symbol: work.reads})
            work = again[0] if again and not again[0].reads.position_read else None


def _pass(
    ctx: Context,
    parent_ids: list[ClientOrderId],
    symbols: set[Symbol],
    positions: PositionEvidence | None,
    reads: dict[Symbol, _Reads],
) -> list[_SetAside]:
    set_aside: list[_SetAside] = []
    to_post: list[Order] = []
    to_send: list[ClientOrderId] = []
    to_cancel: list[CancelChild] = []
    may_send: bool | None = None
    with ctx.store.transaction() as tx:
        by_symbol = _parents_by_symbol(tx, parent_ids, symbols)
        ctx.holds = read_holds(tx)
        for symbol, parents in by_symbol.items():
            outcome = _symbol(ctx, tx, symbol, parents, positions, reads.get(symbol, _Reads()))
            if isinstance(outcome, _SetAside):
                set_aside.append(outcome)
                continue
            if may_send is None and any(isinstance(c, SubmitChild) for _, d in outcome for c in d.commands):
                may_send = ctx.may_write()  # the lease, right before the outbox write (fencing)
            for parent, decision in outcome:
                native.read_unseen_legs(ctx, parent.order, decision)
                sends = _record(ctx, tx, parent.order, decision, bool(may_send))
                to_post += [o for o in sends if o.status is OrderStatus.SUBMITTING]
                to_send += [o.client_order_id for o in sends if o.status is OrderStatus.INTENT]
                to_cancel += [c for c in decision.commands if isinstance(c, CancelChild)]
                _update_plan(ctx, tx, parent, decision, ctx.clock.now())
    for order in to_post:
        post_submitting(ctx, order)
    for coid in to_send:
        start_send(ctx, coid)  # not ours to send now (the lease): it stays an intent for whoever holds it
    for cancel in to_cancel:
        start_cancel(ctx, cancel.client_order_id, cancel.reason)
    return set_aside


def _parents_by_symbol(
    tx: Transaction, parent_ids: list[ClientOrderId], symbols: set[Symbol]
) -> dict[Symbol, list[_Parent]]:
    # a child that ended marks its symbol: every active plan there may move (holds on that symbol)
    asked = set(parent_ids)
    states = {pid: tx.get_plan(pid) for pid in asked}
    if symbols:
        states |= {s.parent_id: s for s in tx.active_plans() if s.parent_id not in states}
    orders = tx.orders_by_id(list(states))
    live = [
        pid
        for pid, state in states.items()
        if state is not None
        and not state.done
        and pid in orders
        and (pid in asked or orders[pid].symbol in symbols)
    ]
    children = tx.children_of_many(live)
    by_symbol: dict[Symbol, list[_Parent]] = {}
    for pid in sorted(live):
        state = states[pid]
        assert state is not None
        by_symbol.setdefault(orders[pid].symbol, []).append(_Parent(orders[pid], state, children[pid]))
    return by_symbol


def _symbol(
    ctx: Context,
    tx: Transaction,
    symbol: Symbol,
    parents: list[_Parent],
    positions: PositionEvidence | None,
    reads: _Reads,
) -> list[tuple[_Parent, ReleaseDecision]] | _SetAside:
    """Decide every parent on ``symbol`` against one amount of available shares, writing nothing."""
    pids = [p.order.client_order_id for p in parents]
    urgency = Priority.PROTECT if any(_protects(p) for p in parents) else Priority.NORMAL
    unseen = [] if reads.legs_read else _unseen_legs(parents)
    if unseen:
        return _SetAside(symbol, pids, urgency, unseen, reads)
    now = ctx.clock.now()
    on_symbol = tx.open_orders(symbol)
    remaining: Decimal | None = None
    position: Decimal | None = None
    from_stream = False
    if not _needs_more(parents, now):
        pass  # no parent may take shares: nothing to size, no read
    elif all(p.order.side is OrderSide.SELL for p in parents):
        remaining = UNLIMITED
    elif reads.position_read:
        position = reads.position
        remaining = None if reads.available is None else reads.available - _unacknowledged(on_symbol)
    else:
        position = _stream_position(ctx, symbol, parents, positions, now)
        if position is None:
            return _SetAside(symbol, pids, urgency, reads=reads)
        from_stream = True
        remaining = position - _our_sells_hold(on_symbol)  # every share is ours: only our sells hold any
    if remaining is not None and position is not None:  # never more than our own unprotected shares
        remaining = min(remaining, _ours_unprotected(ctx, tx, symbol, position, on_symbol))
    decided: list[tuple[_Parent, ReleaseDecision]] = []
    for parent in parents:
        decision = _decide(ctx, parent, remaining, on_symbol, now)
        if decision is None:
            continue
        if remaining is not None:
            remaining -= decision.qty_used
        decided.append((parent, decision))
    if from_stream and any(h.kind.waits_for_shares for _, d in decided for h in d.holds):
        return _SetAside(symbol, pids, urgency, reads=reads)  # only the broker's read may say "no"
    return decided


def _stream_position(
    ctx: Context,
    symbol: Symbol,
    parents: list[_Parent],
    positions: PositionEvidence | None,
    now: datetime,
) -> Decimal | None:
    # a refusal since the last settled release (the plan backs off) or an exit in progress: the broker's read
    if positions is None or any(p.state.release_failures or p.state.closing for p in parents):
        return None
    return positions.usable(symbol, ctx.ours, now)


def _unseen_legs(parents: list[_Parent]) -> list[BrokerOrderId]:
    # an OCO that ended unfilled with a stop leg we never saw still counts as cover (it may be live):
    # read it with its legs, so the rule decides on facts rather than wait for a reconciliation
    return [
        c.broker_order_id
        for p in parents
        for c in p.children
        if c.broker_order_id and unread_legs(c, [k for k in p.children if k.group_id == c.client_order_id])
    ]


async def _read_legs(ctx: Context, broker_ids: list[BrokerOrderId]) -> None:
    for broker_id in broker_ids:
        try:
            view = await ctx.broker.get_order(broker_id, nested=True)
        except BrokerError:
            continue
        if view is not None:
            with ctx.store.transaction() as tx:
                apply_observation(ctx, tx, observed(ctx, view, Source.RECONCILE))


def _protects(parent: _Parent) -> bool:
    """True when the parent (not being closed) has filled shares its children do not cover yet."""
    if parent.state.closing:
        return False
    return target_qty(parent.order, parent.state.plan) > coverage(parent.children, parent.order)


def _needs_more(parents: list[_Parent], now: datetime) -> bool:
    # only size against the position when some parent may release (or, closing, sell) shares: not for
    # one backing off after a refusal (the tick marks it dirty every second)
    for p in parents:
        state = p.state
        if state.next_release_at is not None and now < state.next_release_at and not state.closing:
            continue
        if state.closing:
            return True
        if native.awaiting_legs(p.order, p.children):
            continue  # nothing is released beside held legs: no read is needed to decide that
        short = target_qty(p.order, state.plan) - coverage(p.children, p.order)
        if short >= 1 or (short > 0 and unreleasable_fraction(state.plan, p.children) is None):
            return True  # (a fraction that can never be released costs no position read per tick)
    return False


def _ours_unprotected(
    ctx: Context, tx: Transaction, symbol: Symbol, position: Decimal, on_symbol: list[Order]
) -> Decimal:
    # the attribution ledger (domain/attribution.py): our book, of it what the account still holds, less
    # what our open exits already reserve; qty_available may include others' unreserved shares
    if ctx.ours is None:
        ctx.ours = our_shares(tx.all_orders())
    ledger = Attribution(symbol, ctx.ours.get(symbol, Decimal(0)), position)
    return unprotected(ledger, reserved(on_symbol))


def _our_sells_hold(on_symbol: list[Order]) -> Decimal:
    # what our open sells hold of a long position: our exits (an OCO once) and any sell entry of ours
    entries = sum(
        (o.leaves_qty for o in on_symbol if not o.is_child and o.side is OrderSide.SELL), Decimal(0)
    )
    return reserved(on_symbol) + entries


def _unacknowledged(on_symbol: list[Order]) -> Decimal:
    # our children the broker may not count yet in held_for_orders: reserve them before spending more
    local = (OrderStatus.INTENT, OrderStatus.SUBMITTING)
    return sum(
        (o.qty for o in on_symbol if o.is_child and o.group_id is None and o.status in local), Decimal(0)
    )


def _decide(
    ctx: Context, parent: _Parent, available: Decimal | None, on_symbol: list[Order], now: datetime
) -> ReleaseDecision | None:
    order, state, children = parent.order, parent.state, parent.children
    pid = order.client_order_id
    if pid in ctx.holds and not state.closing:
        return None  # a person canceled its protection: respected until `ordersync protect`
    if state.next_release_at is not None and now < state.next_release_at:
        return None  # backing off after a refusal (invariant 6)
    if state.closing:
        return exit_decision(order, children, available, now)
    opposing = [o for o in on_symbol if o.side is order.side and o.client_order_id != pid]
    decision = release_decision(order, state.plan, children, available, now, opposing, state.replaced_at)
    if _wash_bound_reached(ctx, pid, decision, now):
        decision = release_decision(
            order, state.plan, children, available, now, opposing, state.replaced_at, cut_blockers=True
        )
    if native.bound_reached(ctx, pid, decision, now):
        decision = release_decision(
            order, state.plan, children, available, now, opposing, state.replaced_at, native_cut=True
        )
    return decision


def _wash_bound_reached(ctx: Context, pid: ClientOrderId, decision: ReleaseDecision, now: datetime) -> bool:
    """True once a lone exit of ``pid`` has been held by the wash-trade rule for ``wash_trade_bound_s``.

    The wait is kept in memory: after a restart it starts again (the bound then counts from the restart).
    """
    if not any(h.kind is HoldReason.WASH_TRADE for h in decision.holds):
        ctx.wash_waits.pop(pid, None)
        return False
    since = ctx.wash_waits.setdefault(pid, now)
    return (now - since).total_seconds() >= ctx.options.wash_trade_bound_s


def _record(
    ctx: Context, tx: Transaction, parent: Order, decision: ReleaseDecision, may_send: bool
) -> list[Order]:
    """Write the decision: each new child as ``submitting`` with its ``submit_sent`` (as an intent when
    this instance may not send now), the cancels and holds as journal entries."""
    sends: list[Order] = []
    pid = parent.client_order_id
    for command in decision.commands:
        if isinstance(command, SubmitChild):
            child = lifecycle.mark_submitting(command.order) if may_send else command.order
            tx.add_order(child)
            tx.journal(
                ctx.entry(
                    JournalKind.CHILD_RELEASED,
                    child.client_order_id,
                    parent=pid,
                    role=child.role.value,
                    qty=child.qty,
                    limit_price=child.limit_price,
                    stop_price=child.stop_price,
                    target=decision.target,
                    covered=decision.covered,
                )
            )
            if may_send:
                tx.journal(submit_sent(ctx, child))
            ctx.notify(NotificationKind.CHILD_RELEASED, child.client_order_id, parent=pid, qty=child.qty)
            sends.append(child)
        else:
            tx.journal(ctx.entry(JournalKind.CHILD_CANCEL, command.client_order_id, reason=command.reason))
    for hold in decision.holds:
        tx.journal(ctx.entry(JournalKind.RELEASE_HELD, pid, qty=hold.qty, reason=hold.reason))
    return sends


def _update_plan(
    ctx: Context, tx: Transaction, parent: _Parent, decision: ReleaseDecision, now: datetime
) -> None:
    state, order, children = parent.state, parent.order, parent.children
    settled = decision.covered == decision.target and not decision.commands and not decision.holds
    done = order.is_terminal and settled and all(c.is_terminal for c in children)
    if state.closing:  # closed once nothing works and nothing is left to sell
        done = order.is_terminal and not decision.commands and not decision.holds
        done = done and all(c.is_terminal for c in children)
    new_state = state
    if settled and state.release_failures:
        new_state = replace(new_state, release_failures=0, next_release_at=None)
    wait = short_shares_backoff_s(decision.holds, state.release_failures + 1, ctx.options)
    if wait is not None:
        new_state = replace(
            new_state,
            release_failures=state.release_failures + 1,
            next_release_at=now + timedelta(seconds=wait),
        )
    if state.replaced_at is not None and not any(
        c.group_id is None and c.is_open and c.created_at < state.replaced_at for c in children
    ):
        new_state = replace(new_state, replaced_at=None)  # every child of the old plan has ended
    if done:
        new_state = replace(new_state, done=True)
    if new_state != state:
        tx.save_plan(new_state)
