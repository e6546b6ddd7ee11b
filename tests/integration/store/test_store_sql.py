"""What only the SQL stores have: Alembic migrations, the schema they build, SQLite's durability pragmas."""

from __future__ import annotations

from decimal import Decimal

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from ordersync.domain.ids import ClientOrderId
from ordersync.store import open_store
from ordersync.store.migrate import alembic_config
from ordersync.store.tables import metadata
from ordersync.testing import make_order

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
