"""The fleet catalog on PostgreSQL: accounts as rows with a store schema each, workers as heartbeats."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from ordersync.domain.errors import ConfigError
from ordersync.fleet.catalog import Catalog, account_store_url
from ordersync.ports import Alert
from ordersync.store import open_store

pytestmark = [pytest.mark.postgres]


def test_each_account_gets_a_store_of_its_own_and_nothing_leaks_between_them(catalog: Catalog) -> None:
    now = datetime.now(UTC)
    alice, bob = catalog.add("alice", now), catalog.add("bob", now)
    assert alice.store_schema != bob.store_schema
    alice_store = open_store(account_store_url(catalog.url, alice.store_schema))
    bob_store = open_store(account_store_url(catalog.url, bob.store_schema))
    try:
        with alice_store.transaction() as tx:
            tx.set_cursor("where", "alice")
        with bob_store.transaction() as tx:
            assert tx.get_cursor("where") is None, "an account's rows are invisible from another's store"
    finally:
        alice_store.close()
        bob_store.close()
    assert [a.account_id for a in catalog.accounts()] == ["alice", "bob"]


def test_a_duplicate_or_malformed_account_is_refused_in_one_line(catalog: Catalog) -> None:
    catalog.add("alice", datetime.now(UTC))
    with pytest.raises(ConfigError, match="already registered"):
        catalog.add("alice", datetime.now(UTC))
    with pytest.raises(ConfigError, match="letters, digits"):
        catalog.add("bad name; DROP TABLE", datetime.now(UTC))
    with pytest.raises(ConfigError, match="no account"):
        catalog.set_enabled("nobody", False)


def test_a_disabled_account_leaves_the_enabled_list_and_comes_back(catalog: Catalog) -> None:
    catalog.add("alice", datetime.now(UTC))
    catalog.add("bob", datetime.now(UTC))
    catalog.set_enabled("alice", False)
    assert [a.account_id for a in catalog.accounts(enabled_only=True)] == ["bob"]
    catalog.set_enabled("alice", True)
    assert [a.account_id for a in catalog.accounts(enabled_only=True)] == ["alice", "bob"]


def test_a_worker_that_stops_heartbeating_drops_out_and_one_that_leaves_drops_out_at_once(
    catalog: Catalog,
) -> None:
    catalog.heartbeat("w-silent", ttl_s=0.3)
    catalog.heartbeat("w-leaving", ttl_s=30)
    assert catalog.live_workers() == ["w-leaving", "w-silent"]
    catalog.leave("w-leaving")
    assert catalog.live_workers() == ["w-silent"]
    time.sleep(0.5)  # database time: its heartbeat has expired
    assert catalog.live_workers() == []


def test_the_catalog_refuses_sqlite_with_a_reason() -> None:
    with pytest.raises(ConfigError, match="PostgreSQL"):
        Catalog("sqlite:///x.db")


def test_states_name_each_accounts_lease_holder_and_open_alerts_from_its_own_store(catalog: Catalog) -> None:
    now = datetime.now(UTC)
    catalog.add("alice", now)
    catalog.add("bob", now)
    store = open_store(catalog.account_url("alice"))
    try:
        with store.transaction() as tx:
            tx.raise_alert(Alert("stream_down", "trade_updates", "down", now))
        lease = store.lease("ordersync:alice-key")
        assert lease.try_acquire()
        holder = getattr(lease, "holder", None)
        assert catalog.states() == {"alice": (holder, 1), "bob": (None, 0)}
        lease.release()
        assert catalog.states()["alice"] == (None, 1), "a released lease is nobody's"
    finally:
        store.close()
