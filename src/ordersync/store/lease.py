"""Leases that make exactly one of several ``ordersync run`` instances active on an account.

PostgreSQL: a session advisory lock on a dedicated connection. The database frees it the moment that
connection dies (process killed, host gone), so a standby takes over within one poll; ``held`` pings the
connection, so an instance that lost it stops writing to the broker (fencing). SQLite: an exclusive
``flock`` on a file beside the database, freed by the OS when the process dies (one host only).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path
from typing import IO

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError


def lock_key(name: str) -> int:
    """Return a stable signed 64-bit advisory-lock key for ``name`` (e.g. the account)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class PostgresLease:
    """A session advisory lock held on its own connection."""

    def __init__(self, engine: Engine, name: str) -> None:
        self._engine = engine
        self._key = lock_key(name)
        self._conn: Connection | None = None

    def try_acquire(self) -> bool:
        """Take the advisory lock if no other session holds it."""
        if self.held():
            return True
        conn = self._engine.connect()
        got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self._key}).scalar())
        conn.commit()
        if got:
            self._conn = conn
        else:
            conn.close()
        return got

    def held(self) -> bool:
        """Ping the lock's connection: if it is gone, so is the lock."""
        if self._conn is None:
            return False
        try:
            self._conn.execute(text("SELECT 1"))
            self._conn.commit()
        except DBAPIError:
            self._drop()
            return False
        return True

    def release(self) -> None:
        """Unlock and close the lock's connection."""
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self._key})
                self._conn.commit()
            except DBAPIError:
                pass
            self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.invalidate()
                self._conn.close()
            except DBAPIError:
                pass
            self._conn = None


class FileLease:
    """An exclusive flock on ``path`` (SQLite deployments: one host)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._file: IO[bytes] | None = None

    def try_acquire(self) -> bool:
        """Take the file lock if no other process holds it."""
        if self._file is not None:
            return True
        handle = self._path.open("a+b")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        handle.truncate(0)
        handle.write(str(os.getpid()).encode())
        handle.flush()
        self._file = handle
        return True

    def held(self) -> bool:
        """True while this process holds the lock (only this process can release it)."""
        return self._file is not None

    def release(self) -> None:
        """Unlock the file."""
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None
