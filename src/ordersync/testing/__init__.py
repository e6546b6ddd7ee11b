"""Test doubles and factories shipped with ordersync: FakeClock, order and event factories, InMemoryStore.

Imports only ``ordersync.domain`` and ``ordersync.ports`` (plus the standard library). Production code never
imports this module (an import-linter contract forbids it). ``InMemoryStore`` keeps the SQLAlchemy store's
semantics, and the store contract suite (tests/integration/store) runs against both to keep it honest:
transactions commit on success and roll back on any exception, ``save_order`` checks the version,
a duplicated execution id is refused, alerts are unique while open, and values come back the way the
database returns them (UTC datetimes, execution ids from the recorded fills, JSON journal payloads).

The parts: ``clock`` (FakeClock, T0), ``factories`` (orders, views, observations, fills), ``memory_store``
(InMemoryStore), ``postgres`` (the real server the tests use) and ``waiting`` (the one polling loop).
Everything is importable from ``ordersync.testing`` itself.
"""

from __future__ import annotations

from ordersync.testing.clock import T0, FakeClock
from ordersync.testing.factories import make_fill, make_order, make_view, observe, resting_parent
from ordersync.testing.memory_store import InMemoryStore, InMemoryTransaction
from ordersync.testing.postgres import fresh_postgres_schema, postgres_unreachable
from ordersync.testing.waiting import wait_until, wait_until_async

__all__ = [
    "T0",
    "FakeClock",
    "InMemoryStore",
    "InMemoryTransaction",
    "fresh_postgres_schema",
    "make_fill",
    "make_order",
    "make_view",
    "observe",
    "postgres_unreachable",
    "resting_parent",
    "wait_until",
    "wait_until_async",
]
