"""Engine.start() never blocks forever: a broker failing at start-up costs bounded retries, then the engine
starts and keeps trying its first read in the background."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime

from ordersync.domain.errors import BrokerUnavailable
from ordersync.domain.events import BrokerOrderView, FillActivity
from ordersync.domain.ids import Symbol
from ordersync.engine import Engine, EngineOptions
from ordersync.ports import PositionView
from ordersync.testing import FakeClock, InMemoryStore


class DownBroker:
    """Answers 503 to every read until ``up`` is set."""

    def __init__(self) -> None:
        self.up = False
        self.reads = 0

    async def list_orders(
        self, status: str, after: datetime | None = None, limit: int = 500, direction: str = "asc"
    ) -> Sequence[BrokerOrderView]:
        self.reads += 1
        if not self.up:
            raise BrokerUnavailable("503 service unavailable", status_code=503)
        return []

    async def positions(self) -> dict[Symbol, PositionView]:
        if not self.up:
            raise BrokerUnavailable("503 service unavailable", status_code=503)
        return {}

    async def fill_activities(
        self, after: datetime | None, page_token: str | None = None, page_size: int = 100
    ) -> Sequence[FillActivity]:
        return []


async def test_start_returns_after_bounded_retries_and_the_first_read_happens_once_the_broker_is_back() -> (
    None
):
    broker = DownBroker()
    store = InMemoryStore()
    options = EngineOptions(startup_read_attempts=3, lookup_backoff_base_s=0.01, lookup_backoff_cap_s=0.02)
    engine = Engine(broker=broker, store=store, clock=FakeClock(), options=options)  # type: ignore[arg-type]

    await asyncio.wait_for(engine.start(), timeout=10)  # never forever

    deferred = [e for e in store.read_journal() if e.kind == "startup_read_deferred"]
    assert [e.payload["attempts"] for e in deferred] == [3]
    kinds = [e.kind for e in store.read_journal()]
    assert "reconciled" not in kinds

    broker.up = True
    for _ in range(1000):
        if "reconciled" in [e.kind for e in store.read_journal()]:
            break
        await asyncio.sleep(0.001)
    await engine.stop()
    assert "reconciled" in [e.kind for e in store.read_journal()], "the deferred first read happened"


class SlowBroker(DownBroker):
    """Up, but its first reads take ``delay_s`` of real time (a loaded host, a large account)."""

    def __init__(self, delay_s: float) -> None:
        super().__init__()
        self.up, self.delay_s = True, delay_s

    async def list_orders(
        self, status: str, after: datetime | None = None, limit: int = 500, direction: str = "asc"
    ) -> Sequence[BrokerOrderView]:
        await asyncio.sleep(self.delay_s)
        return await super().list_orders(status, after, limit, direction)


class CountingLease:
    """A lease always held; counts how often the engine checks (and so renews) it."""

    def __init__(self) -> None:
        self.checks: list[float] = []
        self.lost = False

    def try_acquire(self) -> bool:
        return True

    def held(self) -> bool:
        self.checks.append(asyncio.get_running_loop().time())
        return True

    def release(self) -> None:
        pass


async def test_the_lease_is_renewed_during_a_slow_start_up_read_not_only_from_the_first_tick() -> None:
    lease = CountingLease()
    engine = Engine(broker=SlowBroker(1.5), store=InMemoryStore(), clock=FakeClock(), lease=lease)  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()

    began = loop.time()
    await asyncio.wait_for(engine.start(), timeout=10)
    ended = loop.time()
    await engine.stop()

    during = [t for t in lease.checks if began < t < ended]
    gaps = [b - a for a, b in zip([began, *during], [*during, ended], strict=True)]
    assert ended - began >= 1.5, "the start-up read took 1.5 s"
    assert max(gaps) < 1.0, f"the lease went {max(gaps):.1f} s unchecked while the engine started"


class LockTimeout(Exception):
    """What the database driver raises when a row lock is not granted in time (PostgreSQL 55P03)."""


class LockedStore(InMemoryStore):
    """Its first ``locked`` transactions fail as behind a frozen holder's row locks; then they are freed."""

    def __init__(self, locked: int) -> None:
        super().__init__()
        self.locked = locked

    def transaction(self):  # type: ignore[no-untyped-def]
        if self.locked > 0:
            self.locked -= 1
            raise LockTimeout("canceling statement due to lock timeout")
        return super().transaction()


async def test_a_store_error_in_the_first_read_is_retried_and_the_engine_starts_with_its_read_done() -> None:
    # a standby taking over from a holder frozen inside a write meets its row locks (docs/operations.md §3):
    # the start-up read fails on the store, not the broker; that is weather too, never a crash
    broker = DownBroker()
    broker.up = True
    store = LockedStore(locked=2)
    options = EngineOptions(startup_read_attempts=5, lookup_backoff_base_s=0.01, lookup_backoff_cap_s=0.02)
    engine = Engine(broker=broker, store=store, clock=FakeClock(), options=options)  # type: ignore[arg-type]

    await asyncio.wait_for(engine.start(), timeout=10)
    await engine.stop()

    kinds = [e.kind for e in store.read_journal()]
    assert store.locked == 0
    assert "reconciled" in kinds, "the first read was retried and done before start() returned"
    assert "startup_read_deferred" not in kinds
