"""A fleet worker's per-account store holds a bounded number of PostgreSQL connections, counted by the server.

A pool keeps as many connections as it once used at the same time; 50 accounts' engines at SQLAlchemy's
default (5 kept) took all of a default server's 100 connections (docs/operations.md §8, "Capacity"). With
``pool_size`` the store keeps that many between uses and closes the extra ones it needed for a moment.
"""

from __future__ import annotations

import uuid
from contextlib import ExitStack

import pytest
from sqlalchemy import create_engine, text

from ordersync.config import FleetSettings
from ordersync.store import open_store

pytestmark = [pytest.mark.postgres]


def _connections(url: str, application: str) -> int:
    admin = create_engine(url)
    try:
        with admin.connect() as conn:
            query = text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :a")
            return int(conn.execute(query, {"a": application}).scalar() or 0)
    finally:
        admin.dispose()


def test_a_store_with_pool_size_one_keeps_one_connection_after_using_three(postgres_url: str) -> None:
    application = f"ordersync-pool-{uuid.uuid4().hex[:8]}"
    url = f"{postgres_url}&application_name={application}"
    store = open_store(url, pool_size=1)
    try:
        with ExitStack() as held:  # three at once, as nested units of work would take them
            for _ in range(3):
                held.enter_context(store.transaction())
            assert _connections(postgres_url, application) == 3
        assert _connections(postgres_url, application) == 1
    finally:
        store.close()
    assert _connections(postgres_url, application) == 0


def test_a_store_without_pool_size_keeps_what_it_used(postgres_url: str) -> None:
    # the default the fleet no longer uses: what made 50 accounts fill the server
    application = f"ordersync-pool-{uuid.uuid4().hex[:8]}"
    store = open_store(f"{postgres_url}&application_name={application}")
    try:
        with ExitStack() as held:
            for _ in range(3):
                held.enter_context(store.transaction())
        assert _connections(postgres_url, application) == 3
    finally:
        store.close()


def test_the_store_lease_expires_after_the_ttl_it_was_opened_with(postgres_url: str) -> None:
    store = open_store(postgres_url, pool_size=1, lease_ttl_s=9.0, lease_renew_s=2.0)
    try:
        lease = store.lease("ordersync:acct")
        assert lease.try_acquire()
        reader = create_engine(postgres_url)
        with reader.connect() as conn:
            left = conn.execute(text("SELECT extract(epoch FROM expires_at - now()) FROM leases")).scalar()
        reader.dispose()
        assert 8.0 < float(left) <= 9.0
    finally:
        store.close()


def test_fleet_lease_renewal_must_come_before_expiry() -> None:
    with pytest.raises(ValueError, match="lease_renew_s"):
        FleetSettings(lease_ttl_s=2.0, lease_renew_s=2.0)
    assert FleetSettings(lease_ttl_s=10.0, lease_renew_s=2.0).lease_ttl_s == 10.0
