"""An Engine on a FakeBroker, a FakeStream, a FakeClock and an InMemoryStore, stepped by the test.

``FakeClock.sleep`` advances time at once, so the engine's clock-driven loops (poller, ticker, reconciler)
would spin through hours of fake time if started. The harness starts only what waits on events (the
writer, which applies queued observations, and the stream intake) and the test calls the periodic steps
itself (``tick``, ``poll``, ``reconcile``) between ``clock.advance`` calls, so fake time moves only when the
test moves it (or when a background task of the engine sleeps, which is what a backoff is).

Every reach into the engine's internals is in this file, so a refactoring of the runtime changes one place.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from fake_broker import FakeBroker, FakeStream

from ordersync.domain.ids import ClientOrderId
from ordersync.domain.order import Order, OrderRole
from ordersync.domain.protection import PriceRule, ProtectionPlan
from ordersync.engine import Engine, EngineOptions, Notification
from ordersync.engine.watch import ReconcileReport
from ordersync.ports import Alert, JournalEntry, Transaction
from ordersync.testing import FakeClock, InMemoryStore, make_order

OCO_PLAN = ProtectionPlan(take_profit=PriceRule(price=Decimal(110)), stop_loss=PriceRule(price=Decimal(90)))
IDLE_S = 10.0  # real seconds: a bound on waiting, never an assertion on speed


class CountingStore(InMemoryStore):
    """An InMemoryStore that counts its transactions and names what each one read and wrote."""

    def __init__(self) -> None:
        super().__init__()
        self.transactions: list[list[tuple[str, tuple[object, ...]]]] = []

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:  # type: ignore[override]
        calls: list[tuple[str, tuple[object, ...]]] = []
        self.transactions.append(calls)
        with super().transaction() as tx:
            yield _Recording(tx, calls)


class _Recording:
    """A transaction that records each method called on it, then forwards the call."""

    def __init__(self, tx: Transaction, calls: list[tuple[str, tuple[object, ...]]]) -> None:
        self._tx = tx
        self._calls = calls

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._tx, name)

        def recorded(*args: object) -> Any:
            self._calls.append((name, args))
            return method(*args)

        return recorded


class EngineHarness:
    def __init__(
        self,
        options: EngineOptions | None = None,
        *,
        with_stream: bool = True,
        restart_of: EngineHarness | None = None,
    ) -> None:
        """A fresh engine; ``restart_of``: a new engine on that harness's store, broker and clock (a
        restart after its process died)."""
        self.clock = FakeClock() if restart_of is None else restart_of.clock
        self.store = CountingStore() if restart_of is None else restart_of.store
        self.broker = FakeBroker(self.clock) if restart_of is None else restart_of.broker
        self.stream = FakeStream() if with_stream else None
        self.engine = Engine(
            broker=self.broker, store=self.store, clock=self.clock, stream=self.stream, options=options
        )
        self.notes: list[Notification] = []
        self.engine.subscribe(self.notes.append)
        self._tasks: list[asyncio.Task[None]] = []

    # -- running -------------------------------------------------------------------------------------

    async def start(self) -> None:
        """The start-up read and resume, then the event-driven loops (writer, stream intake)."""
        engine = self.engine
        engine._running = True
        await engine._first_read()
        engine._resume()
        self._tasks.append(asyncio.create_task(engine._writer(), name="writer"))
        if self.stream is not None:
            self._tasks.append(asyncio.create_task(engine._intake(self.stream), name="intake"))
            self.stream.connect(self.clock.now())
        await self.idle()

    async def stop(self) -> None:
        engine = self.engine
        engine._loops = self._tasks
        await asyncio.wait_for(engine.stop(), timeout=IDLE_S + 5)

    async def idle(self) -> None:
        """Wait (bounded, real time) until nothing is queued, sending, settling or releasing."""
        assert await self.engine.wait_idle(timeout_s=IDLE_S, settle_s=0.01), "the engine never went idle"

    async def tick(self) -> None:
        await self.engine._tick()
        await self.idle()

    async def poll(self) -> None:
        await self.engine._poll_once()
        if self.engine._catch_up_task is not None:
            await asyncio.wait_for(asyncio.shield(self.engine._catch_up_task), timeout=IDLE_S)
        await self.idle()

    async def reconcile(self) -> ReconcileReport:
        report = await self.engine.watch.reconcile(dry_run=False)
        await self.idle()
        return report

    async def deliver(self, *indexes: int) -> None:
        """Deliver the broker's recorded events (all undelivered ones, or those at ``indexes``)."""
        assert self.stream is not None
        chosen = [self.broker.events[i] for i in indexes] if indexes else self.broker.events[self._sent :]
        self._sent = len(self.broker.events)
        for obs in chosen:
            self.stream.push(obs)
        await self.idle()

    def drop_events(self) -> None:
        """Lose every event recorded so far (the stream never delivers them)."""
        self._sent = len(self.broker.events)

    _sent = 0

    # -- the library API -----------------------------------------------------------------------------

    async def buy(
        self, coid: str = "p1", qty: int = 10, plan: ProtectionPlan | None = OCO_PLAN, symbol: str = "AAPL"
    ) -> Order:
        now = self.clock.now()
        order = make_order(coid, symbol=symbol, qty=qty, limit_price=Decimal(100), created_at=now)
        await self.engine.submit(order, plan)
        await self.idle()
        return order

    # -- reading the outcome -------------------------------------------------------------------------

    def order(self, coid: str) -> Order:
        with self.store.transaction() as tx:
            found = tx.get_order(ClientOrderId(coid))
        assert found is not None, f"no order {coid} in the store"
        return found

    def children(self, parent: str, role: OrderRole = OrderRole.OCO) -> list[Order]:
        with self.store.transaction() as tx:
            return [c for c in tx.children_of(ClientOrderId(parent)) if c.role is role]

    def journal(self, kind: str) -> list[JournalEntry]:
        return [e for e in self.store.read_journal() if e.kind == kind]

    def alerts(self, kind: str) -> list[Alert]:
        with self.store.transaction() as tx:
            return [a for a in tx.open_alerts() if a.kind == kind]
