"""Rows <-> domain values. The domain never sees SQLAlchemy; this module is the only translation."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ordersync.domain.ids import BrokerOrderId, ClientOrderId, ExecutionId, Symbol
from ordersync.domain.order import Order, OrderRole, OrderSide, OrderStatus, OrderType, TimeInForce
from ordersync.domain.protection import PartialFillPolicy, PriceRule, ProtectionPlan, TrailRule
from ordersync.ports import Alert, PlanState


def order_to_row(order: Order) -> dict[str, Any]:
    """Return the orders-table row of ``order`` (execution ids live in the fills table)."""
    return {
        "client_order_id": order.client_order_id,
        "broker_order_id": order.broker_order_id,
        "parent_id": order.parent_id,
        "group_id": order.group_id,
        "role": order.role.value,
        "symbol": order.symbol,
        "side": order.side.value,
        "type": order.type.value,
        "time_in_force": order.time_in_force.value,
        "qty": order.qty,
        "limit_price": order.limit_price,
        "stop_price": order.stop_price,
        "stop_limit_price": order.stop_limit_price,
        "trail_price": order.trail_price,
        "trail_percent": order.trail_percent,
        "status": order.status.value,
        "filled_qty": order.filled_qty,
        "filled_avg_price": order.filled_avg_price,
        "broker_updated_at": order.broker_updated_at,
        "created_at": order.created_at,
        "leg_ids": list(order.leg_ids),
        "is_open": order.is_open,
        "version": order.version,
    }


def row_to_order(row: Mapping[Any, Any], execution_ids: frozenset[ExecutionId]) -> Order:
    """Return the domain order stored in ``row``."""
    parent, group = row["parent_id"], row["group_id"]
    return Order(
        client_order_id=ClientOrderId(row["client_order_id"]),
        symbol=Symbol(row["symbol"]),
        side=OrderSide(row["side"]),
        type=OrderType(row["type"]),
        qty=row["qty"],
        time_in_force=TimeInForce(row["time_in_force"]),
        created_at=row["created_at"],
        role=OrderRole(row["role"]),
        parent_id=None if parent is None else ClientOrderId(parent),
        group_id=None if group is None else ClientOrderId(group),
        limit_price=row["limit_price"],
        stop_price=row["stop_price"],
        stop_limit_price=row["stop_limit_price"],
        trail_price=row["trail_price"],
        trail_percent=row["trail_percent"],
        status=OrderStatus(row["status"]),
        broker_order_id=None if row["broker_order_id"] is None else BrokerOrderId(row["broker_order_id"]),
        leg_ids=tuple(BrokerOrderId(i) for i in row["leg_ids"]),
        filled_qty=row["filled_qty"],
        filled_avg_price=row["filled_avg_price"],
        broker_updated_at=row["broker_updated_at"],
        execution_ids=execution_ids,
        version=row["version"],
    )


def plan_to_row(state: PlanState) -> dict[str, Any]:
    """Return the plans-table row of a plan and its release bookkeeping."""
    tp, sl = state.plan.take_profit, state.plan.stop_loss
    limit, trail = state.plan.stop_limit, state.plan.trailing
    return {
        "parent_id": state.parent_id,
        "tp_price": tp.price if tp else None,
        "tp_offset": tp.offset if tp else None,
        "sl_price": sl.price if sl else None,
        "sl_offset": sl.offset if sl else None,
        "sl_limit_price": limit.price if limit else None,
        "sl_limit_offset": limit.offset if limit else None,
        "trail_price": trail.trail_price if trail else None,
        "trail_percent": trail.trail_percent if trail else None,
        "policy": state.plan.policy.value,
        "release_failures": state.release_failures,
        "next_release_at": state.next_release_at,
        "done": state.done,
        "closing": state.closing,
        "replaced_at": state.replaced_at,
        "native": state.plan.native,
    }


def row_to_plan(row: Mapping[Any, Any]) -> PlanState:
    """Return the plan stored in ``row``."""
    plan = ProtectionPlan(
        take_profit=_rule(row["tp_price"], row["tp_offset"]),
        stop_loss=_rule(row["sl_price"], row["sl_offset"]),
        policy=PartialFillPolicy(row["policy"]),
        stop_limit=_rule(row["sl_limit_price"], row["sl_limit_offset"]),
        trailing=None
        if row["trail_price"] is None and row["trail_percent"] is None
        else TrailRule(trail_price=row["trail_price"], trail_percent=row["trail_percent"]),
        native=bool(row["native"]),
    )
    return PlanState(
        parent_id=ClientOrderId(row["parent_id"]),
        plan=plan,
        release_failures=row["release_failures"],
        next_release_at=row["next_release_at"],
        done=row["done"],
        closing=row["closing"],
        replaced_at=row["replaced_at"],
    )


def _rule(price: Decimal | None, offset: Decimal | None) -> PriceRule | None:
    if price is None and offset is None:
        return None
    return PriceRule(price=price, offset=offset)


def row_to_alert(row: Mapping[Any, Any]) -> Alert:
    """Return the alert stored in ``row``."""
    return Alert(row["kind"], row["key"], row["message"], row["raised_at"], row["resolved_at"])
