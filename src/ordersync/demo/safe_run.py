"""Safe mode: ordersync's engine on a store of its own (a temporary SQLite unless ``--db``), against the
embedded simulator through alpaca-py and the real stream client, as ``ordersync run`` would be.

The scenario's restarts stop the engine and start a new one on the same store; at the end a dry-run
reconcile counts what still differs from the broker, and the journal the alerts raised.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from ordersync.bootstrap import Wiring, wire
from ordersync.config import BrokerSettings, Credentials, Settings, StoreSettings
from ordersync.demo.conductor import QUIET_S, DemoClock
from ordersync.demo.entries import entry_order, plan_for
from ordersync.demo.options import DEMO_KEY, DEMO_SECRET, DemoOptions
from ordersync.demo.summary import Summary
from ordersync.domain.errors import BrokerError
from ordersync.domain.kinds import JournalKind
from ordersync.engine import EngineOptions
from ordersync.engine.retry import backoff_s
from ordersync.sim.server import SimServer
from ordersync.store import SqlAlchemyStore

FINAL_READ_ATTEMPTS = 20


class SafeRun:
    """The engine as the demo drives it (the ``Runner`` of ``run.py``)."""

    quiet_s = QUIET_S  # the stream delivers events from another thread: wait for the system to settle

    def __init__(self, server: SimServer, clock: DemoClock, options: DemoOptions) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="ordersync-demo-")
        url = options.db_url or f"sqlite:///{Path(self._tmp.name) / 'demo.db'}"
        self._settings = Settings(
            broker=BrokerSettings(base_url=server.base_url, stream_url=server.stream_url),
            store=StoreSettings(url=url),
        )
        self._clock = clock
        self._closed = False
        self._lock = asyncio.Lock()  # a submission waits while the engine restarts
        self.restarts = 0
        wiring = self._wire(None)
        self.store = wiring.store
        self.broker, self.engine = wiring.broker, wiring.engine

    def _wire(self, store: SqlAlchemyStore | None) -> Wiring:
        """The engine as ``ordersync run`` builds it (no lease: the demo's store is its own), with slow
        loops: the demo's virtual time jumps over them, and the stream carries the scenario."""
        return wire(
            self._settings,
            Credentials(key_id=DEMO_KEY, secret_key=DEMO_SECRET),
            self._clock,
            with_lease=False,
            options=EngineOptions(tick_s=30.0, poll_interval_s=30.0, reconcile_interval_s=600.0),
            store=store,
            keep_orders=False,
            stream_seed=1 + self.restarts,
        )

    async def start(self) -> None:
        await self.engine.start()

    async def restart(self) -> None:
        """Stop the engine and start a new one on the same store (the scenario's ``restarts``)."""
        async with self._lock:
            await self.engine.stop()
            self.restarts += 1
            wiring = self._wire(self.store)
            self.broker, self.engine = wiring.broker, wiring.engine
            await self.engine.start()

    def busy(self) -> bool:
        if self.broker.inflight > 0 or self.engine.has_queued_work():
            return True
        return any(t not in self._clock.sleeping for t in self.engine.background_tasks())

    def describe(self) -> str:
        awake = [t.get_name() for t in self.engine.background_tasks() if t not in self._clock.sleeping]
        return (
            f"safe mode: {self.broker.inflight} broker requests in flight, "
            f"queued work: {self.engine.has_queued_work()}, tasks not sleeping: {awake[:5]}"
        )

    async def submit(self, parent: Any) -> None:
        order = entry_order(parent, self._clock.now())
        async with self._lock:
            await self.engine.submit(order, plan_for(parent))

    async def finish(self, summary: Summary) -> None:
        if self.restarts:
            summary.notes.append(f"engine restarted {self.restarts} times on the same store")
        report = await self._final_reconcile(summary)
        if report is not None:
            summary.discrepancies = (
                len(report.discrepancies) + report.corrections + self.engine.watch.discrepancies_alerted
            )
        summary.alerts = alerts_raised(self.store)
        await self.abort()

    async def _final_reconcile(self, summary: Summary) -> Any:
        # the broker's weather lasts to the end in a fault scenario: a read that fails is retried on the
        # demo clock (the conductor keeps running), never left to crash the demo without a summary
        for attempt in range(1, FINAL_READ_ATTEMPTS + 1):
            try:
                return await self.engine.watch.reconcile(dry_run=True)
            except BrokerError as e:
                error = f"{type(e).__name__}: {str(e)[:160]}"
                await self._clock.sleep(backoff_s(attempt, 1.0, 30.0))
        summary.errors.append(f"final reconcile failed {FINAL_READ_ATTEMPTS} times, last: {error}")
        return None

    async def abort(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await self.engine.stop()
        finally:
            self.store.close()
            self._tmp.cleanup()


def alerts_raised(store: SqlAlchemyStore) -> dict[str, int]:
    """Count the alerts raised during the run, by kind (from the journal: resolved ones included)."""
    counts: dict[str, int] = {}
    after = 0
    while entries := store.read_journal(after_seq=after):
        for entry in entries:
            if entry.kind == JournalKind.ALERT:
                kind = str(entry.payload.get("alert"))
                counts[kind] = counts.get(kind, 0) + 1
        after = entries[-1].seq or after
    return counts
