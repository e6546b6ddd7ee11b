"""Run one demo: start the simulator, drive the scenario in safe or naive mode, summarize from its books."""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from alpaca.trading.client import TradingClient

from ordersync.brokers.alpaca import AlpacaBroker, AlpacaStream
from ordersync.demo.conductor import Conductor, DemoClock
from ordersync.demo.naive import NaivePlatform, parents_of
from ordersync.demo.platform_log import PlatformLog
from ordersync.demo.summary import Summary, summarize_books
from ordersync.domain.order import new_order
from ordersync.domain.protection import PriceRule, ProtectionPlan
from ordersync.engine import Engine, EngineOptions
from ordersync.sim.clock import FlowingClock
from ordersync.sim.scenarios import Scenario
from ordersync.sim.server import SimServer
from ordersync.store import SqlAlchemyStore, open_store

DEMO_KEY, DEMO_SECRET = "demo-key", "demo-secret"  # the embedded simulator's own keys, never real ones
SETTLE_S = 600.0
DEFAULT_START = datetime(
    2025, 10, 10, 15, 59, tzinfo=UTC
)  # virtual seconds after the last scheduled event, to let everything settle


@dataclass(frozen=True)
class DemoOptions:
    """How to run the demo."""

    mode: str = "safe"
    db_url: str | None = None
    log_path: Path | None = None
    naive_poll_interval_s: float = 30.0
    naive_max_child_attempts: int = 5


def scenario_end(scenario: Scenario, start: datetime) -> datetime:
    """Return when the scenario's last scheduled event happens, plus the settle time."""
    last = 0.0
    for parent in scenario.parents:
        times = [f.after_s for f in parent.fills] + [parent.cancel_after_s or 0, parent.expire_after_s or 0]
        last = max(last, parent.submit_at_s + max(times, default=0.0))
    last = max([last, *(p.at_s for p in scenario.prices)])
    return start + timedelta(seconds=last + SETTLE_S)


def plan_for(parent: Any) -> ProtectionPlan | None:
    """Return the protection plan of a scenario parent."""
    tp = PriceRule(price=parent.take_profit.limit_price) if parent.take_profit else None
    sl = PriceRule(price=parent.stop_loss.stop_price) if parent.stop_loss else None
    return ProtectionPlan(take_profit=tp, stop_loss=sl) if tp or sl else None


async def run_demo(
    scenario: Scenario, options: DemoOptions, on_progress: Callable[[dict[str, Any]], None] | None = None
) -> Summary:
    """Run ``scenario`` in ``options.mode`` and return the summary."""
    started = time.monotonic()
    server = SimServer(
        scenario,
        FlowingClock(scenario.start or DEFAULT_START),
        api_key=DEMO_KEY,
        secret_key=DEMO_SECRET,
    )
    server.start()
    try:
        clock = DemoClock(server)
        start, end = clock.now(), scenario_end(scenario, clock.now())
        runner = (
            _SafeRun(server, clock, options) if options.mode == "safe" else _NaiveRun(server, clock, options)
        )
        await runner.start()
        drive = asyncio.create_task(_submit_on_schedule(scenario, clock, start, runner.submit))
        conductor = Conductor(server, clock, runner.busy)
        progress = asyncio.create_task(_report(server, clock, on_progress)) if on_progress else None
        await conductor.run_until(end)
        await drive
        summary = Summary(mode=options.mode, scenario=scenario.name)
        await runner.finish(summary)
        if progress:
            progress.cancel()
        summarize_books(summary, server.snapshot(), {p.id for p in scenario.parents}, clock.now())
        summary.virtual_duration_s = (clock.now() - start).total_seconds()
        summary.real_duration_s = round(time.monotonic() - started, 2)
        return summary
    finally:
        server.stop()


async def _submit_on_schedule(
    scenario: Scenario, clock: DemoClock, start: datetime, submit: Callable[[Any], Any]
) -> None:
    for parent in parents_of(scenario):
        wait = (start + timedelta(seconds=parent.submit_at_s) - clock.now()).total_seconds()
        await clock.sleep(wait)
        await submit(parent)


async def _report(server: SimServer, clock: DemoClock, on_progress: Callable[[dict[str, Any]], None]) -> None:
    while True:
        await asyncio.sleep(0.25)
        on_progress(server.snapshot())


class _SafeRun:
    def __init__(self, server: SimServer, clock: DemoClock, options: DemoOptions) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="ordersync-demo-")
        url = options.db_url or f"sqlite:///{Path(self._tmp.name) / 'demo.db'}"
        self.store = open_store(url)
        self.broker = AlpacaBroker(DEMO_KEY, DEMO_SECRET, clock=clock, base_url=server.base_url)
        stream = AlpacaStream(DEMO_KEY, DEMO_SECRET, clock=clock, url=server.stream_url, seed=1)
        options_ = EngineOptions(tick_s=30.0, poll_interval_s=30.0, reconcile_interval_s=600.0)
        self.engine = Engine(
            broker=self.broker, store=self.store, clock=clock, stream=stream, options=options_
        )
        self._clock = clock

    async def start(self) -> None:
        await self.engine.start()

    def busy(self) -> bool:
        if self.broker.inflight > 0 or self.engine.has_queued_work():
            return True
        return any(t not in self._clock.sleeping for t in self.engine.background_tasks())

    async def submit(self, parent: Any) -> None:
        order = new_order(
            client_order_id=parent.id,
            symbol=parent.symbol,
            side=parent.side,
            type=parent.type,
            qty=parent.qty,
            created_at=self._clock.now(),
            time_in_force=parent.time_in_force,
            limit_price=parent.limit_price,
        )
        await self.engine.submit(order, plan_for(parent))

    async def finish(self, summary: Summary) -> None:
        report = await self.engine.watch.reconcile(dry_run=True)
        summary.discrepancies = (
            len(report.discrepancies) + report.corrections + self.engine.watch.discrepancies_alerted
        )
        summary.alerts = alerts_raised(self.store)
        await self.engine.stop()
        self.store.close()
        self._tmp.cleanup()


def alerts_raised(store: SqlAlchemyStore) -> dict[str, int]:
    """Count the alerts raised during the run, by kind (from the journal: resolved ones included)."""
    counts: dict[str, int] = {}
    after = 0
    while entries := store.read_journal(after_seq=after):
        for entry in entries:
            if entry.kind == "alert":
                kind = str(entry.payload.get("alert"))
                counts[kind] = counts.get(kind, 0) + 1
        after = entries[-1].seq or after
    return counts


class _NaiveRun:
    def __init__(self, server: SimServer, clock: DemoClock, options: DemoOptions) -> None:
        client = TradingClient(DEMO_KEY, DEMO_SECRET, url_override=server.base_url)
        client._retry = 0
        self._log = PlatformLog(options.log_path)
        self.platform = NaivePlatform(
            client,
            clock,
            self._log,
            poll_interval_s=options.naive_poll_interval_s,
            max_child_attempts=options.naive_max_child_attempts,
        )
        self._server = server
        self._stop = asyncio.Event()
        self._poller: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._poller = asyncio.create_task(self.platform.run_polling(self._stop))

    def busy(self) -> bool:
        return self.platform.inflight > 0

    async def submit(self, parent: Any) -> None:
        await self.platform.submit_parent(parent)

    async def finish(self, summary: Summary) -> None:
        self._stop.set()
        if self._poller:
            self._poller.cancel()
        believed = self.platform.stats.believed_filled
        actual = {o["client_order_id"]: Decimal(o["filled_qty"]) for o in self._server.snapshot()["orders"]}
        summary.discrepancies = sum(1 for pid, qty in believed.items() if actual.get(pid) != qty)
        self._log.close()
