"""The HA lease: of two instances on one database, exactly one holds it; a dead holder frees it at once."""

from __future__ import annotations

import uuid

import pytest

from ordersync.store import open_store
from ordersync.store.lease import FileLease, PostgresLease


@pytest.mark.parametrize("db", [pytest.param("sqlite"), pytest.param("postgres", marks=pytest.mark.postgres)])
def test_only_one_instance_holds_the_lease_and_a_dead_holder_frees_it(
    db: str, request: pytest.FixtureRequest
) -> None:
    url = str(request.getfixturevalue(f"{db}_url"))
    first_store, second_store = open_store(url), open_store(url)
    name = f"ordersync:test-{uuid.uuid4().hex}"
    active, standby = first_store.lease(name), second_store.lease(name)
    try:
        assert active.try_acquire()
        assert active.held()
        assert not standby.try_acquire(), "two instances must never both hold the lease"
        assert not standby.held()
        _die(active)  # the process holding it is gone (SIGKILL): the database / the OS frees the lock
        assert standby.try_acquire(), "the standby takes over as soon as the holder is gone"
        assert standby.held()
    finally:
        standby.release()
        active.release()
        first_store.close()
        second_store.close()


def _die(lease: PostgresLease | FileLease) -> None:
    # what a SIGKILL does to the holder: its lock connection / file descriptor closes without unlocking
    if isinstance(lease, PostgresLease):
        conn = lease._conn
        assert conn is not None
        conn.invalidate()
    else:
        handle = lease._file
        assert handle is not None
        handle.close()
        lease._file = None


@pytest.mark.postgres
def test_an_instance_that_lost_its_connection_knows_it_no_longer_holds_the_lease(postgres_url: str) -> None:
    store = open_store(postgres_url)
    lease = store.lease(f"ordersync:test-{uuid.uuid4().hex}")
    try:
        assert lease.try_acquire()
        conn = lease._conn
        assert conn is not None
        conn.connection.dbapi_connection.close()  # type: ignore[union-attr]
        assert not lease.held(), "fencing: a lost connection means a lost lease, so no more broker writes"
    finally:
        lease.release()
        store.close()
