"""What only the SQL stores have: Alembic migrations, the schema they build, SQLite's durability pragmas."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from ordersync.domain.errors import ConcurrencyConflict
from ordersync.domain.ids import ClientOrderId, ExecutionId
from ordersync.domain.order import OrderRole, OrderStatus
from ordersync.domain.protection import PriceRule, ProtectionPlan
from ordersync.ports import JournalEntry, PlanState
from ordersync.store import open_store
from ordersync.store.migrate import alembic_config
from ordersync.store.sqlalchemy_store import SqlAlchemyStore
from ordersync.store.tables import metadata
from ordersync.testing import make_order

T = datetime(2026, 3, 2, 15, 4, 5, tzinfo=UTC)
TABLES = {"orders", "fills", "plans", "journal", "alerts", "cursors", "alembic_version"}


def head_revision(url: str) -> str:
    engine = create_engine(url)
    try:
        head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    finally:
        engine.dispose()
    assert head is not None
    return head


def schema_state(url: str) -> tuple[set[str], list[str], list[object]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
            versions = [row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))]
            drift = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()
    return tables, versions, drift


def test_opening_twice_migrates_once_and_keeps_the_data(db_url: str) -> None:
    first = open_store(db_url)
    with first.transaction() as tx:
        tx.add_order(make_order("kept", qty="0.000000001"))
    first.close()
    open_store(db_url).close()
    third = open_store(db_url)
    with third.transaction() as tx:
        kept = tx.get_order(ClientOrderId("kept"))
        assert kept is not None
        assert kept.qty.as_tuple() == Decimal("0.000000001").as_tuple()
        assert len(tx.all_orders()) == 1
    third.close()
    tables, versions, _ = schema_state(db_url)
    assert tables >= TABLES
    assert versions == [head_revision(db_url)]


def test_the_migrations_build_exactly_the_tables_the_code_uses(db_url: str) -> None:
    """Alembic's autogenerate finds nothing to change: tables.py and the migration scripts agree."""
    open_store(db_url).close()
    _, _, drift = schema_state(db_url)
    assert drift == []


def test_migrate_false_leaves_an_empty_database_alone(db_url: str) -> None:
    open_store(db_url, migrate=False).close()
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) & TABLES == set()
    finally:
        engine.dispose()


def test_sqlite_runs_in_wal_mode_with_full_sync(sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    try:
        with store.transaction() as tx:
            conn = tx._conn  # the adapter's own connection: the pragmas are per connection
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    finally:
        store.close()


@pytest.mark.postgres
def test_postgres_stores_quantities_as_exact_text(postgres_url: str) -> None:
    store = open_store(postgres_url)
    with store.transaction() as tx:
        tx.add_order(make_order("exact", qty="12.50", limit_price="412.123456789"))
    store.close()
    engine = create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            row = conn.execute(text("SELECT qty, limit_price FROM orders")).one()
    finally:
        engine.dispose()
    assert tuple(row) == ("12.50", "412.123456789")


def _two_orders(url: str) -> SqlAlchemyStore:
    store = open_store(url)
    with store.transaction() as tx:
        for coid in ("a", "b"):
            tx.add_order(make_order(coid, status=OrderStatus.ACCEPTED))
    return store


def _fill_ids(store: SqlAlchemyStore) -> dict[str, str]:
    with store._engine.connect() as conn:
        return {
            str(r[0]): str(r[1])
            for r in conn.execute(text("SELECT execution_id, client_order_id FROM fills"))
        }


@pytest.mark.postgres
def test_postgres_fills_written_at_commit_skip_an_id_another_order_holds(postgres_url: str) -> None:
    # a broker anomaly (one execution id on two orders) is ignored, as on SQLite: the rest of the batch's
    # fills still go in (the copy is undone and redone row by row with ON CONFLICT DO NOTHING)
    store = _two_orders(postgres_url)
    try:
        with store.transaction() as tx:
            assert tx.record_fill(ExecutionId("e-1"), ClientOrderId("a"), Decimal(1), Decimal(10), T)
        with store.transaction() as tx:
            tx.orders_by_id([ClientOrderId("b")])
            assert tx.record_fill(ExecutionId("e-2"), ClientOrderId("b"), Decimal(1), Decimal(10), T)
            assert tx.record_fill(ExecutionId("e-1"), ClientOrderId("b"), Decimal(1), Decimal(10), T)
            tx.journal(JournalEntry(T, "observed", "b", {}))
        assert _fill_ids(store) == {"e-1": "a", "e-2": "b"}
        assert [e.kind for e in store.read_journal()] == ["observed"]
    finally:
        store.close()


@pytest.mark.postgres
def test_postgres_a_fill_another_writer_recorded_for_the_same_order_is_a_conflict(postgres_url: str) -> None:
    store = _two_orders(postgres_url)
    try:

        def attempt() -> None:
            with store.transaction() as slow:
                slow.orders_by_id([ClientOrderId("a")])
                with store.transaction() as fast:
                    fast.record_fill(ExecutionId("e-9"), ClientOrderId("a"), Decimal(1), Decimal(10), T)
                assert slow.record_fill(ExecutionId("e-9"), ClientOrderId("a"), Decimal(1), Decimal(10), T)
                slow.journal(JournalEntry(T, "observed", "a", {}))

        with pytest.raises(ConcurrencyConflict):
            attempt()
        assert _fill_ids(store) == {"e-9": "a"}
        assert store.read_journal() == [], "the whole batch was rolled back"
    finally:
        store.close()


def test_the_engine_store_reads_kept_orders_and_a_second_writer_is_still_a_conflict(db_url: str) -> None:
    engine_store = open_store(db_url, keep_orders=True)
    other = open_store(db_url)  # another writer on the same database (another process, say)
    try:
        with engine_store.transaction() as tx:
            tx.add_order(make_order("k-1", status=OrderStatus.ACCEPTED))
        with engine_store.transaction() as tx:
            mine = tx.get_order(ClientOrderId("k-1"))
            assert mine is not None
            tx.save_order(replace(mine, status=OrderStatus.NEW))  # kept as version 1
        with other.transaction() as tx:
            theirs = tx.get_order(ClientOrderId("k-1"))
            assert theirs is not None
            tx.save_order(replace(theirs, status=OrderStatus.CANCELED))  # version 2, behind our back
        with engine_store.transaction() as tx:
            kept = tx.get_order(ClientOrderId("k-1"))
            assert kept is not None
            assert (kept.status, kept.version) == (OrderStatus.NEW, 1), "read from memory, not the database"

        def stale_save() -> None:
            with engine_store.transaction() as tx:
                order = tx.get_order(ClientOrderId("k-1"))
                assert order is not None
                tx.save_order(replace(order, status=OrderStatus.FILLED))

        with pytest.raises(ConcurrencyConflict):
            stale_save()
        with engine_store.transaction() as tx:  # the conflict emptied what was kept: a fresh read
            fresh = tx.get_order(ClientOrderId("k-1"))
            assert fresh is not None
            assert (fresh.status, fresh.version) == (OrderStatus.CANCELED, 2)
        assert engine_store._kept == {}, "a terminal order is not kept"
    finally:
        engine_store.close()
        other.close()


def test_many_row_reads_see_every_change_another_writer_made_to_rows_already_read(db_url: str) -> None:
    # SQLite decodes a row once and reuses it while the row is unchanged (store/reads.py): a change by
    # another store (another process) must still show on the next read, column for column
    reader, writer = open_store(db_url), open_store(db_url)
    try:
        with writer.transaction() as tx:
            for i in range(3):
                tx.add_order(make_order(f"r-{i}", status=OrderStatus.NEW, symbol="KMI"))
            tx.add_plan(
                PlanState(ClientOrderId("r-0"), ProtectionPlan(take_profit=PriceRule(price=Decimal("120"))))
            )
        with reader.transaction() as tx:
            assert [o.client_order_id for o in tx.open_orders("KMI")] == ["r-0", "r-1", "r-2"]
            (plan,) = tx.active_plans()
            assert plan.release_failures == 0
        with writer.transaction() as tx:
            one, two = tx.get_order(ClientOrderId("r-1")), tx.get_order(ClientOrderId("r-2"))
            assert one is not None
            assert two is not None
            tx.record_fill(ExecutionId("e-1"), one.client_order_id, Decimal("4"), Decimal("100.00"), T)
            tx.save_order(replace(one, status=OrderStatus.PARTIALLY_FILLED, filled_qty=Decimal("4")))
            tx.save_order(replace(two, status=OrderStatus.CANCELED))
            tx.save_plan(replace(plan, release_failures=3))
        with reader.transaction() as tx:
            seen = {o.client_order_id: o for o in tx.open_orders()}
            (plan,) = tx.active_plans()
        assert sorted(seen) == ["r-0", "r-1"], "the canceled order is no longer open"
        assert seen[ClientOrderId("r-1")].filled_qty == Decimal("4")
        assert seen[ClientOrderId("r-1")].execution_ids == {ExecutionId("e-1")}
        assert seen[ClientOrderId("r-1")].version == 1
        assert plan.release_failures == 3
    finally:
        reader.close()
        writer.close()


def test_children_of_many_returns_every_child_of_more_than_500_parents(db_url: str) -> None:
    store = open_store(db_url)
    try:
        with store.transaction() as tx:
            for i in range(1_200):
                tx.add_order(make_order(f"p-{i}", status=OrderStatus.FILLED, filled_qty=10))
                child = make_order(f"c-{i}", parent_id=f"p-{i}", role=OrderRole.TAKE_PROFIT, side="sell")
                tx.add_order(child)
        with store.transaction() as tx:
            # a child fill buffered in this transaction shows in the children read too
            tx.get_order(ClientOrderId("c-7"))
            tx.record_fill(ExecutionId("x-7"), ClientOrderId("c-7"), Decimal("1"), Decimal("110"), T)
            children = tx.children_of_many(
                [ClientOrderId(f"p-{i}") for i in range(1_200)] + [ClientOrderId("none")]
            )
        assert children[ClientOrderId("none")] == []
        with store.transaction() as tx:
            assert tx.children_of_many([]) == {}
        assert all(
            [c.client_order_id for c in children[ClientOrderId(f"p-{i}")]] == [f"c-{i}"] for i in range(1_200)
        )
        assert children[ClientOrderId("p-7")][0].execution_ids == {ExecutionId("x-7")}
    finally:
        store.close()


def test_reads_after_a_rolled_back_write_show_the_database_and_after_a_commit_the_commit(db_url: str) -> None:
    # SQLite reuses a read's result while nothing was written since (store/reads.py): neither a write
    # rolled back nor one committed through the same connection may be hidden or kept by that
    store = open_store(db_url, keep_orders=True)
    try:
        with store.transaction() as tx:
            tx.add_order(make_order("w-0", status=OrderStatus.NEW))
        for _ in range(2):  # the second read is the reused one
            with store.transaction() as tx:
                assert [o.client_order_id for o in tx.open_orders()] == ["w-0"]

        def rolled_back() -> None:
            with store.transaction() as tx:
                tx.add_order(make_order("w-1", status=OrderStatus.NEW))
                assert [o.client_order_id for o in tx.open_orders()] == ["w-0", "w-1"]
                raise RuntimeError("rolled back")

        with pytest.raises(RuntimeError):
            rolled_back()
        with store.transaction() as tx:
            assert [o.client_order_id for o in tx.open_orders()] == ["w-0"]
        with store.transaction() as tx:
            order = tx.get_order(ClientOrderId("w-0"))
            assert order is not None
            tx.save_order(replace(order, status=OrderStatus.CANCELED))
        with store.transaction() as tx:
            assert tx.open_orders() == []
    finally:
        store.close()
