"""Native brackets inside ordersync: which parents go out as Alpaca's bracket/OTO, and the bound on their
part-filled wait (docs/comparison.md §8, docs/architecture.md §14.4).

A plan with ``native: true`` is checked when it is recorded (``domain/plans.py`` ``native_refusal``); its
parent is then sent with its exits attached, and the engine adopts the legs as the parent's children. The
legs protect nothing until the entry completely fills, so a part-filled native parent is given at most
``native_partial_bound_s``: then its rest is cancelled and the ordinary rule protects what filled.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from ordersync.domain.coverage import entry_complete, native_legs
from ordersync.domain.errors import BrokerError
from ordersync.domain.events import OrderObserved, Source
from ordersync.domain.exits import AttachedExits, attached_exits
from ordersync.domain.ids import BrokerOrderId, ClientOrderId
from ordersync.domain.kinds import HoldReason, JournalKind
from ordersync.domain.order import Order, OrderRole, OrderSide, OrderType
from ordersync.domain.plans import ProtectionPlan, native_refusal
from ordersync.domain.protection import ReleaseDecision
from ordersync.engine.context import Context, apply_observation
from ordersync.ports import REQUEST_PRIORITY, Priority, Transaction


def prepare(ctx: Context, tx: Transaction, order: Order) -> AttachedExits | None:
    """The exits ``order`` is sent with, decided once: an entry that goes native because of our lone exit
    has its plan marked ``native`` in the same transaction, so a resend (same client_order_id) is the same
    group, and the release rule knows to wait for its legs rather than send an exit beside them."""
    state = None if order.is_child else tx.get_plan(order.client_order_id)
    if state is None:
        return None
    eligible = native_refusal(state.plan, order) is None
    on_symbol = tx.open_orders(order.symbol) if eligible and not state.plan.native else []
    exits = exits_for(order, state.plan, on_symbol)
    if exits is not None and not state.plan.native:
        tx.save_plan(replace(state, plan=replace(state.plan, native=True)))
        tx.journal(
            ctx.entry(
                JournalKind.NATIVE_BESIDE_OUR_EXIT, order.client_order_id, order_class=exits.order_class
            )
        )
    return exits


def exits_for(order: Order, plan: ProtectionPlan | None, on_symbol: list[Order]) -> AttachedExits | None:
    """The exits to attach to ``order``'s POST (None: a simple order).

    An entry goes native when its plan asks to, or, automatically, when one of our lone exits rests on its
    symbol on the other side (issue 13 item 4): Alpaca would refuse the simple entry as a "potential wash
    trade", and exempts a bracket/OTO. Either way only where a bracket keeps the guarantees
    (``native_refusal``); an ineligible entry beside our lone exit goes simple, and its refusal is alerted
    ``order_refused`` (docs/architecture.md §14.4).
    """
    if order.is_child or plan is None or native_refusal(plan, order) is not None:
        return None
    if plan.native or any(_lone_exit_against(order, o) for o in on_symbol):
        return attached_exits(plan)
    return None


def _lone_exit_against(entry: Order, other: Order) -> bool:
    # our simple exit at the venue on the entry's symbol, opposite side, that a simple entry could trade
    # against (an OCO, a native leg and a trailing stop are exempt, and so is what is not at the venue yet)
    lone = (
        other.is_child
        and other.group_id is None
        and other.is_open
        and not other.status.is_local
        and other.role is not OrderRole.OCO
        and other.type is not OrderType.TRAILING_STOP
        and other.side is entry.side.opposite
        and other.symbol == entry.symbol
    )
    return lone and _could_cross(entry, other)


def _could_cross(entry: Order, exit_order: Order) -> bool:
    # Alpaca refuses opposing market/stop pairs always, opposing limits when the buy limit >= the sell limit
    # (docs/alpaca.md §4.7): a take-profit above a buy entry's limit does not block it
    if entry.limit_price is None or exit_order.type is not OrderType.LIMIT or exit_order.limit_price is None:
        return True
    sign = 1 if entry.side is OrderSide.BUY else -1
    return sign * (entry.limit_price - exit_order.limit_price) >= 0


def awaiting_legs(parent: Order, children: list[Order]) -> bool:
    """True while a native parent's legs are held beside an incomplete entry: no position read is due
    (the release rule sends nothing beside them; only the bound can act, and it cancels)."""
    return not entry_complete(parent) and any(leg.is_open for leg in native_legs(children))


def bound_reached(ctx: Context, pid: ClientOrderId, decision: ReleaseDecision, now: datetime) -> bool:
    """True once ``pid`` has been held by one native wait for ``native_partial_bound_s``.

    Each wait (a part-filled entry; legs left after their entry ended) counts from its own start, so the
    legs of an entry that just ended get the time their group cancel takes to be confirmed. Kept in memory:
    after a restart the bound counts again from the restart, as the wash-trade bound does.
    """
    kind = next((h.kind for h in decision.holds if h.kind.is_native), None)
    if kind is None:
        ctx.native_waits.pop(pid, None)
        return False
    held, since = ctx.native_waits.get(pid, (kind, now))
    if held is not kind:
        since = now
    ctx.native_waits[pid] = (kind, since)
    return (now - since).total_seconds() >= ctx.options.native_partial_bound_s


def read_unseen_legs(ctx: Context, parent: Order, decision: ReleaseDecision) -> None:
    """A native parent held because its legs were never seen (the POST's answer, which nests them, was
    lost; an event came without them): read it with its legs in the background. Adopting a leg marks the
    parent dirty, so the release rule decides again on facts (at most one read in flight per parent)."""
    broker_id = parent.broker_order_id
    if broker_id is None or broker_id in ctx.following:
        return
    if any(h.kind is HoldReason.NATIVE_UNREAD for h in decision.holds):
        ctx.following.add(broker_id)
        ctx.spawn(_read_nested(ctx, broker_id), f"native-legs:{parent.client_order_id}")


async def _read_nested(ctx: Context, broker_id: BrokerOrderId) -> None:
    REQUEST_PRIORITY.set(Priority.PROTECT)  # the parent's filled shares wait for this read
    try:
        view = await ctx.broker.get_order(broker_id, nested=True)
    except BrokerError:
        view = None  # the next release pass (every tick while held) asks again
    finally:
        ctx.following.discard(broker_id)
    if view is not None:
        with ctx.store.transaction() as tx:
            apply_observation(
                ctx, tx, OrderObserved(view, Source.RECONCILE, view.updated_at, ctx.clock.now())
            )
