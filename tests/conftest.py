"""Fixtures every test layer shares: a fresh PostgreSQL schema, a SQLite file, a fleet catalog.

PostgreSQL runs for real on 127.0.0.1:5432 (override with ORDERSYNC_TEST_PG_URL). When the server is
unreachable the postgres tests are skipped locally and FAIL when ``CI=true``: CI must never go green
without PostgreSQL.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from ordersync.fleet.catalog import Catalog
from ordersync.testing import fresh_postgres_schema, postgres_unreachable

PG_URL = os.environ.get("ORDERSYNC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def require_postgres() -> None:
    """Skip (locally) or fail (CI) when the PostgreSQL server does not answer."""
    reason = postgres_unreachable(PG_URL)
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: postgres tests must run)")
    pytest.skip(reason)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL whose connections see only a new, empty schema, dropped with its tables afterwards."""
    require_postgres()
    with fresh_postgres_schema(PG_URL) as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file in the test's temporary directory."""
    return f"sqlite:///{tmp_path / 'ordersync.db'}"


@pytest.fixture
def catalog(postgres_url: str) -> Iterator[Catalog]:
    """A fleet catalog in a fresh schema; the account schemas it creates are dropped with it."""
    catalog = Catalog(postgres_url)
    yield catalog
    schemas = [a.store_schema for a in catalog.accounts()]
    catalog.close()
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for schema in schemas:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()
