"""SQLite's many-row reads after the store's own writes (store/reads.py): a read repeated after this
store wrote is patched with the rows it wrote, read again by id. Each read here must equal the same read
by a store that read nothing before (whole), whatever was written, rolled back or committed by others."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from ordersync.domain.ids import ClientOrderId, ExecutionId
from ordersync.domain.order import OrderRole, OrderStatus
from ordersync.domain.protection import PriceRule, ProtectionPlan
from ordersync.ports import PlanState, Transaction
from ordersync.store import open_store, reads
from ordersync.store.sqlalchemy_store import SqlAlchemyStore
from ordersync.testing import make_order
from ordersync.testing.clock import T0

PLAN = ProtectionPlan(take_profit=PriceRule(price=Decimal("120")))
PARENTS = [ClientOrderId(f"p-{i}") for i in range(8)]


def everything(tx: Transaction) -> dict[str, Any]:
    """Every many-row read the engine repeats."""
    return {
        "open": tx.open_orders(),
        "open_symbol": tx.open_orders("KMI"),
        "all": tx.all_orders(),
        "children": tx.children_of_many(PARENTS),
        "children_one": tx.children_of(PARENTS[0]),
        "plans": tx.active_plans(),
    }


def whole(url: str) -> dict[str, Any]:
    fresh = open_store(url, migrate=False)
    try:
        with fresh.transaction() as tx:
            return everything(tx)
    finally:
        fresh.close()


def seed(store: SqlAlchemyStore) -> None:
    with store.transaction() as tx:
        for i, pid in enumerate(PARENTS):
            symbol = "KMI" if i % 2 else "XOM"
            tx.add_order(
                make_order(pid, symbol=symbol, status=OrderStatus.NEW, created_at=T0 + timedelta(i % 3))
            )
            tx.add_plan(PlanState(pid, PLAN))


def step(tx: Transaction, rng: random.Random, n: int) -> None:
    """One random write of the kinds the engine makes: new orders and children, saves that end or fill
    an order, fills, plans added, changed, done."""
    pid = rng.choice(PARENTS)
    kind = rng.randrange(5)
    if kind == 0:  # a new order, its created_at tying or between others'
        created = T0 + timedelta(days=rng.randrange(3), seconds=rng.randrange(2))
        tx.add_order(
            make_order(
                f"n-{n}", symbol=rng.choice(["KMI", "XOM"]), status=OrderStatus.NEW, created_at=created
            )
        )
    elif kind == 1:  # a child of a parent
        child = make_order(
            f"c-{n}", parent_id=pid, role=OrderRole.TAKE_PROFIT, side="sell", status=OrderStatus.NEW
        )
        tx.add_order(child)
    elif kind == 2:  # an open order ends, or changes
        order = rng.choice(tx.open_orders())
        status = rng.choice([OrderStatus.CANCELED, OrderStatus.ACCEPTED])
        tx.save_order(replace(order, status=status))
    elif kind == 3:  # a fill (the order's execution ids are part of every read of it)
        order = tx.get_order(rng.choice(tx.all_orders()).client_order_id)
        assert order is not None
        tx.record_fill(ExecutionId(f"e-{n}"), order.client_order_id, Decimal("1"), Decimal("100"), T0)
    else:  # a plan changes, or is done
        plan = tx.get_plan(pid)
        assert plan is not None
        tx.save_plan(replace(plan, release_failures=plan.release_failures + 1, done=rng.random() < 0.3))


@pytest.mark.parametrize("kept", [False, True])
def test_reads_after_this_stores_own_writes_equal_a_whole_read(sqlite_url: str, kept: bool) -> None:
    store = open_store(sqlite_url, keep_orders=kept)
    rng = random.Random(17)
    try:
        seed(store)
        for n in range(40):
            with store.transaction() as tx:
                everything(tx)  # kept for the next round, which patches it
            with store.transaction() as tx:
                for k in range(rng.randrange(1, 4)):
                    step(tx, rng, n * 10 + k)
            with store.transaction() as tx:
                assert everything(tx) == whole(sqlite_url), f"round {n}"
    finally:
        store.close()


def test_a_rolled_back_write_is_not_patched_in(sqlite_url: str) -> None:
    store = open_store(sqlite_url, keep_orders=True)
    try:
        seed(store)
        with store.transaction() as tx:
            everything(tx)

        def rolled_back() -> None:
            with store.transaction() as tx:
                order = tx.get_order(PARENTS[1])
                assert order is not None
                tx.save_order(replace(order, status=OrderStatus.CANCELED))
                tx.add_order(make_order("gone", status=OrderStatus.NEW))
                tx.add_plan(PlanState(ClientOrderId("gone"), PLAN))
                raise RuntimeError("rolled back")

        with pytest.raises(RuntimeError):
            rolled_back()
        with store.transaction() as tx:
            seen = everything(tx)
        assert seen == whole(sqlite_url)
        assert "gone" not in {o.client_order_id for o in seen["all"]}
        assert PARENTS[1] in {o.client_order_id for o in seen["open"]}
    finally:
        store.close()


def test_another_writers_commit_after_our_own_write_is_seen(sqlite_url: str) -> None:
    store, other = open_store(sqlite_url, keep_orders=True), open_store(sqlite_url)
    try:
        seed(store)
        with store.transaction() as tx:
            everything(tx)
        with store.transaction() as tx:
            tx.add_order(make_order("ours", status=OrderStatus.NEW))
        with other.transaction() as tx:
            order = tx.get_order(PARENTS[2])
            assert order is not None
            tx.save_order(replace(order, status=OrderStatus.CANCELED))
            tx.add_order(make_order("theirs", status=OrderStatus.NEW, symbol="KMI"))
        with store.transaction() as tx:
            seen = everything(tx)
        assert seen == whole(sqlite_url)
        assert {"ours", "theirs"} <= {o.client_order_id for o in seen["open"]}
        assert PARENTS[2] not in {o.client_order_id for o in seen["open"]}
    finally:
        store.close()
        other.close()


def test_more_writes_than_the_log_keeps_read_whole(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reads, "_LOG_LIMIT", 3)
    store = open_store(sqlite_url, keep_orders=True)
    try:
        seed(store)
        with store.transaction() as tx:
            everything(tx)
        with store.transaction() as tx:
            for i in range(5):
                tx.add_order(make_order(f"more-{i}", status=OrderStatus.NEW))
        with store.transaction() as tx:
            seen = everything(tx)
        assert seen == whole(sqlite_url)
        assert {f"more-{i}" for i in range(5)} <= {o.client_order_id for o in seen["open"]}
    finally:
        store.close()
