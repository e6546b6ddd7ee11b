"""Factories for valid domain values: orders in any state, the broker's views of them, observations, fills.

Each builds through the domain's own constructors (``new_order``) so a test cannot start from a state the
domain would refuse, and defaults every field to what the order already knows, so a test names only what
matters to it.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

from ordersync.domain.events import BrokerOrderView, Execution, OrderObserved, Source
from ordersync.domain.ids import BrokerOrderId, ClientOrderId, ExecutionId
from ordersync.domain.order import (
    Order,
    OrderRole,
    OrderSide,
    OrderStatus,
    OrderType,
    TimeInForce,
    new_order,
)
from ordersync.domain.protection import PriceRule, ProtectionPlan
from ordersync.testing.clock import T0

OKE_OCO = ProtectionPlan(
    take_profit=PriceRule(price=Decimal("76")), stop_loss=PriceRule(price=Decimal("68.5"))
)


def make_order(
    client_order_id: str = "ord-1",
    *,
    symbol: str = "AAPL",
    side: OrderSide | str = OrderSide.BUY,
    type: OrderType | str = OrderType.LIMIT,
    qty: Decimal | str | int = 10,
    limit_price: Decimal | str | None = None,
    stop_price: Decimal | str | None = None,
    time_in_force: TimeInForce | str = TimeInForce.DAY,
    created_at: datetime = T0,
    role: OrderRole = OrderRole.ENTRY,
    parent_id: str | None = None,
    status: OrderStatus = OrderStatus.INTENT,
    filled_qty: Decimal | str | int = 0,
    filled_avg_price: Decimal | str | None = None,
    broker_order_id: str | None = None,
    broker_updated_at: datetime | None = None,
) -> Order:
    """Return a valid order (validated by ``new_order``), then placed in ``status`` with ``filled_qty``.

    A limit/stop-limit order without ``limit_price`` gets 100.00 and a stop order (or an OCO child)
    without ``stop_price`` gets 95.00; an order the broker knows gets broker id ``brk-<client_order_id>``;
    a filled quantity gets the limit (or stop, or 100.00) price as its average unless ``filled_avg_price``
    is given.
    """
    kind = OrderType(type)
    if limit_price is None and kind in (OrderType.LIMIT, OrderType.STOP_LIMIT):
        limit_price = Decimal("100.00")
    if stop_price is None and (kind in (OrderType.STOP, OrderType.STOP_LIMIT) or role is OrderRole.OCO):
        stop_price = Decimal("95.00")
    order = new_order(
        client_order_id=client_order_id,
        symbol=symbol,
        side=side,
        type=kind,
        qty=qty,
        created_at=created_at,
        time_in_force=time_in_force,
        limit_price=limit_price,
        stop_price=stop_price,
        role=role,
        parent_id=None if parent_id is None else ClientOrderId(parent_id),
    )
    filled = Decimal(filled_qty)
    avg = _default_price(order) if filled > 0 and filled_avg_price is None else filled_avg_price
    if broker_order_id is None and not status.is_local:
        broker_order_id = f"brk-{client_order_id}"
    return replace(
        order,
        status=status,
        filled_qty=filled,
        filled_avg_price=None if avg is None else Decimal(avg),
        broker_order_id=None if broker_order_id is None else BrokerOrderId(broker_order_id),
        broker_updated_at=broker_updated_at,
    )


def resting_parent(client_order_id: str, now: datetime) -> tuple[Order, ProtectionPlan]:
    """A GTC limit buy of 10 OKE at 70.00 (below the simulators' 72.10: it rests until a test fills it) and
    its OCO plan (76 / 68.5): the parent the operations and fleet tests submit."""
    order = new_order(
        client_order_id=client_order_id,
        symbol="OKE",
        side="buy",
        type="limit",
        qty="10",
        created_at=now,
        time_in_force="gtc",
        limit_price="70.00",
    )
    return order, OKE_OCO


def make_view(
    order: Order,
    *,
    status: OrderStatus | None = None,
    filled_qty: Decimal | str | int | None = None,
    updated_at: datetime | None = None,
    filled_avg_price: Decimal | str | None = None,
    broker_order_id: str | None = None,
    client_order_id: str | None = None,
) -> BrokerOrderView:
    """Return the broker's view of ``order``; every field defaults to what the order already knows.

    ``status`` defaults to the order's (``new`` for a local order), ``updated_at`` to one second after the
    order's last broker update (or its creation), the average price to the order's (or its limit price).
    """
    filled = order.filled_qty if filled_qty is None else Decimal(filled_qty)
    avg: Decimal | str | None = filled_avg_price
    if avg is None and filled > 0:
        avg = order.filled_avg_price or _default_price(order)
    return BrokerOrderView(
        broker_order_id=BrokerOrderId(
            broker_order_id or order.broker_order_id or f"brk-{order.client_order_id}"
        ),
        client_order_id=ClientOrderId(client_order_id or order.client_order_id),
        symbol=order.symbol,
        status=status or (OrderStatus.NEW if order.status.is_local else order.status),
        qty=order.qty,
        filled_qty=filled,
        filled_avg_price=None if avg is None else Decimal(avg),
        updated_at=updated_at or _next_update(order),
        leg_ids=order.leg_ids,
    )


def observe(
    order: Order,
    status: OrderStatus,
    filled_qty: Decimal | str | int | None = None,
    *,
    event: str | None = None,
    execution_id: str | None = None,
    exec_qty: Decimal | str | int | None = None,
    price: Decimal | str | None = None,
    updated_at: datetime | None = None,
    source: Source = Source.STREAM,
    ts_init: datetime | None = None,
) -> OrderObserved:
    """Return an observation of ``order`` in ``status`` with cumulative ``filled_qty``.

    With ``execution_id`` it is a fill event: ``exec_qty`` defaults to the increase over the order's
    filled quantity, ``event`` to ``fill`` (complete) or ``partial_fill``, and ``price`` to the order's
    limit price (or 100.00).

    Raises:
        ValueError: for an execution that adds nothing and has no explicit ``exec_qty``.
    """
    view = make_view(order, status=status, filled_qty=filled_qty, updated_at=updated_at)
    execution = None
    if execution_id is not None:
        qty = view.filled_qty - order.filled_qty if exec_qty is None else Decimal(exec_qty)
        if qty <= 0 and exec_qty is None:
            raise ValueError(
                f"give exec_qty: filled_qty {view.filled_qty} adds nothing to {order.filled_qty}"
            )
        fill_price = Decimal(price) if price is not None else _default_price(order)
        execution = Execution(ExecutionId(execution_id), qty, fill_price)
        if event is None:
            event = "fill" if view.filled_qty == order.qty else "partial_fill"
    return OrderObserved(
        order=view,
        source=source,
        ts_event=view.updated_at,
        ts_init=ts_init or view.updated_at,
        event=event,
        execution=execution,
    )


def make_fill(
    order: Order,
    qty: Decimal | str | int,
    price: Decimal | str | None = None,
    *,
    execution_id: str | None = None,
    updated_at: datetime | None = None,
    source: Source = Source.STREAM,
) -> OrderObserved:
    """Return the fill event that adds ``qty`` at ``price`` to ``order`` (new cumulative avg price).

    The execution id defaults to a UUID derived from the order and the new cumulative quantity, so the
    same fill built twice is the same (duplicated) event.
    """
    add = Decimal(qty)
    px = Decimal(price) if price is not None else _default_price(order)
    total = order.filled_qty + add
    old_avg = order.filled_avg_price or Decimal(0)
    avg = (old_avg * order.filled_qty + px * add) / total
    status = OrderStatus.FILLED if total == order.qty else OrderStatus.PARTIALLY_FILLED
    exec_id = execution_id or str(uuid.uuid5(uuid.NAMESPACE_URL, f"{order.client_order_id}/{total}"))
    view = replace(
        make_view(order, status=status, filled_qty=total, updated_at=updated_at), filled_avg_price=avg
    )
    return OrderObserved(
        order=view,
        source=source,
        ts_event=view.updated_at,
        ts_init=view.updated_at,
        event="fill" if status is OrderStatus.FILLED else "partial_fill",
        execution=Execution(ExecutionId(exec_id), add, px),
    )


def _default_price(order: Order) -> Decimal:
    return order.limit_price or order.stop_price or Decimal("100.00")


def _next_update(order: Order) -> datetime:
    return (order.broker_updated_at or order.created_at) + timedelta(seconds=1)
