"""Virtual time for the demo: hours of market time in seconds, with latencies that mean something.

A fast clock (N x real time) would scale every loopback round trip by N too, so a 5 ms request would
read as seconds of "fill-to-protect" latency. Instead virtual time flows at real speed while anything is
happening (the simulator's FlowingClock) and jumps, when the whole system is quiet, to the next thing
due: the simulator's next timer (a fill, a price move, an acknowledgement latency) or the next sleeper
on the demo clock (a poll cycle, a backoff). With no sleeper at all (the demo starting or reading its final
books) time does not jump. Latencies are then real processing and round-trip time,
the scenario's modelled venue latencies, and each client's own waits.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from ordersync.sim.server import SimServer

QUIET_S = 0.01  # real seconds with no activity before the system counts as quiet
YIELDS = 4  # event-loop turns a woken task gets to start its next call before the system counts as quiet
STALL_S = 60.0  # real seconds without a step of virtual time before the demo fails as stalled


class DemoClock:
    """The Clock port on the simulator's stepped clock; sleepers wake when the conductor passes them."""

    def __init__(self, server: SimServer) -> None:
        self._server = server
        self._sleepers: list[tuple[datetime, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self.last_activity = time.monotonic()
        self.sleeping: set[asyncio.Task[Any]] = set()

    def now(self) -> datetime:
        """Return the simulator's virtual now."""
        return self._server.now()

    async def sleep(self, seconds: float) -> None:
        """Wait until virtual time has advanced by ``seconds``."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now() + timedelta(seconds=seconds), next(self._seq), future))
        task = asyncio.current_task()
        if task is not None:
            self.sleeping.add(task)
        try:
            await future
        finally:
            if task is not None:
                self.sleeping.discard(task)

    def touch(self) -> None:
        """Record activity (a request, a message): the system is not quiet yet."""
        self.last_activity = time.monotonic()

    def next_wake(self) -> datetime | None:
        """Return when the earliest sleeper is due."""
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)
        return self._sleepers[0][0] if self._sleepers else None

    def wake_due(self) -> int:
        """Wake every sleeper whose time has come; return how many."""
        now, woken = self.now(), 0
        while self._sleepers and self._sleepers[0][0] <= now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)
                woken += 1
        return woken


class DemoStalled(RuntimeError):
    """The demo made no progress (no step of virtual time, no client activity) for too long: never hang."""


class Conductor:
    """Advances the simulator and the demo clock together whenever the system is quiet.

    A watchdog guards every wait: when virtual time has not been stepped for ``stall_s`` real seconds, the
    conductor raises :class:`DemoStalled` naming what it was waiting for (the system busy without end, or
    quiet with nothing due), so a demo fails with a reason instead of hanging.
    """

    def __init__(
        self,
        server: SimServer,
        clock: DemoClock,
        busy: Callable[[], bool],
        stall_s: float = STALL_S,
        describe: Callable[[], str] | None = None,
        quiet_s: float = QUIET_S,
    ) -> None:
        self._server = server
        self._clock = clock
        self._busy = busy
        self._stall_s = stall_s
        self._describe = describe
        self._quiet_s = quiet_s
        self._last_step = time.monotonic()
        self.steps = 0

    async def run_until(self, end: datetime) -> None:
        """Drive virtual time to ``end``."""
        while self._clock.now() < end:
            await self._step(end)

    async def run(self) -> None:
        """Drive virtual time for as long as anything is due (until cancelled by the demo)."""
        while True:
            await self._step(None)

    async def _step(self, end: datetime | None) -> None:
        await self._quiet()
        if self._clock.wake_due():
            self._progress()
            await asyncio.sleep(0)
            return
        wake = self._clock.next_wake()
        # the simulator's timers are stepped only on behalf of someone waiting for time: with no sleeper the
        # demo is starting or finishing (a cancelled poller awaited, the books read), and a jump to the
        # next timer (the after-hours end, hours away) would move the run's end with it
        timer = self._next_timer() if wake is not None or end is not None else None
        due = [t for t in (timer, wake, end) if t is not None]
        if not due:  # quiet and nothing due: whoever waits, waits on something that never comes
            self._check_stall("the system is quiet and nothing is scheduled for anyone waiting")
            await asyncio.sleep(QUIET_S)
            return
        target = min(due)
        if target > self._clock.now():  # else it is already due: time flowed past it while busy
            await asyncio.to_thread(self._advance, target)
            self.steps += 1
        self._progress()
        self._clock.touch()
        self._clock.wake_due()

    def _progress(self) -> None:
        self._last_step = time.monotonic()

    def _check_stall(self, why: str) -> None:
        stalled_s = time.monotonic() - self._last_step
        if stalled_s >= self._stall_s:
            detail = f" ({self._describe()})" if self._describe else ""
            raise DemoStalled(
                f"demo stalled: no step of virtual time for {stalled_s:.0f} s real time at virtual "
                f"{self._clock.now():%Y-%m-%d %H:%M:%S}: {why}{detail}"
            )

    async def _quiet(self) -> None:
        # quiet = not busy, continuously, for quiet_s, and no client activity within quiet_s; with
        # quiet_s = 0 (clients whose only activity is a call in flight): not busy after every task woken
        # has had its turns of the event loop
        if self._quiet_s <= 0:
            while True:
                for _ in range(YIELDS):
                    await asyncio.sleep(0)
                if not self._busy():
                    return
                self._check_stall("the system never became quiet")
                await asyncio.sleep(0.0005)
        quiet_since: float | None = None
        while True:
            await asyncio.sleep(self._quiet_s / 5)
            now = time.monotonic()
            if self._busy() or now - self._clock.last_activity < self._quiet_s:
                quiet_since = None
                self._check_stall("the system never became quiet")
            elif quiet_since is None:
                quiet_since = now
            elif now - quiet_since >= self._quiet_s:
                return

    def _advance(self, target: datetime) -> None:
        # the flowing clock may have passed `target` since it was computed: never ask it to go back
        self._server.advance_to(max(target, self._clock.now()))

    def _next_timer(self) -> datetime | None:
        exchange = self._server.simulator.exchange
        with exchange.lock:
            return exchange.scheduler.next_due()
