"""The HA lease: of two instances on one database, exactly one holds it; silence of any kind hands it over.

PostgreSQL leases expire unless renewed, and every takeover bumps a fencing token: a holder that was
killed, frozen or cut off stops acting past its own deadline, loses the lease to a standby once it has
expired at the database, and its store writes are refused from then on. SQLite uses a file lock that the
OS frees when the process dies (one host).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError

from ordersync.domain.ids import ClientOrderId
from ordersync.ports import JournalEntry
from ordersync.store import SqlAlchemyStore, open_store
from ordersync.store.lease import FileLease, LeaseLost, PostgresLease
from ordersync.testing import wait_until

TTL_S, RENEW_S = 0.8, 0.2  # short, so a takeover takes under a second of real time


class FakeMonotonic:
    """The holder's own clock, moved by hand: a frozen process does not see its time pass until it resumes."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _journal(store: SqlAlchemyStore, kind: str) -> None:
    with store.transaction() as tx:
        tx.journal(JournalEntry(datetime.now(UTC), kind, ClientOrderId("x"), {}))


@pytest.fixture
def two_stores(postgres_url: str) -> Iterator[tuple[SqlAlchemyStore, SqlAlchemyStore]]:
    first, second = open_store(postgres_url), open_store(postgres_url)
    yield first, second
    first.close()
    second.close()


def _pair(
    stores: tuple[SqlAlchemyStore, SqlAlchemyStore], clock: FakeMonotonic | None = None
) -> tuple[PostgresLease, PostgresLease]:
    name = f"ordersync:test-{uuid.uuid4().hex}"
    first, second = stores
    if clock is None:
        active = first.lease(name, ttl_s=TTL_S, renew_every_s=RENEW_S)
    else:
        active = first.lease(name, ttl_s=TTL_S, renew_every_s=RENEW_S, monotonic=clock)
    standby = second.lease(name, ttl_s=TTL_S, renew_every_s=RENEW_S)
    assert isinstance(active, PostgresLease)
    assert isinstance(standby, PostgresLease)
    return active, standby


@pytest.mark.postgres
def test_only_one_instance_holds_the_lease_and_a_killed_holder_is_replaced_after_expiry(
    two_stores: tuple[SqlAlchemyStore, SqlAlchemyStore],
) -> None:
    active, standby = _pair(two_stores)
    assert active.try_acquire()
    assert active.held()
    assert not standby.try_acquire(), "two instances must never both hold the lease"
    first_token = active.token
    # SIGKILL: the holder simply stops renewing
    wait_until(standby.try_acquire, timeout_s=5, what="the standby to take the expired lease")
    assert standby.token == (first_token or 0) + 1, "every takeover bumps the fencing token"
    standby.release()


@pytest.mark.postgres
def test_a_frozen_holder_is_replaced_and_its_writes_are_refused_when_it_resumes(
    two_stores: tuple[SqlAlchemyStore, SqlAlchemyStore],
) -> None:
    clock = FakeMonotonic()
    active, standby = _pair(two_stores, clock)
    active_store, standby_store = two_stores
    assert active.try_acquire()
    _journal(active_store, "before_freeze")  # the holder writes while it holds the lease
    # frozen (SIGSTOP): no renewals, no writes; its own clock does not move either
    wait_until(standby.try_acquire, timeout_s=5, what="the standby to take the lease from a frozen holder")
    _journal(standby_store, "standby_active")
    clock.now += 30  # SIGCONT: 30 s have passed for the holder too
    assert not active.held(), "past its deadline a resumed holder must not act before renewing"
    assert active.lost, "its renewal finds another token: lost, not merely unconfirmed"
    with pytest.raises(LeaseLost):
        _journal(active_store, "stale_write")
    kinds = [e.kind for e in standby_store.read_journal()]
    assert "stale_write" not in kinds
    assert kinds[-2:] == ["before_freeze", "standby_active"]
    standby.release()


@pytest.mark.postgres
def test_a_write_in_flight_when_the_lease_expires_is_refused_even_before_a_takeover(
    two_stores: tuple[SqlAlchemyStore, SqlAlchemyStore],
) -> None:
    active, _ = _pair(two_stores)
    active_store, _ = two_stores
    assert active.try_acquire()
    wait_until(lambda: _expired(active_store, active), timeout_s=5, what="the lease to expire unrenewed")
    with pytest.raises(LeaseLost):
        _journal(active_store, "late_write")


def _expired(store: SqlAlchemyStore, lease: PostgresLease) -> bool:
    try:
        with store._engine.begin() as conn:
            lease.fence(conn)
    except LeaseLost:
        return True
    return False


@pytest.mark.postgres
def test_a_holder_cut_off_from_the_database_pauses_and_resumes_if_nobody_took_over(
    two_stores: tuple[SqlAlchemyStore, SqlAlchemyStore],
) -> None:
    clock = FakeMonotonic()
    active, _ = _pair(two_stores, clock)
    assert active.try_acquire()
    real_engine = active._engine
    from sqlalchemy import create_engine

    active._engine = create_engine(
        "postgresql+psycopg://postgres@127.0.0.1:1/none", connect_args={"connect_timeout": 1}
    )
    clock.now += TTL_S  # the database is unreachable for longer than the lease
    assert not active.held(), "unconfirmed: no broker writes while the database cannot be reached"
    assert not active.lost, "unreachable is not lost: nobody has been seen to take over"
    active._engine = real_engine  # the database is back; nobody else wanted the lease
    clock.now += RENEW_S
    assert active.held(), "the same token is renewed: the instance resumes"
    active.release()


@pytest.mark.postgres
def test_release_hands_over_at_once(two_stores: tuple[SqlAlchemyStore, SqlAlchemyStore]) -> None:
    active, standby = _pair(two_stores)
    assert active.try_acquire()
    active.release()
    assert standby.try_acquire(), "a released lease is free immediately"
    standby.release()


def test_sqlite_only_one_process_holds_the_file_lock_and_a_dead_holder_frees_it(sqlite_url: str) -> None:
    first_store, second_store = open_store(sqlite_url), open_store(sqlite_url)
    name = f"ordersync:test-{uuid.uuid4().hex}"
    active, standby = first_store.lease(name), second_store.lease(name)
    assert isinstance(active, FileLease)
    try:
        assert active.try_acquire()
        assert not standby.try_acquire()
        handle = active._file
        assert handle is not None
        handle.close()  # what SIGKILL does: the descriptor closes without unlocking
        active._file = None
        assert standby.try_acquire()
    finally:
        standby.release()
        active.release()
        first_store.close()
        second_store.close()


def _set_cursor(store: SqlAlchemyStore, value: str) -> None:
    with store.transaction() as tx:
        tx.set_cursor("contended", value)


@pytest.mark.postgres
@pytest.mark.parametrize("where", ["between statements", "inside a statement"])
def test_a_holder_frozen_inside_a_write_neither_blocks_the_new_active_nor_keeps_its_locks(
    two_stores: tuple[SqlAlchemyStore, SqlAlchemyStore], where: str
) -> None:
    # SIGSTOP after a write, before its commit: the connection stays open (the kernel answers keepalives for a
    # stopped process) and so do its row locks. Frozen between statements the transaction is idle (ended by
    # idle_in_transaction_session_timeout); frozen inside one (a COPY waiting for its rows, a result nobody
    # reads: here a long sleep) the statement is active (ended by statement_timeout). Meanwhile the new
    # active's statement on that row must fail promptly (lock_timeout) so its loop can renew its own lease
    # and retry; once the server has ended the frozen work, the retry gets through.
    frozen_store, active_store = two_stores
    _set_cursor(frozen_store, "before")
    locked, resume = threading.Event(), threading.Event()
    outcome: list[BaseException | None] = []

    def frozen_holder() -> None:
        try:
            with frozen_store.transaction() as tx:
                tx.set_cursor("contended", "frozen")  # the row lock is taken here
                locked.set()
                if where == "inside a statement":
                    tx._conn.execute(text("SELECT pg_sleep(60)"))
                resume.wait(30)  # SIGSTOP ... SIGCONT
            outcome.append(None)
        except BaseException as e:  # the outcome is what the test asserts
            outcome.append(e)

    holder = threading.Thread(target=frozen_holder, daemon=True)
    holder.start()
    assert locked.wait(10)
    with pytest.raises(OperationalError) as blocked:
        _set_cursor(active_store, "active")
    sqlstate = getattr(blocked.value.orig, "sqlstate", None)
    assert sqlstate == "55P03", "a lock timeout, not a hang or another error"
    wait_until(lambda: _try_set_cursor(active_store, "active"), timeout_s=20, what="the frozen lock to go")
    resume.set()
    holder.join(10)
    assert outcome, "the frozen holder's thread must have finished"
    assert isinstance(outcome[0], DBAPIError), "the server ended it: it must not commit"
    with active_store.transaction() as tx:
        assert tx.get_cursor("contended") == "active"


def _try_set_cursor(store: SqlAlchemyStore, value: str) -> bool:
    try:
        _set_cursor(store, value)
    except OperationalError:
        return False
    return True
