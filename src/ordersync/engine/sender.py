"""Sending orders exactly once, settling ambiguous submits, and cancelling (docs/architecture.md §2,
invariant 3, 6).

The client_order_id is journaled (status ``submitting``) before the POST: by ``_send`` for an intent (a
parent, a resend), or by the release gate in the transaction that decides a protective child
(``post_submitting`` then only sends it). Any answer that leaves the
outcome unknown (timeout, 5xx, lost response, 422 "must be unique" on a retry) keeps the order
*unknown* — never *failed* — until a lookup by that id settles it: found -> adopted; absent twice ->
back to an intent and resent with the *same* id, so a late arrival of the first POST can only produce a
422, never a second order. A 40310000 refusal reads ``related_orders`` and adopts or reconciles whoever
holds the shares; its retry goes through the release gate's backoff, never a hot loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

from ordersync.domain import lifecycle
from ordersync.domain.errors import (
    BrokerError,
    BrokerUnavailable,
    DuplicateClientOrderId,
    InsufficientQty,
    RateLimited,
)
from ordersync.domain.events import BrokerOrderView, OrderObserved, Source
from ordersync.domain.exits import AttachedExits
from ordersync.domain.ids import BrokerOrderId, ClientOrderId
from ordersync.domain.kinds import AlertKind, JournalKind, NotificationKind
from ordersync.domain.order import Order, OrderStatus
from ordersync.engine import native
from ordersync.engine.context import Context, apply_observation, log
from ordersync.engine.retry import backoff_s
from ordersync.ports import REQUEST_PRIORITY, JournalEntry, Priority, Transaction


def _urgency(order: Order | None) -> Priority:
    """A child protects filled shares: its POST and its lookups go before everything else."""
    return Priority.PROTECT if order is not None and order.is_child else Priority.NORMAL


def observed(ctx: Context, view: BrokerOrderView, source: Source) -> OrderObserved:
    """Wrap a broker read as an observation."""
    return OrderObserved(view, source, view.updated_at, ctx.clock.now())


def start_send(ctx: Context, coid: ClientOrderId) -> None:
    """Send the intent ``coid`` in the background (at most one send per order at a time)."""
    if coid not in ctx.sending:
        ctx.sending.add(coid)
        ctx.spawn(_send(ctx, coid), f"send:{coid}")


def submit_sent(ctx: Context, order: Order, exits: AttachedExits | None = None) -> JournalEntry:
    """The ``submit_sent`` entry journaled with an order's move to ``submitting``, before its POST."""
    group = {} if exits is None else {"order_class": exits.order_class}
    coid = order.client_order_id
    return ctx.entry(
        JournalKind.SUBMIT_SENT, coid, role=order.role.value, symbol=order.symbol, qty=order.qty, **group
    )


def post_submitting(ctx: Context, order: Order) -> None:
    """POST ``order`` in the background: the release gate wrote it ``submitting`` with its ``submit_sent``
    in the transaction that decided it, so nothing is written before the request."""
    coid = order.client_order_id
    ctx.sending.add(coid)
    ctx.spawn(_post_then_done(ctx, order), f"send:{coid}")


async def _post_then_done(ctx: Context, order: Order) -> None:
    try:
        await _post(ctx, order, None)
    finally:
        ctx.sending.discard(order.client_order_id)


async def _send(ctx: Context, coid: ClientOrderId) -> None:
    try:
        if not ctx.may_write():
            return  # the intent stays journaled; the instance holding the lease sends it
        with ctx.store.transaction() as tx:
            order = tx.get_order(coid)
            if order is None or order.status is not OrderStatus.INTENT:
                return
            order = lifecycle.mark_submitting(order)
            tx.save_order(order)
            exits = native.prepare(ctx, tx, order)
            tx.journal(submit_sent(ctx, order, exits))
        await _post(ctx, order, exits)
    finally:
        ctx.sending.discard(coid)


async def _post(ctx: Context, order: Order, exits: AttachedExits | None) -> None:
    """The POST of an order already journaled ``submitting``, and its answer applied (one transaction)."""
    coid = order.client_order_id
    REQUEST_PRIORITY.set(_urgency(order))  # this task's own context
    ctx.metrics.submits.labels(order.role.value).inc()
    try:
        if exits is None:
            view = await ctx.broker.submit(order)
        else:  # a native parent: one POST carries its exits (docs/comparison.md §8)
            view = await ctx.broker.submit_group(order, exits)
    except BrokerError as e:
        ctx.sending.discard(coid)  # the POST is over (its outcome may be unknown): settling may start
        await _on_submit_error(ctx, order, e)
        return
    with ctx.store.transaction() as tx:
        apply_observation(ctx, tx, observed(ctx, view, Source.SUBMIT))
        tx.journal(
            ctx.entry(
                JournalKind.SUBMIT_ACCEPTED,
                coid,
                broker_order_id=view.broker_order_id,
                status=view.status,
                symbol=order.symbol,
                side=order.side.value,
                qty=order.qty,
            )
        )
    ctx.notify(NotificationKind.ACCEPTED, coid, broker_order_id=view.broker_order_id, role=order.role.value)


async def _on_submit_error(ctx: Context, order: Order, error: BrokerError) -> None:
    coid = order.client_order_id
    kind = type(error).__name__
    log.info("engine.submit_error", client_order_id=coid, error=kind, detail=str(error)[:200])
    if isinstance(error, RateLimited):  # refused before processing: nothing exists at the broker
        with ctx.store.transaction() as tx:
            _settle_local(tx, coid, lifecycle.settle_not_found)
            tx.journal(ctx.entry(JournalKind.SUBMIT_RATE_LIMITED, coid, retry_after_s=error.retry_after_s))
        # the broker adapter's budget already holds every request until the 429's window allows one
        # (X-Ratelimit-Reset and the remaining count): resend once that wait is over, never a fixed minute
        ctx.spawn(_resend_later(ctx, coid, error.retry_after_s or 0.0), f"resend:{coid}")
        return
    if isinstance(error, BrokerUnavailable | DuplicateClientOrderId):
        with ctx.store.transaction() as tx:
            tx.journal(ctx.entry(JournalKind.SUBMIT_UNKNOWN, coid, error=kind, detail=str(error)[:300]))
        start_settle(ctx, coid)
        return
    ctx.metrics.rejections.labels(kind).inc()
    with ctx.store.transaction() as tx:
        _settle_local(tx, coid, lifecycle.mark_refused)
        tx.journal(
            ctx.entry(
                JournalKind.SUBMIT_REFUSED, coid, error=kind, status_code=error.status_code, body=error.body
            )
        )
        if order.parent_id is not None:
            _back_off_plan(ctx, tx, order.parent_id)
        if not isinstance(error, InsufficientQty):
            ctx.raise_alert(
                tx, AlertKind.ORDER_REFUSED, coid, f"{coid} refused by the broker: {str(error)[:200]}"
            )
    ctx.notify(NotificationKind.REFUSED, coid, error=kind, body=error.body)
    if isinstance(error, InsufficientQty):
        ctx.spawn(_resolve_holders(ctx, order, error.related_orders), f"holders:{coid}")
    if order.parent_id is not None:
        ctx.mark_dirty(order.parent_id)


def _settle_local(tx: Transaction, coid: ClientOrderId, step: Callable[[Order], Order]) -> None:
    order = tx.get_order(coid)
    if order is not None and order.status is OrderStatus.SUBMITTING:
        tx.save_order(step(order))


def _back_off_plan(ctx: Context, tx: Transaction, parent_id: ClientOrderId) -> None:
    state = tx.get_plan(parent_id)
    if state is None:
        return
    failures = state.release_failures + 1
    wait = backoff_s(failures, ctx.options.release_backoff_base_s, ctx.options.release_backoff_cap_s)
    next_at = ctx.clock.now() + timedelta(seconds=wait)
    tx.save_plan(replace(state, release_failures=failures, next_release_at=next_at))
    tx.journal(ctx.entry(JournalKind.RELEASE_BACKOFF, parent_id, failures=failures, wait_s=wait))


async def _resend_later(ctx: Context, coid: ClientOrderId, delay_s: float) -> None:
    await ctx.clock.sleep(delay_s)
    start_send(ctx, coid)


def start_settle(ctx: Context, coid: ClientOrderId) -> None:
    """Settle an unknown submit in the background; never while its POST is still on the wire (a lookup
    would miss an order that is about to land) and never twice at once."""
    if coid in ctx.sending or coid in ctx.settling:
        return
    ctx.settling.add(coid)
    ctx.spawn(_settle_once(ctx, coid), f"settle:{coid}")


async def _settle_once(ctx: Context, coid: ClientOrderId) -> None:
    # the mark is cleared whatever fails, this first read included (a fenced transaction while the lease
    # is unconfirmed): a mark left behind kept the order from ever being settled again (stuck submitting)
    try:
        with ctx.store.transaction() as tx:
            REQUEST_PRIORITY.set(_urgency(tx.get_order(coid)))  # this task's own context
        await settle(ctx, coid)
    finally:
        ctx.settling.discard(coid)


async def settle(ctx: Context, coid: ClientOrderId) -> None:
    """Settle an unknown submit by looking ``coid`` up until the broker's answer is certain."""
    misses = 0
    attempt = 0
    while True:
        attempt += 1
        try:
            view = await ctx.broker.get_by_client_id(coid)
        except BrokerError:
            await ctx.clock.sleep(
                backoff_s(attempt, ctx.options.lookup_backoff_base_s, ctx.options.lookup_backoff_cap_s)
            )
            continue
        if view is not None:
            with ctx.store.transaction() as tx:
                apply_observation(ctx, tx, observed(ctx, view, Source.LOOKUP))
                tx.journal(
                    ctx.entry(
                        JournalKind.SUBMIT_SETTLED, coid, found=True, broker_order_id=view.broker_order_id
                    )
                )
            return
        misses += 1
        if misses >= ctx.options.lookups_before_not_found:
            with ctx.store.transaction() as tx:
                _settle_local(tx, coid, lifecycle.settle_not_found)
                tx.journal(ctx.entry(JournalKind.SUBMIT_SETTLED, coid, found=False))
            start_send(ctx, coid)  # same client_order_id: a late first POST can only make this a 422
            return
        await ctx.clock.sleep(
            backoff_s(attempt, ctx.options.lookup_backoff_base_s, ctx.options.lookup_backoff_cap_s)
        )


async def _resolve_holders(ctx: Context, refused: Order, related: list[str]) -> None:
    REQUEST_PRIORITY.set(Priority.NORMAL)
    # 40310000 names the orders holding the shares: adopt ours (we may have lost track of one), flag others
    for broker_id in related:
        try:
            view = await ctx.broker.get_order(BrokerOrderId(broker_id))
        except BrokerError:
            continue
        with ctx.store.transaction() as tx:
            if (
                view is not None
                and apply_observation(ctx, tx, observed(ctx, view, Source.RECONCILE)) is not None
            ):
                continue
            if view is None:
                continue  # the holder is gone: it holds nothing now
            known = tx.get_order(view.client_order_id) or tx.find_by_broker_id(view.broker_order_id)
            if known is None and not view.status.is_terminal:
                detail = (
                    f"{refused.symbol}: {broker_id} (not ours) holds shares {refused.client_order_id} needs"
                )
                ctx.raise_alert(tx, AlertKind.FOREIGN_ORDER_HOLDS_SHARES, broker_id, detail)
    if refused.parent_id is not None:
        ctx.mark_dirty(refused.parent_id)


CANCEL_RESEND_S = 30.0  # an accepted cancel with no confirmation after this long is asked again


def start_cancel(ctx: Context, coid: ClientOrderId, reason: str) -> None:
    """Cancel a child: drop an unsent intent locally, or ask the broker (its confirmation comes later).

    A request the broker did not accept (5xx, 429, timeout) is retried with backoff until it is accepted
    or the order has ended; an accepted one is asked again if no confirmation came within 30 s.
    """
    now = ctx.clock.now()
    asked = ctx.canceling.get(coid)
    if asked is not None and (now - asked).total_seconds() < CANCEL_RESEND_S:
        return
    with ctx.store.transaction() as tx:
        order = tx.get_order(coid)
        if (
            order is None
            or order.is_terminal
            or order.is_inflight
            or order.status is OrderStatus.PENDING_CANCEL
        ):
            return
        if order.status is OrderStatus.INTENT:
            tx.save_order(lifecycle.cancel_intent(order))
            tx.journal(ctx.entry(JournalKind.INTENT_CANCELED, coid, reason=reason))
            return
        tx.journal(ctx.entry(JournalKind.CANCEL_REQUESTED, coid, reason=reason))
    ctx.canceling[coid] = now
    assert order.broker_order_id is not None
    ctx.spawn(_cancel(ctx, coid, order.broker_order_id), f"cancel:{coid}")


async def _cancel(ctx: Context, coid: ClientOrderId, broker_id: BrokerOrderId) -> None:
    REQUEST_PRIORITY.set(Priority.NORMAL)
    attempt = 0
    while ctx.may_write():
        ctx.canceling[coid] = ctx.clock.now()  # no second request while this one is being retried
        try:
            await ctx.broker.cancel(broker_id)
            return  # a request, not a confirmation: the canceled event (or a read) settles it
        except BrokerError:
            pass  # 422 no longer cancelable, 404, 5xx, 429, timeout: read it to learn which
        if await _ended(ctx, broker_id):
            return
        attempt += 1
        await ctx.clock.sleep(
            backoff_s(attempt, ctx.options.lookup_backoff_base_s, ctx.options.lookup_backoff_cap_s)
        )


async def _ended(ctx: Context, broker_id: BrokerOrderId) -> bool:
    try:
        view = await ctx.broker.get_order(broker_id)
    except BrokerError:
        return False
    if view is None:
        return False
    with ctx.store.transaction() as tx:
        apply_observation(ctx, tx, observed(ctx, view, Source.RECONCILE))
    return view.status.is_terminal
