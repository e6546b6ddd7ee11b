"""Store backends for the contract suite: InMemoryStore, SQLite (a WAL file under tmp_path) and PostgreSQL.

PostgreSQL runs for real on 127.0.0.1:5432 (override with ORDERSYNC_TEST_PG_URL), each test in a fresh
schema selected through ``search_path``, dropped afterwards. When the server is unreachable the postgres
tests are skipped locally, and fail when ``CI=true``: CI must never go green without PostgreSQL.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from ordersync.ports import Store
from ordersync.store import open_store
from ordersync.testing import InMemoryStore

PG_URL = os.environ.get("ORDERSYNC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _postgres_or_skip() -> None:
    engine = create_engine(PG_URL)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as e:
        reason = f"PostgreSQL unreachable at {PG_URL}: {e.orig}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason} (CI=true: postgres tests must run)")
        pytest.skip(reason)
    finally:
        engine.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL whose connections see only a fresh, empty schema."""
    _postgres_or_skip()
    schema = f"ordersync_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ordersync.db'}"


SQL_PARAMS = [pytest.param("sqlite"), pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=SQL_PARAMS)
def db_url(request: pytest.FixtureRequest) -> str:
    """The URL of an empty SQL database, SQLite or PostgreSQL."""
    return str(request.getfixturevalue(f"{request.param}_url"))


@dataclass
class Backend:
    """Opens stores on one database; every ``open()`` after the first is a restart on the same data."""

    name: str
    _open: Callable[[], Store]
    opened: list[Store] = field(default_factory=list)

    def open(self) -> Store:
        store = self._open()
        self.opened.append(store)
        return store


@pytest.fixture(params=[pytest.param("memory"), *SQL_PARAMS])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "memory":
        first = InMemoryStore()
        chosen = Backend("memory", lambda: first if not chosen.opened else first.reopen())
    else:
        url = str(request.getfixturevalue(f"{request.param}_url"))
        chosen = Backend(request.param, lambda: open_store(url))
    yield chosen
    for store in chosen.opened:
        store.close()


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.open()
