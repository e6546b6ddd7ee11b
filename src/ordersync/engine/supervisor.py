"""The engine: one object that owns the loops, and the library API a platform embeds.

Loops: *intake* (stream -> queue), *writer* (queue -> batched transactions), *poller* (the account's
FILL activities every poll interval, stream up or not, and catch-up reads while the stream is down,
silent or lossy), *reconciler* (orders + positions, periodically), *ticker* (release retries and alert
ages). Stream events and polls never write directly: they queue observations and the
writer applies them in batches, each batch one transaction with its journal entries.

Per-message error policy: a bad message is logged with context and skipped; a broken invariant is
journaled and alerted; an unexpected exception in a loop is logged and the loop continues after a pause.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from ordersync.domain.errors import BrokerError, UnknownOrder
from ordersync.domain.events import OrderObserved, Source
from ordersync.domain.ids import ClientOrderId
from ordersync.domain.kinds import JournalKind
from ordersync.domain.order import Order
from ordersync.domain.protection import ProtectionPlan, validate_plan
from ordersync.engine.activities import FillActivities
from ordersync.engine.context import Context, Notification, apply_observation, log
from ordersync.engine.intents import record_parent
from ordersync.engine.loops import (
    CatchUpBudget,
    catch_up_logged,
    catch_up_retrying,
    detect_interval_s,
    drain,
    every,
    send_new_intents,
    settle_orphaned_submits,
    widened_silence_window,
)
from ordersync.engine.metrics import EngineMetrics
from ordersync.engine.options import EngineOptions
from ordersync.engine.positions import PositionEvidence
from ordersync.engine.scheduling import ReleaseScheduler
from ordersync.engine.sender import observed, start_cancel, start_send
from ordersync.engine.startup import first_read, keep_lease, resume
from ordersync.engine.watch import Watch
from ordersync.ports import (
    Broker,
    BrokerStream,
    Clock,
    Lease,
    Priority,
    Store,
    StreamState,
    StreamStatus,
    prioritized,
)

__all__ = ["Engine", "Notification", "record_parent"]


@dataclass(frozen=True, slots=True)
class _Stop:
    """Sentinel that ends the writer."""


class Engine:
    """Keeps orders and their protection in sync with the broker (docs/architecture.md §2, invariant 1-7)."""

    def __init__(
        self,
        *,
        broker: Broker,
        store: Store,
        clock: Clock,
        stream: BrokerStream | None = None,
        options: EngineOptions | None = None,
        lease: Lease | None = None,
    ) -> None:
        self.metrics = EngineMetrics()
        self._ctx = Context(broker, store, clock, options or EngineOptions(), self.metrics, lease=lease)
        self._stream = stream
        self._queue: asyncio.Queue[OrderObserved | StreamStatus | _Stop] = asyncio.Queue()
        self._loops: list[asyncio.Task[None]] = []
        self._lease_task: asyncio.Task[None] | None = None
        self.watch = Watch(self._ctx)
        self._positions = PositionEvidence()  # filled by the writer from fill events, read by releases
        self._releases = ReleaseScheduler(self._ctx, self.watch, self._positions)
        self._ctx.on_dirty = self._releases.schedule
        self.catch_up_budget = budget = CatchUpBudget(self._ctx.options, clock)
        self.activities = FillActivities(self._ctx, self._queue.put, self.catch_up, budget.spend)
        self.stream_connected = False
        self._last_stream_at: datetime = clock.now()
        self._news_mark = 0
        # a connected stream silent this long is read around; doubled after each silence read that found
        # nothing new (a quiet market, a weekend), back to stream_silence_s on any stream event or news
        self._silence_window_s = self._ctx.options.stream_silence_s
        self._any_open = True  # open orders, as of the last tick (until one has run: assume some)
        self._catch_up_task: asyncio.Task[None] | None = None
        self._running = False

    # -- library API ---------------------------------------------------------------------------------

    def subscribe(self, listener: Callable[[Notification], None]) -> None:
        """Call ``listener`` for fills, released/accepted/refused children and alerts."""
        self._ctx.listeners.append(listener)

    async def submit(self, order: Order, plan: ProtectionPlan | None = None) -> Order:
        """Record ``order`` (and its protection plan) durably in one transaction, then send it.

        Raises:
            InvalidProtectionPlan: the plan cannot protect this order (nothing is written).
            ConcurrencyConflict: an order with this client_order_id already exists.
        """
        record_parent(self._ctx.store, order, plan, self._ctx.clock.now())
        start_send(self._ctx, order.client_order_id)
        return order

    async def close_position(self, parent_id: ClientOrderId) -> None:
        """Flatten what ``parent_id`` bought: cancel the entry and its protection, wait for the broker
        to confirm, then sell what is left with a market order (exit sequencing, never a 40310000).

        Raises:
            UnknownOrder: no protection plan is held for ``parent_id``.
        """
        self._update_plan(parent_id, JournalKind.CLOSE_REQUESTED, closing=True)

    async def replace_plan(self, parent_id: ClientOrderId, plan: ProtectionPlan) -> None:
        """Change a parent's protection: open children are cancelled, then replaced once the broker
        confirms the cancels (so the shares are never asked for twice).

        Raises:
            UnknownOrder: no protection plan is held for ``parent_id``.
            InvalidProtectionPlan: the new plan cannot protect the parent.
        """
        with self._ctx.store.transaction() as tx:
            parent = tx.get_order(parent_id)
        if parent is None:
            raise UnknownOrder(f"no order {parent_id}")
        validate_plan(plan, parent)
        self._update_plan(parent_id, JournalKind.PLAN_REPLACED, plan=plan, replaced_at=self._ctx.clock.now())

    def _update_plan(self, parent_id: ClientOrderId, kind: JournalKind, **changes: Any) -> None:
        with self._ctx.store.transaction() as tx:
            state = tx.get_plan(parent_id)
            if state is None:
                raise UnknownOrder(f"no protection plan for {parent_id}")
            tx.save_plan(replace(state, done=False, **changes))
            tx.journal(self._ctx.entry(kind, parent_id, **{k: str(v) for k, v in changes.items()}))
        self._ctx.mark_dirty(parent_id)

    async def cancel(self, client_order_id: ClientOrderId) -> None:
        """Ask the broker to cancel one of our orders (the result arrives as an observation)."""
        start_cancel(self._ctx, client_order_id, "requested by the platform")

    def orders(self) -> list[Order]:
        """Return every order ordersync holds, parents and children."""
        with self._ctx.store.transaction() as tx:
            return tx.all_orders()

    # -- running -------------------------------------------------------------------------------------

    @property
    def lease_lost(self) -> bool:
        """True once this instance lost its lease (it has stopped writing to the broker)."""
        return self._ctx.lease_lost

    async def wait_for_lease(self) -> None:
        """Block (as a standby) until this instance holds the lease; no-op without one."""
        lease = self._ctx.lease
        if lease is None or lease.held():
            return  # no lease, or taken already (``ordersync run`` waits for it before binding metrics)
        while not lease.try_acquire():
            await self._ctx.clock.sleep(self._ctx.options.lease_poll_s)
        with self._ctx.store.transaction() as tx:
            tx.journal(self._ctx.entry(JournalKind.LEASE_ACQUIRED, None))
        log.info("engine.lease_acquired")

    async def start(self) -> None:
        """Take the lease (if any), catch up with the broker, resume unfinished work, start the loops."""
        await self.wait_for_lease()
        self._running = True
        if self._ctx.lease is not None:  # renewed from now on, not only from the first tick
            self._lease_task = asyncio.create_task(keep_lease(self._ctx, lambda: self._running), name="lease")
        began = asyncio.get_running_loop().time()
        # one read of the broker serves both the catch-up and the start-up reconciliation (it applies
        # every open order and every order closed since our oldest open one, legs included)
        await self._first_read()
        read_s = asyncio.get_running_loop().time() - began
        self._resume()
        log.info("engine.started", first_read_real_s=round(read_s, 3), dirty=len(self._ctx.dirty))
        for name, loop in (
            ("writer", self._writer),
            ("poller", self._poller),
            ("ticker", self._ticker),
            ("reconciler", self._reconciler),
        ):
            self._loops.append(asyncio.create_task(loop(), name=name))
        if self._stream is not None:
            self._loops.append(asyncio.create_task(self._intake(self._stream), name="intake"))

    async def _first_read(self) -> None:
        await first_read(self._ctx, self.watch, lambda: self._running)

    async def run_until_stopped(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set or the lease is lost, then stop cleanly."""
        while not stop.is_set() and self._running:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.5)
        await self.stop()

    async def stop(self) -> None:
        """Stop the loops, let in-flight sends finish (bounded), close the stream."""
        self._running = False
        if self._stream is not None:
            await self._stream.close()
        await self._queue.put(_Stop())
        for task in self._loops:
            if task.get_name() != "writer":
                task.cancel()
        if self._catch_up_task is not None:
            self._catch_up_task.cancel()
        if self._lease_task is not None:
            self._lease_task.cancel()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*self._loops, return_exceptions=True), timeout=5)
        self._ctx.stopping = True  # nothing new is spawned from here on (see Context.spawn)
        await drain(self._ctx, lambda: self._release_task, 5)
        if self._ctx.lease is not None:
            self._ctx.lease.release()

    async def wait_idle(self, timeout_s: float = 30.0, settle_s: float = 0.05) -> bool:
        """Wait (real time) until nothing is queued, sending or releasing; True if it got there."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            busy = (
                not self._queue.empty()
                or bool(self._ctx.tasks)
                or bool(self._ctx.dirty)
                or (self._release_task is not None and not self._release_task.done())
            )
            if not busy:
                await asyncio.sleep(settle_s)
                if self._queue.empty() and not self._ctx.tasks and not self._ctx.dirty:
                    return True
            await asyncio.sleep(0.01)
        return False

    def background_tasks(self) -> list[asyncio.Task[Any]]:
        """Return the tasks that may still act (for a driver deciding the system is quiet)."""
        loops = [t for t in self._loops if t.get_name() in ("poller", "ticker", "reconciler")]
        release_task = [self._release_task] if self._release_task is not None else []
        catch_up = [self._catch_up_task] if self._catch_up_task is not None else []
        return [t for t in [*self._ctx.tasks, *loops, *release_task, *catch_up] if not t.done()]

    def has_queued_work(self) -> bool:
        """True while observations wait to be applied, or parents wait with no release pass to take them.

        Parents marked while a release pass runs (or waits, e.g. on the request budget) are that pass's
        work: counting them too would make a driver wait for a pass that is itself waiting for time.
        """
        release_idle = self._releases.idle()
        waiting = bool(self._ctx.dirty) or bool(self._ctx.dirty_symbols)
        return not self._queue.empty() or (waiting and release_idle)

    def _resume(self) -> None:
        resume(self._ctx)

    # -- loops ---------------------------------------------------------------------------------------

    async def _intake(self, stream: BrokerStream) -> None:
        async for item in stream.events():
            await self._queue.put(item)

    async def _writer(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty() and len(batch) < self._ctx.options.batch_max:
                batch.append(self._queue.get_nowait())
            if not await self._apply_batch(batch):
                return

    async def _apply_batch(self, batch: list[OrderObserved | StreamStatus | _Stop]) -> bool:
        observations = [item for item in batch if isinstance(item, OrderObserved)]
        if observations:
            try:
                with self._ctx.store.transaction() as tx:
                    # one read for the whole batch (the orders it names and their legs), not one per event
                    tx.orders_by_id(
                        {o.client_order_id for obs in observations for o in (obs.order, *obs.order.legs)}
                    )
                    self._ctx.ours = self._positions.book(self._ctx.ours, observations, tx)
                    for obs in observations:
                        apply_observation(self._ctx, tx, obs)
                        self._positions.note(obs, self._ctx.ours, self._ctx.clock.now())
            except Exception as e:  # keep the writer alive; the next catch-up re-reads the broker
                log.error("engine.batch_failed", size=len(observations), error=repr(e))
        for item in batch:
            if isinstance(item, StreamStatus):
                self._on_stream_status(item)
            elif isinstance(item, OrderObserved) and item.source.value == "stream":
                self._last_stream_at = self._ctx.clock.now()
                self._silence_window_s = self._ctx.options.stream_silence_s
        return not any(isinstance(item, _Stop) for item in batch)

    def _on_stream_status(self, status: StreamStatus) -> None:
        self.stream_connected = status.state is StreamState.CONNECTED
        if not self.stream_connected:
            self._positions.forget()  # events may be lost from here: no kept position is the account's
        self.metrics.stream_up.set(1 if self.stream_connected else 0)
        with self._ctx.store.transaction() as tx:
            tx.journal(self._ctx.entry(status.state.journal_kind, None, detail=status.detail))
        if self.stream_connected:
            # events sent while we were away are not replayed: read everything we may have missed
            self._last_stream_at = self._ctx.clock.now()
            self._silence_window_s = self._ctx.options.stream_silence_s
            self._ctx.spawn(catch_up_retrying(self._ctx, self.catch_up, "reconnect"), "catch_up:reconnect")

    def stream_trusted(self) -> bool:
        """True while the stream is connected and has not been silent too long."""
        silent_s = (self._ctx.clock.now() - self._last_stream_at).total_seconds()
        return self.stream_connected and silent_s < self._silence_window_s

    async def catch_up(self, reason: str) -> int:
        """Read every order that may have changed and queue it as observations; return how many."""
        with self._ctx.store.transaction() as tx:
            open_orders = tx.open_orders()
        oldest = min((o.created_at for o in open_orders), default=None)
        views = await self.catch_up_budget.read(self._ctx.broker, oldest)
        source = Source.RECONCILE if reason == "startup" else Source.POLL
        for view in views:
            await self._queue.put(observed(self._ctx, view, source))
        self.metrics.catch_ups.labels(reason).inc()
        self._last_stream_at = self._ctx.clock.now() if self.stream_connected else self._last_stream_at
        return len(views)

    async def _poller(self) -> None:
        interval_s = detect_interval_s(self._ctx.options)
        await every(self._ctx, lambda: self._running, interval_s, self._poll_once, fixed_rate=True)

    async def _poll_once(self) -> None:
        if not self._any_open:
            return
        # every poll interval, stream up or not: one request tells whether any fill was missed
        try:
            await self.activities.poll()
        except BrokerError as e:
            log.warning("engine.fill_activities_failed", error=str(e)[:200])
        # a connected stream whose last catch-up found changes it never delivered is losing events:
        # keep reading every poll interval until a read finds nothing new
        lossy = self.stream_connected and self._ctx.poll_news > self._news_mark
        if self.stream_trusted() and not lossy:
            return
        # in its own task: a catch-up waiting for the budget must not hold up the next activities poll
        busy = self._catch_up_task is not None and not self._catch_up_task.done()
        if not busy and self.catch_up_budget.catch_up_due():  # paced inside poll_budget_per_min (§12)
            self._news_mark = self._ctx.poll_news
            self._silence_window_s = widened_silence_window(
                self._ctx.options, self._silence_window_s, lossy, self.stream_connected
            )
            reason = "poll" if not self.stream_connected else ("lossy" if lossy else "silence")
            self._catch_up_task = asyncio.create_task(
                catch_up_logged(self.catch_up, reason), name=f"catch_up:{reason}"
            )

    async def _reconciler(self) -> None:
        await self._every(self._ctx.options.reconcile_interval_s, self._reconcile_once)

    async def _reconcile_once(self) -> None:
        with prioritized(Priority.BACKGROUND):
            await self.watch.reconcile(dry_run=False)

    async def _ticker(self) -> None:
        await self._every(self._ctx.options.tick_s, self._tick)

    async def _tick(self) -> None:
        if not self._ctx.may_write():
            if self._ctx.lease_lost:
                self._running = False  # fenced: a standby is active now; the process should exit
            return  # unconfirmed (database unreachable): pause until a renewal succeeds
        # one read of the open orders serves the whole tick and the poller's next decision: with a
        # thousand open orders each read costs tens of milliseconds of CPU, and a tick used to make four
        with self._ctx.store.transaction() as tx:
            open_orders = tx.open_orders()
        self._any_open = bool(open_orders)
        send_new_intents(self._ctx, open_orders)
        settle_orphaned_submits(self._ctx, open_orders)
        self.watch.tick(open_orders, self.stream_connected, self._last_stream_at)

    async def _every(self, interval_s: float, step: Callable[[], Awaitable[None]]) -> None:
        await every(self._ctx, lambda: self._running, interval_s, step)

    @property
    def _release_task(self) -> asyncio.Task[None] | None:
        """The running release pass, if any (read by test drivers deciding the system is quiet)."""
        return self._releases.task
