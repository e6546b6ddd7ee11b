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
from ordersync.domain.order import OrderStatus
from ordersync.ports import JournalEntry
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
