"""The Store port on SQLAlchemy Core: one connection-scoped transaction per unit of work.

Core rather than the ORM: the engine applies thousands of events per second through a single writer,
and a row-per-statement API with no identity map is both faster and closer to what is journaled.
Optimistic versioning (``version`` column) turns a second concurrent writer into ConcurrencyConflict
instead of a silent lost update. The transaction itself is ``store/transaction.py``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, select
from sqlalchemy.exc import IntegrityError

from ordersync.domain.errors import ConcurrencyConflict
from ordersync.ports import JournalEntry
from ordersync.store import tables as t
from ordersync.store.known import Known
from ordersync.store.lease import DEFAULT_RENEW_S, DEFAULT_TTL_S, FileLease, PostgresLease
from ordersync.store.migrate import upgrade
from ordersync.store.reads import Decoded
from ordersync.store.transaction import SqlAlchemyTransaction

__all__ = ["SqlAlchemyStore", "SqlAlchemyTransaction", "open_store"]


class SqlAlchemyStore:
    """The Store port on a SQLAlchemy engine (SQLite file or PostgreSQL URL)."""

    def __init__(
        self,
        engine: Engine,
        *,
        keep_orders: bool = False,
        lease_ttl_s: float = DEFAULT_TTL_S,
        lease_renew_s: float = DEFAULT_RENEW_S,
    ) -> None:
        self._engine = engine
        self._lease_ttl_s, self._lease_renew_s = lease_ttl_s, lease_renew_s  # ``lease``'s defaults
        self._fence: Callable[[Connection], None] | None = None
        # ``keep_orders``: open orders as last committed through this store, which transactions then read
        # from here instead of the database. For the single writer only (the engine's store): every save
        # still checks the version in its UPDATE, so a write by anyone else surfaces as
        # ConcurrencyConflict (which empties this); but a mere reader would not see others' writes.
        self._kept: dict[str, Known] | None = {} if keep_orders else None
        self._decoded = Decoded()  # what SQLite rows decoded to (``reads``): exact whatever the writer

    @property
    def url(self) -> str:
        """Return the database URL with any password hidden."""
        return self._engine.url.render_as_string(hide_password=True)

    @contextmanager
    def transaction(self) -> Iterator[SqlAlchemyTransaction]:
        """Open a transaction: committed when the block ends normally, rolled back on any exception.

        Raises:
            ConcurrencyConflict: when a unique key shows another writer got there first.
        """
        try:
            with self._engine.begin() as conn:
                tx = SqlAlchemyTransaction(conn, self._kept, self._decoded)
                yield tx
                tx.flush()
                if self._fence is not None:
                    self._fence(conn)  # a stale lease holder's writes never commit (store/lease.py)
        except IntegrityError as e:
            self.forget_orders()
            raise ConcurrencyConflict(f"conflicting write: {e.orig}") from e
        except ConcurrencyConflict:
            self.forget_orders()  # another writer: what this store kept may be stale
            raise
        if self._kept is not None:
            tx.keep(self._kept)

    def forget_orders(self) -> None:
        """Drop the orders kept in memory: the next reads go to the database."""
        if self._kept is not None:
            self._kept.clear()

    def read_journal(self, after_seq: int = 0, limit: int = 10_000) -> list[JournalEntry]:
        """Return journal entries in order, after ``after_seq``."""
        query = select(t.journal).where(t.journal.c.seq > after_seq).order_by(t.journal.c.seq).limit(limit)
        with self._engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            JournalEntry(r["ts"], r["kind"], r["client_order_id"], json.loads(r["payload"]), r["seq"])
            for r in rows
        ]

    def lease(
        self,
        name: str,
        *,
        ttl_s: float | None = None,
        renew_every_s: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> PostgresLease | FileLease:
        """Return the lease that makes one instance active for ``name`` on this database.

        ``ttl_s``/``renew_every_s``: the store's own (``open_store``) unless given. The lease runs its
        statements on this store's connection pool, so it adds no connection of its own beyond the pool's.
        On PostgreSQL this store's transactions are fenced on it from now on: once another instance has
        taken the lease over, every transaction of this store is rolled back with ``LeaseLost``."""
        if self._engine.dialect.name == "postgresql":
            lease = PostgresLease(
                self._engine,
                name,
                ttl_s=self._lease_ttl_s if ttl_s is None else ttl_s,
                renew_every_s=self._lease_renew_s if renew_every_s is None else renew_every_s,
                monotonic=monotonic,
            )
            self._fence = lease.fence
            return lease
        database = self._engine.url.database
        path = Path(database + ".lease") if database and database != ":memory:" else Path("ordersync.lease")
        return FileLease(path)

    def close(self) -> None:
        self._engine.dispose()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    # WAL lets readers (ordersync status) run beside the writer; FULL fsyncs each commit, so a
    # committed journal entry survives power loss, not only a process crash.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


_POSTGRES_CONNECT_ARGS: dict[str, object] = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 2,
    "tcp_user_timeout": 5000,
}


def _postgres_session(dbapi_connection: Any, _record: Any) -> None:
    # A frozen lease holder (SIGSTOP, a GC pause) keeps its row locks while its connection stays open: the
    # kernel answers keepalives for a stopped process. The server ends what it left: a transaction idle for
    # 5 s, and a statement running for 10 s (one frozen mid-statement: a COPY waiting for the rest of its
    # rows, a result nobody reads). Until then the standby's statements give up on a row lock after 0.5 s
    # instead of blocking its event loop past its own lease, and retry (docs/operations.md, "High
    # availability"). Set per connection, so a URL's own ``options`` stay intact; migrations lift the
    # statement limit for themselves (an index on a large table takes longer).
    cursor = dbapi_connection.cursor()
    cursor.execute("SET lock_timeout = 500")
    cursor.execute("SET statement_timeout = 10000")
    cursor.execute("SET idle_in_transaction_session_timeout = 5000")
    cursor.close()
    dbapi_connection.commit()


def open_store(
    url: str,
    *,
    migrate: bool = True,
    keep_orders: bool = False,
    pool_size: int | None = None,
    lease_ttl_s: float = DEFAULT_TTL_S,
    lease_renew_s: float = DEFAULT_RENEW_S,
) -> SqlAlchemyStore:
    """Open (and by default migrate to the latest schema) the store at ``url``.

    ``url`` is a SQLAlchemy URL (``sqlite:///path.db``, ``postgresql+psycopg://...``). ``keep_orders``:
    keep open orders in memory between transactions, for the engine's own store only (see
    ``SqlAlchemyStore``): a store that only reads would keep showing what it read first.

    ``pool_size``: PostgreSQL connections kept open between uses (None: SQLAlchemy's default, 5). A fleet
    worker runs one store per account, and a pool keeps as many connections as it ever used at once: 50
    accounts at 2 each filled a default server's 100 (docs/operations.md §8). With ``pool_size`` the pool
    keeps that many and closes any extra connection when it is returned (unbounded overflow: an engine
    that needs a second connection for a moment, a lease renewal inside a write, never waits for its own
    first one, which would deadlock its single-threaded loop). ``lease_ttl_s``/``lease_renew_s``: the
    defaults of ``SqlAlchemyStore.lease``.
    """
    postgres = url.startswith("postgresql")
    # a database behind a dead network must fail a query within seconds, not after the kernel's TCP
    # timeouts (minutes): the lease's deadline and the engine's loops depend on it (docs/operations.md)
    connect_args = _POSTGRES_CONNECT_ARGS if postgres else {}
    pool: dict[str, Any] = (
        {"pool_size": pool_size, "max_overflow": -1} if postgres and pool_size is not None else {}
    )
    engine = create_engine(url, future=True, pool_pre_ping=postgres, connect_args=connect_args, **pool)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    elif postgres:
        event.listen(engine, "connect", _postgres_session)
    if migrate:
        upgrade(engine)
    return SqlAlchemyStore(
        engine, keep_orders=keep_orders, lease_ttl_s=lease_ttl_s, lease_renew_s=lease_renew_s
    )
