"""`ordersync status` renders store data as data: an order status such as "new" next to colons must not turn
into rich markup or an emoji, and the protection column has one shape for every row."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal

from rich.console import Console

from ordersync.domain.ids import ClientOrderId
from ordersync.domain.order import OrderRole, OrderStatus, new_order
from ordersync.domain.protection import PriceRule, ProtectionPlan
from ordersync.ports import PlanState
from ordersync.reports import status_tables

T0 = datetime(2025, 10, 10, 16, tzinfo=UTC)


def _render(*tables: object) -> str:
    console = Console(width=200, record=True, color_system=None)
    for table in tables:
        console.print(table)
    return console.export_text()


def test_children_and_protection_render_literally() -> None:
    parent = new_order(
        client_order_id="p01",
        symbol="OKE",
        side="buy",
        type="limit",
        qty=9,
        limit_price="72.11",
        created_at=T0,
    )
    parent = dataclasses.replace(parent, status=OrderStatus.FILLED, filled_qty=Decimal(9))
    child = new_order(
        client_order_id="p01~oco1",
        symbol="OKE",
        side="sell",
        type="limit",
        qty=9,
        limit_price="76",
        stop_price="68.5",
        created_at=T0,
        role=OrderRole.OCO,
        parent_id=ClientOrderId("p01"),
    )
    child = dataclasses.replace(child, status=OrderStatus.NEW)
    bare = new_order(client_order_id="p02", symbol="KMI", side="buy", type="market", qty=5, created_at=T0)
    plan = PlanState(ClientOrderId("p01"), ProtectionPlan(take_profit=PriceRule(price=Decimal("76"))))
    text = _render(*status_tables([parent, child, bare], [plan], []))
    assert "oco:new:9" in text
    assert "🆕" not in text
    assert "9/9 ok" in text
    assert "no plan" in text
