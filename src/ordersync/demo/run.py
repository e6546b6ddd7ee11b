"""Run one demo: start the simulator, drive the scenario in one mode, summarize from the simulator's books."""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from alpaca.trading.client import TradingClient

from ordersync.brokers.alpaca import AlpacaBroker, AlpacaStream
from ordersync.demo.bracket import BracketPlatform
from ordersync.demo.conductor import QUIET_S, STALL_S, Conductor, DemoClock
from ordersync.demo.naive import NaivePlatform
from ordersync.demo.orders import parents_of
from ordersync.demo.platform_log import PlatformLog
from ordersync.demo.poller import PollerPlatform
from ordersync.demo.summary import Summary, summarize_books
from ordersync.domain.errors import BrokerError, InvalidProtectionPlan
from ordersync.domain.order import Order, new_order
from ordersync.domain.protection import PartialFillPolicy, PriceRule, ProtectionPlan, TrailRule, validate_plan
from ordersync.engine import Engine, EngineOptions
from ordersync.engine.retry import backoff_s
from ordersync.sim.clock import FlowingClock
from ordersync.sim.scenarios import Scenario
from ordersync.sim.server import SimServer
from ordersync.store import SqlAlchemyStore, open_store

DEMO_KEY, DEMO_SECRET = "demo-key", "demo-secret"  # the embedded simulator's own keys, never real ones
SETTLE_S = 600.0
FINAL_READ_ATTEMPTS = 20
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
    poller_interval_s: float = 5.0
    stall_s: float = STALL_S  # real seconds without a step of virtual time before the demo fails


def scenario_end(scenario: Scenario, start: datetime) -> datetime:
    """Return when the scenario's last scheduled event happens, plus the settle time."""
    last = 0.0
    for parent in scenario.parents:
        times = [f.after_s for f in parent.fills] + [parent.cancel_after_s or 0, parent.expire_after_s or 0]
        last = max(last, parent.submit_at_s + max(times, default=0.0))
    last = max([last, *(p.at_s for p in scenario.prices)])
    last = max([last, *(a.at_s for a in scenario.actions), *(r.at_s for r in scenario.restarts)])
    return start + timedelta(seconds=last + SETTLE_S)


class UnsupportedScenario(ValueError):
    """The scenario asks safe mode for an exit the engine cannot place; the message is one line."""


def plan_for(parent: Any) -> ProtectionPlan | None:
    """Return the engine's protection plan for a scenario parent: price or offset exits, a stop-limit's
    limit (price or offset), a trailing stop, and the fill policy (docs/architecture.md §14).

    Raises:
        UnsupportedScenario: the exits do not make a valid plan (one line naming the parent).
    """
    tp, sl = parent.take_profit, parent.stop_loss
    take_profit = None if tp is None else PriceRule(price=tp.limit_price, offset=tp.offset)
    stop_loss = stop_limit = trailing = None
    try:
        if sl is not None and sl.kind == "trailing_stop":
            trailing = TrailRule(trail_price=sl.trail_price, trail_percent=sl.trail_percent)
        elif sl is not None:
            stop_loss = PriceRule(price=sl.stop_price, offset=sl.offset)
            if sl.kind == "stop_limit":
                stop_limit = PriceRule(price=sl.limit_price, offset=sl.limit_offset)
        if take_profit is None and stop_loss is None and trailing is None:
            return None
        plan = ProtectionPlan(
            take_profit,
            stop_loss,
            PartialFillPolicy(parent.policy),
            stop_limit=stop_limit,
            trailing=trailing,
            native=parent.native,
        )
        return validate_plan(plan, _entry(parent, DEFAULT_START))  # what Engine.submit would refuse
    except InvalidProtectionPlan as e:
        raise UnsupportedScenario(f"parent {parent.id}: {e}") from None


def _entry(parent: Any, now: datetime) -> Order:
    return new_order(
        client_order_id=parent.id,
        symbol=parent.symbol,
        side=parent.side,
        type=parent.type,
        qty=parent.qty,
        created_at=now,
        time_in_force=parent.time_in_force,
        limit_price=parent.limit_price,
    )


def check_supported(scenario: Scenario, mode: str) -> None:
    """Refuse, before anything runs, a scenario the chosen mode cannot play.

    Raises:
        UnsupportedScenario: one line naming the parent and the exit.
    """
    if mode == "safe":
        for parent in scenario.parents:
            plan_for(parent)


MODES = ("safe", "naive", "poller", "bracket")


async def run_demo(
    scenario: Scenario,
    options: DemoOptions,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    on_books: Callable[[dict[str, Any]], None] | None = None,
) -> Summary:
    """Run ``scenario`` in ``options.mode`` and return the summary (``on_books`` gets the final books).

    Raises:
        DemoStalled: virtual time made no step for ``options.stall_s`` real seconds (never a hang).
    """
    check_supported(scenario, options.mode)
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
        runner = _runner(options, server, clock)
        drive: list[asyncio.Task[None]] = []

        def busy() -> bool:
            return runner.busy() or any(not t.done() and t not in clock.sleeping for t in drive)

        conductor = Conductor(
            server, clock, busy, stall_s=options.stall_s, describe=runner.describe, quiet_s=runner.quiet_s
        )
        progress = asyncio.create_task(_report(server, on_progress)) if on_progress else None
        # the conductor runs from the first request on: the engine's start-up retries sleep on this clock
        main = asyncio.create_task(_main(scenario, options, server, clock, runner, drive, on_books))
        conducting = asyncio.create_task(conductor.run())
        try:
            await asyncio.wait({main, conducting}, return_when=asyncio.FIRST_COMPLETED)
            if not main.done():
                main.cancel()
                await asyncio.gather(main, return_exceptions=True)
                await runner.abort()
                conducting.result()  # DemoStalled (or the conductor's own failure)
            summary = main.result()
        finally:
            for task in (conducting, progress, *drive):
                if task is not None:
                    task.cancel()
            await asyncio.gather(
                *(t for t in (conducting, progress, *drive) if t is not None), return_exceptions=True
            )
        summary.real_duration_s = round(time.monotonic() - started, 2)
        return summary
    finally:
        server.stop()


async def _main(
    scenario: Scenario,
    options: DemoOptions,
    server: SimServer,
    clock: DemoClock,
    runner: _Runner,
    drive: list[asyncio.Task[None]],
    on_books: Callable[[dict[str, Any]], None] | None,
) -> Summary:
    start, end = clock.now(), scenario_end(scenario, clock.now())
    await runner.start()
    drive.append(asyncio.create_task(_submit_on_schedule(scenario, clock, start, runner.submit)))
    drive.append(asyncio.create_task(_restart_on_schedule(scenario, clock, start, runner.restart)))
    await clock.sleep((end - clock.now()).total_seconds())
    while (deferred := _deferred_fills(server)) is not None:  # a closed market moved planned fills later
        await clock.sleep((deferred - clock.now()).total_seconds() + SETTLE_S)
    await asyncio.gather(*drive)
    summary = Summary(mode=options.mode, scenario=scenario.name)
    await runner.finish(summary)
    books = server.snapshot()
    summarize_books(summary, books, {p.id for p in scenario.parents}, clock.now())
    if on_books is not None:
        on_books(books)
    summary.virtual_duration_s = (clock.now() - start).total_seconds()
    return summary


async def _submit_on_schedule(
    scenario: Scenario, clock: DemoClock, start: datetime, submit: Callable[[Any], Any]
) -> None:
    for parent in parents_of(scenario):
        wait = (start + timedelta(seconds=parent.submit_at_s) - clock.now()).total_seconds()
        await clock.sleep(wait)
        await submit(parent)


async def _restart_on_schedule(
    scenario: Scenario, clock: DemoClock, start: datetime, restart: Callable[[], Any]
) -> None:
    for at_s in sorted(r.at_s for r in scenario.restarts):
        await clock.sleep((start + timedelta(seconds=at_s) - clock.now()).total_seconds())
        await restart()


def _deferred_fills(server: SimServer) -> datetime | None:
    # planned fills the market calendar pushed past the scenario's end (a fill due while closed waits for
    # the next session): the demo runs until they happened, as the account would
    now = server.now()
    dues = [
        datetime.fromisoformat(t["due"].replace("Z", "+00:00"))
        for t in server.snapshot()["pending_timers"]
        if t["label"].startswith("plan fill")
    ]
    later = [d for d in dues if d > now]
    return max(later) if later else None


async def _report(server: SimServer, on_progress: Callable[[dict[str, Any]], None]) -> None:
    while True:
        on_progress(server.snapshot())
        await asyncio.sleep(0.25)


class _Runner(Protocol):
    """One mode's platform, as the demo drives it."""

    quiet_s: float

    async def start(self) -> None: ...

    def busy(self) -> bool: ...

    def describe(self) -> str: ...

    async def submit(self, parent: Any) -> None: ...

    async def finish(self, summary: Summary) -> None: ...

    async def restart(self) -> None: ...

    async def abort(self) -> None: ...


def _runner(options: DemoOptions, server: SimServer, clock: DemoClock) -> _Runner:
    if options.mode == "safe":
        return _SafeRun(server, clock, options)
    if options.mode in ("naive", "poller", "bracket"):
        return _ClientRun(server, clock, options)
    raise ValueError(f"mode must be one of {', '.join(MODES)}, was {options.mode!r}")


class _SafeRun:
    quiet_s = QUIET_S  # the stream delivers events from another thread: wait for the system to settle

    def __init__(self, server: SimServer, clock: DemoClock, options: DemoOptions) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="ordersync-demo-")
        url = options.db_url or f"sqlite:///{Path(self._tmp.name) / 'demo.db'}"
        self.store = open_store(url)
        self._server = server
        self._clock = clock
        self._closed = False
        self._lock = asyncio.Lock()  # a submission waits while the engine restarts
        self.restarts = 0
        self.broker, self.engine = self._new_engine()

    def _new_engine(self) -> tuple[AlpacaBroker, Engine]:
        server, clock = self._server, self._clock
        broker = AlpacaBroker(DEMO_KEY, DEMO_SECRET, clock=clock, base_url=server.base_url)
        stream = AlpacaStream(
            DEMO_KEY, DEMO_SECRET, clock=clock, url=server.stream_url, seed=1 + self.restarts
        )
        options_ = EngineOptions(tick_s=30.0, poll_interval_s=30.0, reconcile_interval_s=600.0)
        engine = Engine(broker=broker, store=self.store, clock=clock, stream=stream, options=options_)
        return broker, engine

    async def start(self) -> None:
        await self.engine.start()

    async def restart(self) -> None:
        """Stop the engine and start a new one on the same store (the scenario's ``restarts``)."""
        async with self._lock:
            await self.engine.stop()
            self.restarts += 1
            self.broker, self.engine = self._new_engine()
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
        order = _entry(parent, self._clock.now())
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
            if entry.kind == "alert":
                kind = str(entry.payload.get("alert"))
                counts[kind] = counts.get(kind, 0) + 1
        after = entries[-1].seq or after
    return counts


class _Platform(Protocol):
    @property
    def inflight(self) -> int: ...

    async def submit_parent(self, parent: Any) -> None: ...


class _ClientRun:
    """naive, poller and bracket: a platform on alpaca-py, no stream; a call in flight is all it does."""

    quiet_s = 0.0  # no stream, no other thread acts on its own: quiet as soon as no call is in flight

    def __init__(self, server: SimServer, clock: DemoClock, options: DemoOptions) -> None:
        client = TradingClient(DEMO_KEY, DEMO_SECRET, url_override=server.base_url)
        client._retry = 0
        self._log = PlatformLog(options.log_path)

        def price_of(symbol: str) -> Decimal:  # the quote a platform would read before pricing its exits
            return Decimal(server.snapshot()["prices"][symbol])

        self._mode = options.mode
        self._clock = clock
        self._server = server
        self._stop = asyncio.Event()
        self._poller: asyncio.Task[None] | None = None
        self._spawned: list[asyncio.Task[None]] = []
        self._restarts_ignored = 0
        self.platform: _Platform
        if options.mode == "naive":
            self.naive: NaivePlatform | None = NaivePlatform(
                client,
                clock,
                self._log,
                price_of,
                poll_interval_s=options.naive_poll_interval_s,
                max_child_attempts=options.naive_max_child_attempts,
            )
            self.platform = self.naive
        else:
            self.naive = None
            if options.mode == "poller":
                self.platform = PollerPlatform(
                    client, clock, self._log, price_of, poll_interval_s=options.poller_interval_s
                )
            else:
                self.platform = BracketPlatform(client, clock, self._log, price_of)

    async def start(self) -> None:
        polling = getattr(self.platform, "run_polling", None)
        if polling is not None:
            self._poller = asyncio.create_task(polling(self._stop))

    def busy(self) -> bool:
        if self.platform.inflight > 0:
            return True
        return any(not t.done() and t not in self._clock.sleeping for t in self._spawned)

    def describe(self) -> str:
        return f"{self._mode} mode: {self.platform.inflight} broker requests in flight"

    async def restart(self) -> None:
        self._restarts_ignored += 1  # a restart is the engine's: the baselines keep running

    async def submit(self, parent: Any) -> None:
        if self._mode == "bracket":  # its retries wait on the clock: never hold up the next parent
            self._spawned.append(asyncio.create_task(self.platform.submit_parent(parent)))
        else:
            await self.platform.submit_parent(parent)

    async def finish(self, summary: Summary) -> None:
        if self.naive is not None:
            believed = self.naive.stats.believed_filled
            orders = self._server.snapshot()["orders"]
            actual = {o["client_order_id"]: Decimal(o["filled_qty"]) for o in orders}
            summary.discrepancies = sum(1 for pid, qty in believed.items() if actual.get(pid) != qty)
        summary.notes.extend(getattr(self.platform, "notes", []))
        if self._restarts_ignored:
            summary.notes.append(
                f"{self._restarts_ignored} engine restarts do not apply to the {self._mode} mode"
            )
        await self.abort()

    async def abort(self) -> None:
        self._stop.set()
        tasks = [t for t in (self._poller, *self._spawned) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._log.close()
