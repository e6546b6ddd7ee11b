"""Leases that make exactly one of several ``ordersync run`` instances active on an account.

PostgreSQL: a row per lease with a holder, an expiry in database time and a fencing token that grows by one
at every takeover (docs/operations.md, "High availability"). A session advisory lock, which this replaced,
is freed only when its connection dies: a frozen process (SIGSTOP, a long GC pause, a stuck disk) kept it
forever. With an expiry, any silence longer than ``ttl_s`` hands the lease over; with the token, whatever
the old holder writes afterwards is refused by the store (``fence``) and it sends nothing more to the broker
(``held`` is false past its own deadline). SQLite: an exclusive ``flock`` on a file beside the database,
freed by the OS when the process dies (one host only).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import socket
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO

import structlog
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from ordersync.domain.errors import OrderSyncError

log = structlog.get_logger("ordersync.lease")

DEFAULT_TTL_S = 3.5  # a silent holder is replaced within this + one standby poll (< 5 s)
DEFAULT_RENEW_S = 1.0

_ACQUIRE = text(
    """
    INSERT INTO leases (name, holder, token, expires_at)
    VALUES (:name, :holder, 1, now() + make_interval(secs => :ttl))
    ON CONFLICT (name) DO UPDATE
        SET holder = EXCLUDED.holder, token = leases.token + 1, expires_at = EXCLUDED.expires_at
        WHERE leases.expires_at < now()
    RETURNING token
    """
)
_RENEW = text(
    """
    UPDATE leases SET expires_at = now() + make_interval(secs => :ttl)
    WHERE name = :name AND holder = :holder AND token = :token
    RETURNING token
    """
)
# a write commits only while the token is current and at least a margin (ttl / 4) away from expiring, so a
# holder that stalls for less than that between this check and its commit cannot land a write after a takeover
_FENCE = text(
    """
    SELECT token FROM leases
    WHERE name = :name AND holder = :holder AND token = :token
      AND expires_at > now() + make_interval(secs => :margin)
    """
)
_RELEASE = text(
    """
    UPDATE leases SET expires_at = now() - interval '1 second'
    WHERE name = :name AND holder = :holder AND token = :token
    """
)


def lock_key(name: str) -> int:
    """Return a stable signed 64-bit advisory-lock key for ``name`` (e.g. the account)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class LeaseLost(OrderSyncError):
    """A store write was refused: this instance's fencing token is no longer the current one."""


class PostgresLease:
    """A lease row with a heartbeat, an expiry and a monotonic fencing token.

    The holder renews ``expires_at`` (database time) every ``renew_every_s``; a holder that goes silent for
    any reason (killed, frozen, cut off from the database, a stalled event loop) stops renewing and a
    standby takes the row once it has expired, bumping ``token``. The old holder learns it on its next
    renewal (the row no longer carries its token) and, before that, from its own monotonic deadline: it
    never assumes the lease beyond ``ttl_s`` after the last renewal it *sent*. ``fence`` runs in every store
    transaction before commit, so a resumed holder's writes are refused once its token is stale.
    """

    def __init__(
        self,
        engine: Engine,
        name: str,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        renew_every_s: float = DEFAULT_RENEW_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < renew_every_s < ttl_s:
            raise ValueError(f"renew_every_s must be positive and below ttl_s, was {renew_every_s}/{ttl_s}")
        self._engine = engine
        # the row's key is a digest: the name carries the API key id, which the database never holds in clear
        self._name = f"lease:{hashlib.sha256(name.encode()).hexdigest()[:32]}"
        self._ttl_s = ttl_s
        self._renew_every_s = renew_every_s
        self._monotonic = monotonic
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.token: int | None = None
        self._renewed_at = 0.0  # monotonic time the last successful renewal was sent
        self._margin_s = ttl_s / 4
        self._lost = False

    @property
    def lost(self) -> bool:
        """True once the lease is known to be another instance's (not merely unconfirmed)."""
        return self._lost

    def try_acquire(self) -> bool:
        """Take the lease if it is free or expired (bumping the token); True if this instance holds it."""
        if self.held():
            return True
        sent = self._monotonic()
        try:
            with self._engine.begin() as conn:
                token = conn.execute(_ACQUIRE, self._params(token=None)).scalar()
        except DBAPIError as e:
            log.warning("lease.acquire_failed", error=_short(e))
            return False
        if token is None:
            return False
        self.token, self._renewed_at, self._lost = int(token), sent, False
        log.info("lease.acquired", lease=self._name, generation=self.token, holder=self.holder)
        return True

    def held(self) -> bool:
        """True while this instance may act: renewed within ``ttl_s`` and not superseded.

        Renews when due; a database error leaves the lease *unconfirmed* (False until a renewal succeeds,
        ``lost`` stays False) rather than lost, so an instance cut off from its database pauses its broker
        writes and resumes when the database answers again, if nobody took over meanwhile."""
        if self.token is None or self._lost:
            return False
        now = self._monotonic()
        if now - self._renewed_at >= self._renew_every_s:
            self._renew(now)
        # stop acting a margin before the lease can expire at the database (clocks drift, requests take time)
        return not self._lost and self._monotonic() - self._renewed_at < self._ttl_s - self._margin_s

    def fence(self, conn: Connection) -> None:
        """Refuse the transaction on ``conn`` unless this instance's token is current and unexpired.

        Raises:
            LeaseLost: the token is stale or expired (the transaction is rolled back).
        """
        if self.token is None or self._lost:
            raise LeaseLost(f"lease {self._name} is not held by this instance: write refused")
        current = conn.execute(_FENCE, self._params(self.token)).scalar()
        if current is None:
            raise LeaseLost(f"lease {self._name} token {self.token} is stale or expired: write refused")

    def release(self) -> None:
        """Expire the lease now so a standby takes over at its next poll."""
        if self.token is None:
            return
        try:
            with self._engine.begin() as conn:
                conn.execute(_RELEASE, self._params(self.token))
        except DBAPIError as e:
            log.warning("lease.release_failed", error=_short(e))
        self.token = None

    def _renew(self, sent: float) -> None:
        try:
            with self._engine.begin() as conn:
                renewed = conn.execute(_RENEW, self._params(self.token)).scalar()
        except DBAPIError as e:
            log.warning("lease.renew_failed", lease=self._name, error=_short(e))
            return
        if renewed is None:
            self._lost = True
            log.error(
                "lease.lost", lease=self._name, generation=self.token, detail="another instance holds it"
            )
            return
        self._renewed_at = sent

    def _params(self, token: int | None) -> dict[str, object]:
        return {
            "name": self._name,
            "holder": self.holder,
            "token": token,
            "ttl": self._ttl_s,
            "margin": self._margin_s,
        }


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

    @property
    def lost(self) -> bool:
        """Never: only this process can release the lock, and the OS frees it only when the process dies."""
        return False

    def release(self) -> None:
        """Unlock the file."""
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def _short(error: Exception) -> str:
    return " ".join(str(getattr(error, "orig", None) or error).split())[:200]
