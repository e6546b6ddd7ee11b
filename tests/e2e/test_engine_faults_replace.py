"""Replace chains (docs/architecture.md §2, invariant 8): an order of ours edited with PATCH, by us or
by a person in the
dashboard, is replaced by a new order; the replacement inherits its role, and its fills are protected.

In-process simulator (real clock) through alpaca-py; the person is another alpaca-py client on the same
account. Judged from the simulator's books.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from alpaca.trading.client import TradingClient
from alpaca.trading.requests import ReplaceOrderRequest
from inprocess import KEY, PLAN, SECRET, parent_order, position, start_simulator, until, wire_engine

from ordersync.domain.order import OrderRole
from ordersync.domain.protection import PriceRule, ProtectionPlan
from ordersync.engine import Engine
from ordersync.sim.server import SimServer

LIVE = {"new", "accepted", "partially_filled", "held", "pending_new", "pending_replace"}


@pytest.fixture
def sim() -> Iterator[SimServer]:
    server = start_simulator("replace", cancel_s=0.05)
    yield server
    server.stop()


@pytest.fixture
async def engine(sim: SimServer, tmp_path: Path) -> AsyncIterator[Engine]:
    running, store = wire_engine(sim, tmp_path / "replace.db")
    await running.start()
    yield running
    await running.stop()
    store.close()


def person(sim: SimServer) -> TradingClient:
    client = TradingClient(KEY, SECRET, url_override=sim.base_url)
    client._retry = 0
    return client


def orders(sim: SimServer) -> list[dict[str, Any]]:
    return list(sim.snapshot()["orders"])


def by_coid(sim: SimServer, coid: str) -> dict[str, Any] | None:
    return next((o for o in orders(sim) if o["client_order_id"] == coid), None)


def sells_reserving(sim: SimServer) -> Decimal:
    """Shares our open sell groups reserve at the broker (an OCO and its leg count once)."""
    roots = [o for o in orders(sim) if o["side"] == "sell" and o["status"] in LIVE]
    groups = {o["sim"]["group_id"] or o["id"] for o in roots}
    return sum(
        (max(Decimal(o["qty"]) for o in roots if (o["sim"]["group_id"] or o["id"]) == g) for g in groups),
        Decimal(0),
    )


def open_alerts(engine: Engine) -> set[tuple[str, str]]:
    with engine._ctx.store.transaction() as tx:
        return {(a.kind, a.key) for a in tx.open_alerts()}


async def test_an_entry_a_person_edits_mid_fill_has_its_replacements_fills_protected(
    sim: SimServer, engine: Engine
) -> None:
    await engine.submit(parent_order("r1"), PLAN)
    assert await until(lambda: (by_coid(sim, "r1") or {}).get("status") == "new", "the entry at the broker")
    sim.fill(client_order_id="r1", qty=Decimal(3))
    assert await until(lambda: sells_reserving(sim) == 3, "the first 3 shares protected")

    # a person raises the entry's limit in the dashboard: Alpaca replaces it with a new order for the rest
    old = by_coid(sim, "r1")
    assert old is not None
    new = person(sim).replace_order_by_id(old["id"], ReplaceOrderRequest(qty=7, limit_price=70.5))
    new_id = str(getattr(new, "id", ""))
    assert await until(lambda: (by_coid(sim, "r1") or {}).get("status") == "replaced", "the old one replaced")
    sim.fill(order_id=new_id, qty=Decimal(7))

    protected = await until(lambda: sells_reserving(sim) == 10, "the replacement's 7 shares protected", 10)
    assert protected, (
        f"the position is {position(sim)} but our exits reserve {sells_reserving(sim)}: the replacement's "
        "fills were taken for someone else's"
    )
    assert await until(lambda: not [a for a in open_alerts(engine) if a[0] == "unprotected_position"], "", 3)
    assert position(sim) == 10
    local = {o.client_order_id: o for o in engine.orders()}
    successor = next(o for o in local.values() if o.broker_order_id == new_id)
    assert (successor.parent_id, successor.role.value) == (None, "entry"), "the replacement is an entry"
    assert successor.filled_qty == 7
    report = await engine.watch.reconcile(dry_run=True)
    assert report.discrepancies == [], f"no foreign order, no drift: {report.discrepancies}"


async def test_a_take_profit_a_person_edits_stays_ours_and_is_not_doubled(
    sim: SimServer, engine: Engine
) -> None:
    tp_only = ProtectionPlan(take_profit=PriceRule(price=Decimal("76.00")))
    await engine.submit(parent_order("r2"), tp_only)
    assert await until(lambda: (by_coid(sim, "r2") or {}).get("status") == "new", "the entry at the broker")
    sim.fill(client_order_id="r2", qty=Decimal(10))
    assert await until(lambda: by_coid(sim, "r2~tp1") is not None, "the take-profit")
    assert await until(lambda: (by_coid(sim, "r2~tp1") or {}).get("status") == "new", "the take-profit live")

    tp = by_coid(sim, "r2~tp1")
    assert tp is not None
    person(sim).replace_order_by_id(tp["id"], ReplaceOrderRequest(limit_price=77.0))  # the person's edit
    assert await until(lambda: (by_coid(sim, "r2~tp1") or {}).get("status") == "replaced", "replaced")
    await engine.watch.reconcile(dry_run=False)
    assert await engine.wait_idle(timeout_s=10)

    assert sells_reserving(sim) == 10, "the edited take-profit still covers the 10 shares, and only it does"
    live = [o for o in orders(sim) if o["side"] == "sell" and o["status"] in LIVE]
    assert [Decimal(o["limit_price"]) for o in live] == [Decimal("77")], "no second take-profit was sent"
    assert not [a for a in open_alerts(engine) if a[0] in ("unprotected_position", "foreign_order")]
    successor = next(o for o in engine.orders() if o.broker_order_id == live[0]["id"])
    assert (successor.role, successor.parent_id) == (OrderRole.TAKE_PROFIT, "r2")
