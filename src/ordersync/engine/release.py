"""The release gate: runs the pure release rule for parents whose state changed, and executes it.

Per symbol, one pass at a time (a lock): read the broker's ``qty_available`` once, subtract what our
own unacknowledged children will reserve, then decide every dirty parent on that symbol against the
remainder, so two parents can never both spend the same available shares. Intents are written in the
same transaction as the decision and sent after it commits (outbox): a crash in between resumes them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

from ordersync.domain.attribution import Attribution, our_shares, reserved, unprotected
from ordersync.domain.errors import BrokerError
from ordersync.domain.events import Source
from ordersync.domain.ids import ClientOrderId, Symbol
from ordersync.domain.order import Order, OrderSide, OrderStatus
from ordersync.domain.protection import (
    WASH_TRADE_HOLD,
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
from ordersync.engine.retry import backoff_s
from ordersync.engine.sender import observed, start_cancel, start_send
from ordersync.ports import PlanState, Priority, Transaction, prioritized

UNLIMITED = Decimal(10) ** 12  # buy-to-cover children are not limited by a long position's availability


async def release(ctx: Context, parent_ids: Iterable[ClientOrderId]) -> None:
    """Decide and act for ``parent_ids``, grouped by symbol."""
    by_symbol: dict[Symbol, list[ClientOrderId]] = {}
    with ctx.store.transaction() as tx:
        for pid in parent_ids:
            parent = tx.get_order(pid)
            state = tx.get_plan(pid)
            if parent is not None and state is not None and not state.done:
                by_symbol.setdefault(parent.symbol, []).append(pid)
    # one symbol after the other, in this task: every wait (a position read, the request budget) is then
    # this task's own, which a virtual clock can see as asleep. Side by side in gathered sub-tasks, the
    # demo's clock saw the release task awake while its sub-tasks slept, and virtual time stopped.
    for symbol, pids in by_symbol.items():
        await _release_locked(ctx, symbol, pids)


async def _release_locked(ctx: Context, symbol: Symbol, pids: list[ClientOrderId]) -> None:
    async with ctx.symbol_lock(symbol):
        # the reads of a release that protects filled shares go first in the request budget; an exit
        # in progress (closing, replacing a plan) waits its turn like any other cancel or read
        urgency = Priority.PROTECT if _protects(ctx, pids) else Priority.NORMAL
        with prioritized(urgency):
            await _release_symbol(ctx, symbol, pids)


async def _release_symbol(ctx: Context, symbol: Symbol, parent_ids: list[ClientOrderId]) -> None:
    await _read_unseen_legs(ctx, parent_ids)
    available, position = (
        await _available(ctx, symbol, parent_ids) if _needs_more(ctx, parent_ids) else (None, None)
    )
    to_send: list[ClientOrderId] = []
    to_cancel: list[CancelChild] = []
    with ctx.store.transaction() as tx:
        ctx.holds = read_holds(tx)
        on_symbol = tx.open_orders(symbol)
        remaining = None if available is None else available - _unacknowledged(on_symbol)
        if remaining is not None and position is not None:  # never more than our own unprotected shares
            remaining = min(remaining, _ours_unprotected(ctx, tx, symbol, position, on_symbol))
        for pid in parent_ids:
            used, sends, cancels = _decide(ctx, tx, pid, remaining, on_symbol)
            if remaining is not None:
                remaining -= used
            to_send += sends
            to_cancel += cancels
    for coid in to_send:
        start_send(ctx, coid)
    for cancel in to_cancel:
        start_cancel(ctx, cancel.client_order_id, cancel.reason)


async def _read_unseen_legs(ctx: Context, parent_ids: list[ClientOrderId]) -> None:
    # an OCO that ended unfilled with a stop leg we never saw still counts as cover (it may be live):
    # read it with its legs now, so the rule can decide on facts rather than wait for a reconciliation
    with ctx.store.transaction() as tx:
        children = tx.children_of_many(parent_ids)
    unseen = [
        c.broker_order_id
        for kids in children.values()
        for c in kids
        if c.broker_order_id and unread_legs(c, [k for k in kids if k.group_id == c.client_order_id])
    ]
    for broker_id in unseen:
        try:
            view = await ctx.broker.get_order(broker_id, nested=True)
        except BrokerError:
            continue
        if view is not None:
            with ctx.store.transaction() as tx:
                apply_observation(ctx, tx, observed(ctx, view, Source.RECONCILE))


def _protects(ctx: Context, parent_ids: list[ClientOrderId]) -> bool:
    """True when some parent (not being closed) has filled shares its children do not cover yet."""
    with ctx.store.transaction() as tx:
        for pid in parent_ids:
            parent, state = tx.get_order(pid), tx.get_plan(pid)
            if parent is None or state is None or state.closing:
                continue
            if target_qty(parent, state.plan) > coverage(tx.children_of(pid), parent):
                return True
    return False


def _needs_more(ctx: Context, parent_ids: list[ClientOrderId]) -> bool:
    # only read the broker's position when some parent may release (or, closing, sell) shares: not for one
    # backing off after a refusal (the tick marks it dirty every second; the read would cost ~60 a minute)
    now = ctx.clock.now()
    with ctx.store.transaction() as tx:
        for pid in parent_ids:
            parent, state = tx.get_order(pid), tx.get_plan(pid)
            if parent is None or state is None:
                continue
            if state.next_release_at is not None and now < state.next_release_at and not state.closing:
                continue
            if state.closing:
                return True
            children = tx.children_of(pid)
            if native.awaiting_legs(parent, children):
                continue  # nothing is released beside held legs: no read is needed to decide that
            short = target_qty(parent, state.plan) - coverage(children, parent)
            if short >= 1 or (short > 0 and unreleasable_fraction(state.plan, children) is None):
                return True  # (a fraction that can never be released costs no position read per tick)
    return False


async def _available(
    ctx: Context, symbol: Symbol, parent_ids: list[ClientOrderId]
) -> tuple[Decimal | None, Decimal | None]:
    """The broker's ``qty_available`` and position for ``symbol`` (None when unknown or not limiting)."""
    with ctx.store.transaction() as tx:
        parents = [tx.get_order(pid) for pid in parent_ids]
    if all(p is not None and p.side is OrderSide.SELL for p in parents):
        return UNLIMITED, None
    try:
        position = await ctx.broker.position(symbol)
    except BrokerError:
        return None, None  # unknown: the rule holds the release until the broker can be read
    if position is None:
        return Decimal(0), Decimal(0)
    return position.qty_available, position.qty


def _ours_unprotected(
    ctx: Context, tx: Transaction, symbol: Symbol, position: Decimal, on_symbol: list[Order]
) -> Decimal:
    # the attribution ledger (domain/attribution.py): our book, of it what the account still holds, less
    # what our open exits already reserve; qty_available may include others' unreserved shares
    if ctx.ours is None:
        ctx.ours = our_shares(tx.all_orders())
    ledger = Attribution(symbol, ctx.ours.get(symbol, Decimal(0)), position)
    return unprotected(ledger, reserved(on_symbol))


def _unacknowledged(on_symbol: list[Order]) -> Decimal:
    # our children the broker may not count yet in held_for_orders: reserve them before spending more
    local = (OrderStatus.INTENT, OrderStatus.SUBMITTING)
    return sum(
        (o.qty for o in on_symbol if o.is_child and o.group_id is None and o.status in local), Decimal(0)
    )


def _decide(
    ctx: Context, tx: Transaction, pid: ClientOrderId, available: Decimal | None, on_symbol: list[Order]
) -> tuple[Decimal, list[ClientOrderId], list[CancelChild]]:
    parent, state = tx.get_order(pid), tx.get_plan(pid)
    if parent is None or state is None or state.done:
        return Decimal(0), [], []
    if pid in ctx.holds and not state.closing:
        return Decimal(0), [], []  # a person canceled its protection: respected until `ordersync protect`
    now = ctx.clock.now()
    if state.next_release_at is not None and now < state.next_release_at:
        return Decimal(0), [], []  # backing off after a refusal (invariant 6)
    children = tx.children_of(pid)
    if state.closing:
        decision = exit_decision(parent, children, available, now)
    else:
        opposing = [o for o in on_symbol if o.side is parent.side and o.client_order_id != pid]
        decision = release_decision(parent, state.plan, children, available, now, opposing, state.replaced_at)
        if _wash_bound_reached(ctx, pid, decision, now):
            decision = release_decision(
                parent, state.plan, children, available, now, opposing, state.replaced_at, cut_blockers=True
            )
        if native.bound_reached(ctx, pid, decision, now):
            decision = release_decision(
                parent, state.plan, children, available, now, opposing, state.replaced_at, native_cut=True
            )
    native.read_unseen_legs(ctx, parent, decision)
    sends = _record(ctx, tx, parent, decision)
    cancels = [c for c in decision.commands if isinstance(c, CancelChild)]
    _update_plan(ctx, tx, state, parent, children, decision, now)
    return decision.qty_used, sends, cancels


def _wash_bound_reached(ctx: Context, pid: ClientOrderId, decision: ReleaseDecision, now: datetime) -> bool:
    """True once a lone exit of ``pid`` has been held by the wash-trade rule for ``wash_trade_bound_s``.

    The wait is kept in memory: after a restart it starts again (the bound then counts from the restart).
    """
    if not any(h.reason == WASH_TRADE_HOLD for h in decision.holds):
        ctx.wash_waits.pop(pid, None)
        return False
    since = ctx.wash_waits.setdefault(pid, now)
    return (now - since).total_seconds() >= ctx.options.wash_trade_bound_s


def _record(ctx: Context, tx: Transaction, parent: Order, decision: ReleaseDecision) -> list[ClientOrderId]:
    sends: list[ClientOrderId] = []
    for command in decision.commands:
        if isinstance(command, SubmitChild):
            child = command.order
            tx.add_order(child)
            tx.journal(
                ctx.entry(
                    "child_released",
                    child.client_order_id,
                    parent=parent.client_order_id,
                    role=child.role.value,
                    qty=child.qty,
                    limit_price=child.limit_price,
                    stop_price=child.stop_price,
                    target=decision.target,
                    covered=decision.covered,
                )
            )
            ctx.notify("child_released", child.client_order_id, parent=parent.client_order_id, qty=child.qty)
            sends.append(child.client_order_id)
        else:
            tx.journal(ctx.entry("child_cancel", command.client_order_id, reason=command.reason))
    for hold in decision.holds:
        tx.journal(ctx.entry("release_held", parent.client_order_id, qty=hold.qty, reason=hold.reason))
    return sends


def _update_plan(
    ctx: Context,
    tx: Transaction,
    state: PlanState,
    parent: Order,
    children: list[Order],
    decision: ReleaseDecision,
    now: datetime,
) -> None:
    settled = decision.covered == decision.target and not decision.commands and not decision.holds
    done = parent.is_terminal and settled and all(c.is_terminal for c in children)
    if state.closing:  # closed once nothing works and nothing is left to sell
        done = (
            parent.is_terminal
            and not decision.commands
            and not decision.holds
            and all(c.is_terminal for c in children)
        )
    new_state = state
    if settled and state.release_failures:
        new_state = replace(new_state, release_failures=0, next_release_at=None)
    if any("qty_available" in h.reason for h in decision.holds):
        failures, o = state.release_failures + 1, ctx.options
        # a position read that failed (a 5xx) is weather: retried as soon as a lookup, not a refusal's pace
        unread = any(h.reason.endswith("qty_available is unknown") for h in decision.holds)
        base, cap = (
            (o.lookup_backoff_base_s, o.lookup_backoff_cap_s)
            if unread
            else (o.release_backoff_base_s, o.release_backoff_cap_s)
        )
        wait = backoff_s(failures, base, cap)
        new_state = replace(
            new_state, release_failures=failures, next_release_at=now + timedelta(seconds=wait)
        )
    if state.replaced_at is not None and not any(
        c.group_id is None and c.is_open and c.created_at < state.replaced_at for c in children
    ):
        new_state = replace(new_state, replaced_at=None)  # every child of the old plan has ended
    if done:
        new_state = replace(new_state, done=True)
    if new_state != state:
        tx.save_plan(new_state)
