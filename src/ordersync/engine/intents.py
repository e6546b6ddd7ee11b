"""Recording a parent intent: the durable hand-over from a platform (or ``ordersync submit``) to the engine.

A function of its own, usable without an engine: the intent and its plan are written in one transaction,
and whichever engine runs on the store sends every unsent intent it finds.
"""

from __future__ import annotations

from datetime import datetime

from ordersync.domain.errors import ConcurrencyConflict
from ordersync.domain.kinds import JournalKind
from ordersync.domain.order import Order
from ordersync.domain.protection import ProtectionPlan, validate_plan
from ordersync.ports import JournalEntry, PlanState, Store


def record_parent(store: Store, order: Order, plan: ProtectionPlan | None, now: datetime) -> None:
    """Write a parent intent and its plan in one transaction (nothing is written if either is bad).

    The engine sends every unsent intent it finds, so this is also how another process (``ordersync
    submit``) hands work to a running ``ordersync run``.

    Raises:
        InvalidProtectionPlan: the plan cannot protect this order.
        ConcurrencyConflict: an order with this client_order_id already exists.
    """
    if plan is not None:
        validate_plan(plan, order)
    with store.transaction() as tx:
        if tx.get_order(order.client_order_id) is not None:
            raise ConcurrencyConflict(f"an order {order.client_order_id} already exists")
        tx.add_order(order)
        if plan is not None:
            tx.add_plan(PlanState(order.client_order_id, plan))
        payload = {
            "symbol": order.symbol,
            "side": order.side.value,
            "qty": order.qty,
            "type": order.type.value,
        }
        tx.journal(
            JournalEntry(
                now, JournalKind.PARENT_CREATED, order.client_order_id, {**payload, "plan": plan is not None}
            )
        )
