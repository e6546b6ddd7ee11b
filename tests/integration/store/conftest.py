"""Store backends for the contract suite: InMemoryStore, SQLite (a WAL file under tmp_path) and PostgreSQL
(a fresh schema per test; ``postgres_url`` and ``sqlite_url`` come from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from ordersync.ports import Store
from ordersync.store import open_store
from ordersync.testing import InMemoryStore

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


# "-kept": the engine's store, which keeps open orders in memory between transactions (keep_orders)
KEPT_PARAMS = [pytest.param("sqlite-kept"), pytest.param("postgres-kept", marks=pytest.mark.postgres)]


@pytest.fixture(params=[pytest.param("memory"), *SQL_PARAMS, *KEPT_PARAMS])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "memory":
        first = InMemoryStore()
        chosen = Backend("memory", lambda: first if not chosen.opened else first.reopen())
    else:
        database, _, kept = str(request.param).partition("-")
        url = str(request.getfixturevalue(f"{database}_url"))
        chosen = Backend(request.param, lambda: open_store(url, keep_orders=bool(kept)))
    yield chosen
    for store in chosen.opened:
        store.close()


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.open()
