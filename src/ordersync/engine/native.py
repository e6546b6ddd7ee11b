"""Native brackets inside ordersync: which parents go out as Alpaca's bracket/OTO, and the bound on their
part-filled wait (docs/comparison.md §8, docs/architecture.md §14.4).

A plan with ``native: true`` is checked when it is recorded (``domain/plans.py`` ``native_refusal``); its
parent is then sent with its exits attached, and the engine adopts the legs as the parent's children. The
legs protect nothing until the entry completely fills, so a part-filled native parent is given at most
``native_partial_bound_s``: then its rest is cancelled and the ordinary rule protects what filled.
"""

from __future__ import annotations

from datetime import datetime

from ordersync.domain.coverage import entry_complete, native_legs
from ordersync.domain.exits import AttachedExits, attached_exits
from ordersync.domain.ids import ClientOrderId
from ordersync.domain.order import Order
from ordersync.domain.plans import ProtectionPlan, native_refusal
from ordersync.domain.protection import NATIVE_HOLDS, ReleaseDecision
from ordersync.engine.context import Context


def exits_for(order: Order, plan: ProtectionPlan | None) -> AttachedExits | None:
    """The exits to attach to ``order``'s POST: only for an entry whose plan asked to go native (and can)."""
    if order.is_child or plan is None or not plan.native or native_refusal(plan, order) is not None:
        return None
    return attached_exits(plan)


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
    reason = next((h.reason for h in decision.holds if h.reason in NATIVE_HOLDS), None)
    if reason is None:
        ctx.native_waits.pop(pid, None)
        return False
    held, since = ctx.native_waits.get(pid, (reason, now))
    if held != reason:
        since = now
    ctx.native_waits[pid] = (reason, since)
    return (now - since).total_seconds() >= ctx.options.native_partial_bound_s
