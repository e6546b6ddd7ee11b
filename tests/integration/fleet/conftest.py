"""A fleet catalog in a fresh PostgreSQL schema; the account schemas it creates are dropped with it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from ordersync.fleet.catalog import Catalog


@pytest.fixture
def catalog(postgres_url: str) -> Iterator[Catalog]:
    catalog = Catalog(postgres_url)
    yield catalog
    schemas = [a.store_schema for a in catalog.accounts()]
    catalog.close()
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for schema in schemas:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()
