"""Operator holds: a person who canceled our protection meant it, so the parent is not re-armed.

A concept of its own (docs/architecture.md §2, invariant 8): the durable hold list, how the engine
notices a person's cancel, and how ``ordersync protect`` lifts a hold. The CLI uses it without an engine.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING

from ordersync.domain.attribution import operator_canceled
from ordersync.domain.ids import ClientOrderId
from ordersync.domain.kinds import AlertKind, JournalKind
from ordersync.domain.order import Order, OrderRole
from ordersync.ports import JournalEntry, Store, Transaction

if TYPE_CHECKING:  # the bag re-exports this module's names: a runtime import would be circular
    from ordersync.engine.context import Context

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
        tx.journal(JournalEntry(now, JournalKind.OPERATOR_PROTECT, parent_id, {"child": child}))
    return child


def check_operator_cancel(ctx: Context, tx: Transaction, child: Order) -> None:
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
    tx.journal(ctx.entry(JournalKind.OPERATOR_HOLD, parent_id, child=primary_id))
    ctx.raise_alert(
        tx,
        AlertKind.PROTECTION_CANCELLED_BY_OPERATOR,
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
        if any(e.kind == JournalKind.CANCEL_REQUESTED and e.client_order_id in wanted for e in entries):
            return True
        after = entries[-1].seq or after
        if entries[-1].seq is None:
            return False
    return False
