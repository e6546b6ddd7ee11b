"""Lockstep virtual time for the chaos run: the market's clock moves on only while the engine waits.

A fast clock (N x real time) turns every real second the worker spends waiting for a CPU into N seconds of
market time, so on a loaded test machine fill->protect measured the machine, not the engine. Here the
simulator runs a ``flowing`` clock (``ordersync sim serve --clock flowing``: it runs at real speed and jumps
forward on ``POST /sim/clock/advance``) and the driver's :class:`Pacer` jumps it only when the worker says
it is quiet: no broker request in flight, no queued observation, every engine loop asleep on the clock.
While anything is in flight, or while the worker is dead or restarting, time flows at real speed, so the
engine's processing and a restart cost exactly the real seconds they take (1 real s = 1 virtual s, as in
production), while the idle stretches between market events cost nothing. The demo's conductor does the
same in one process (``ordersync.demo.conductor``).

The two processes share two small memory-mapped files (a seqlock each: odd sequence = being written):

* the clock file, written by the driver after each jump: ``(seq, virtual epoch s, time.monotonic())``; the
  worker's :class:`LockstepClock` reads ``now = virtual + (monotonic() - anchor)`` from it (the monotonic
  clock is host-wide), so it never asks the simulator for the time;
* the status file, written by the worker's pump every few milliseconds: ``(seq, clock seq seen, busy,
  quiet since, next wake, heartbeat)``. A stale heartbeat (the worker dead, starting, or its event loop
  blocked) counts as busy.

A jump is ``step_s`` long, or shorter: it ends at the worker's next one-shot wake (a request waiting for
the budget, a backoff, a lookup), which is honoured exactly. The engine's periodic loops (``PERIODIC``:
tick, poll, reconcile, and the worker's parent submitter) run at the jump's end instead of every second:
that is what makes the run short. Whatever else falls due inside a jump (a simulator fill) is handled at
its end, so the quantisation adds at most ``step_s`` to a fill's measured delay, never less (the
simulator stamps each fill at its own time). Honouring one-shot wakes matters: the request budget refills
in virtual time up to a burst of 9, so jumping past its waiters would throw its tokens away (a fixed
10 s jump left the engine about 54 requests a minute instead of 180).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import mmap
import struct
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

__all__ = ["LockstepClock", "Pacer", "SharedRecord"]

_CLOCK = struct.Struct("<Qdd")  # seq, virtual epoch seconds, monotonic anchor
_STATUS = struct.Struct("<Qqddd d")  # seq, clock seq seen, busy, quiet since, next wake (epoch), heartbeat
PUMP_S = 0.002  # real seconds between the worker's status writes
QUIET_S = 0.01  # real seconds the worker must have been quiet before a jump
STALE_S = 0.05  # a heartbeat older than this: the worker is not answering (dead, starting, blocked)
YIELDS = 4  # event-loop turns a woken task gets before the worker may call itself quiet
STEP_FLOOR_S = 0.05  # the shortest jump (virtual s): a one-shot wake closer than this waits for it
PERIODIC = frozenset({"ticker", "poller", "reconciler", "submitter"})  # task names quantised to the step


class SharedRecord:
    """A fixed-size record in a memory-mapped file, written by one process, read by others (a seqlock)."""

    def __init__(self, path: Path, layout: struct.Struct) -> None:
        self._layout = layout
        if not path.exists() or path.stat().st_size < layout.size:
            path.write_bytes(bytes(layout.size))
        self._file = path.open("r+b")
        self._map = mmap.mmap(self._file.fileno(), layout.size)
        record = self.read()
        self._seq = int(record[0]) if record is not None else 0

    def write(self, *values: float) -> None:
        """Publish ``values`` (everything after the sequence number)."""
        self._seq += 1 + (self._seq % 2)  # odd: being written
        self._map[0:8] = struct.pack("<Q", self._seq)
        self._map[8:] = self._layout.pack(self._seq, *values)[8:]
        self._seq += 1
        self._map[0:8] = struct.pack("<Q", self._seq)

    def read(self) -> tuple[Any, ...] | None:
        """The last complete record (None when the writer was mid-write twice running: try again)."""
        for _ in range(2):
            record = self._layout.unpack(self._map[: self._layout.size])
            if record[0] % 2 == 0 and struct.unpack("<Q", self._map[0:8])[0] == record[0]:
                return tuple(record)
        return None

    def close(self) -> None:
        self._map.close()
        self._file.close()


def clock_record(path: Path) -> SharedRecord:
    return SharedRecord(path, _CLOCK)


def status_record(path: Path) -> SharedRecord:
    return SharedRecord(path, _STATUS)


class LockstepClock:
    """The worker's Clock port: the simulator's flowing time, read from the driver's clock file.

    ``sleep`` parks the caller until virtual time reaches its due time; the pump (``run_pump``) wakes the
    due sleepers and tells the driver whether anything is still at work.
    """

    def __init__(self, clock_path: Path, status_path: Path) -> None:
        self._clock = clock_record(clock_path)
        self._status = status_record(status_path)
        self._sleepers: list[tuple[datetime, int, asyncio.Future[None]]] = []
        self._oneshots: list[tuple[datetime, int, asyncio.Future[None]]] = []  # not of a PERIODIC task
        self._order = itertools.count()
        self._last = datetime.min.replace(tzinfo=UTC)
        self._seen = -1
        self.sleeping: set[asyncio.Task[Any]] = set()

    def _read(self) -> tuple[int, datetime]:
        record = None
        while record is None:
            record = self._clock.read()
        seq, virtual, anchor = record
        now = datetime.fromtimestamp(virtual, UTC) + timedelta(seconds=time.monotonic() - anchor)
        return int(seq), now

    def now(self) -> datetime:
        """The simulator's time (flowing at real speed between the driver's jumps); never goes back."""
        self._last = max(self._last, self._read()[1])
        return self._last

    async def sleep(self, seconds: float) -> None:
        """Wait until virtual time has advanced by ``seconds``."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        due = self.now() + timedelta(seconds=seconds)
        entry = (due, next(self._order), future)
        heapq.heappush(self._sleepers, entry)
        task = asyncio.current_task()
        if task is None or task.get_name() not in PERIODIC:
            heapq.heappush(self._oneshots, entry)
        if task is not None:
            self.sleeping.add(task)
        try:
            await future
        finally:
            if task is not None:
                self.sleeping.discard(task)

    def _wake_due(self, now: datetime) -> int:
        woken = 0
        while self._sleepers and (self._sleepers[0][0] <= now or self._sleepers[0][2].done()):
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)
                woken += 1
        return woken

    async def run_pump(self, busy: Callable[[], bool]) -> None:
        """Wake due sleepers and publish the worker's status, until cancelled."""
        quiet_since = math.nan
        while True:
            seq, now = self._read()
            if self._wake_due(now) or seq != self._seen:
                self._seen = seq
                quiet_since = math.nan
                for _ in range(YIELDS):  # let the woken tasks start their next call
                    await asyncio.sleep(0)
            mono = time.monotonic()
            if busy():
                quiet_since = math.nan
            elif math.isnan(quiet_since):
                quiet_since = mono
            while self._oneshots and self._oneshots[0][2].done():
                heapq.heappop(self._oneshots)
            wake = self._oneshots[0][0].timestamp() if self._oneshots else math.inf
            self._status.write(self._seen, 1.0 if busy() else 0.0, quiet_since, wake, mono)
            await asyncio.sleep(PUMP_S)

    def close(self) -> None:
        self._clock.close()
        self._status.close()


class Pacer:
    """The driver's side: jumps the simulator's flowing clock whenever the worker is quiet."""

    def __init__(self, http: httpx.Client, workdir: Path, step_s: float) -> None:
        self.clock_path, self.status_path = workdir / "clock.bin", workdir / "status.bin"
        self._http = http
        self._step_s = step_s
        self._clock = clock_record(self.clock_path)
        self._status = status_record(self.status_path)
        self._seq = 0
        self.steps = 0
        self.jumped_s = 0.0  # virtual seconds skipped by jumps (the rest flowed at real speed)
        self.advance_real_s = 0.0  # real seconds spent asking the simulator to jump
        self._publish(self._sim_now())

    def _sim_now(self) -> datetime:
        return _parse(self._http.get("/sim/clock").json()["now"])

    def _publish(self, now: datetime) -> None:
        self._clock.write(now.timestamp(), time.monotonic())
        record = self._clock.read()
        self._seq = int(record[0]) if record is not None else self._seq + 2

    def now(self) -> datetime:
        """The simulator's time, from the clock file (no request)."""
        record = None
        while record is None:
            record = self._clock.read()
        return datetime.fromtimestamp(record[1], UTC) + timedelta(seconds=time.monotonic() - record[2])

    def _quiet_until(self) -> float | None:
        """The worker's next wake (epoch s; inf: none) when it is quiet and has seen the last jump."""
        status = self._status.read()
        if status is None:
            return None
        _, seen, busy, quiet_since, wake, beat = status
        mono = time.monotonic()
        if seen != self._seq or busy or math.isnan(quiet_since) or mono - beat > STALE_S:
            return None
        return float(wake) if mono - quiet_since >= QUIET_S else None

    def step(self, limit: datetime | None = None) -> bool:
        """Jump ``step_s`` on, or to the worker's next one-shot wake, or to ``limit``, whichever comes
        first, if the worker is quiet; return whether it jumped."""
        wake = self._quiet_until()
        if wake is None:
            return False
        now = self.now()
        target = now.timestamp() + self._step_s
        target = min(target, max(wake, now.timestamp() + STEP_FLOOR_S))
        if limit is not None:
            target = min(target, limit.timestamp())
        seconds = target - now.timestamp()
        if seconds <= 0:
            return False
        sent = time.monotonic()
        answer = self._http.post("/sim/clock/advance", json={"seconds": f"{seconds:.6f}"})
        answer.raise_for_status()
        self._publish(_parse(answer.json()["now"]))
        self.advance_real_s += time.monotonic() - sent
        self.steps += 1
        self.jumped_s += seconds
        return True

    def run_for(self, real_s: float, watch: Callable[[], None] | None = None) -> None:
        """Pace the clock for ``real_s`` real seconds."""
        self.run(lambda: False, time.monotonic() + real_s, watch)

    def run_until(self, at: datetime, watch: Callable[[], None] | None = None) -> None:
        """Pace the clock until virtual time reaches ``at``."""
        self.run(lambda: self.now() >= at, math.inf, watch, at)

    def run(
        self,
        done: Callable[[], bool],
        deadline: float,
        watch: Callable[[], None] | None = None,
        limit: datetime | None = None,
    ) -> None:
        last_watch = 0.0
        while not done() and time.monotonic() < deadline:
            if watch is not None and time.monotonic() - last_watch >= 0.05:
                watch()
                last_watch = time.monotonic()
            if not self.step(limit):
                time.sleep(PUMP_S / 2)

    def close(self) -> None:
        self._clock.close()
        self._status.close()


def _parse(value: object) -> datetime:
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
