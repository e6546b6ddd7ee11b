"""The chaos worker: the real engine as a platform would run it, one process that may be killed at any time.

``python -m tools.chaos.worker --base-url URL --stream-url URL --db URL --parents FILE --origin ISO``

It builds the engine with ``ordersync.bootstrap.wire`` as ``ordersync run`` does, with its default
intervals (the crash points wrap the store and broker the engine sees), on the simulator's lockstep clock
(``--clock-file``/``--status-file``: ``lockstep.py``), starts the engine (which catches up and resumes
unsent intents and unsettled submits),
then submits each scenario parent (``--parents``: the JSON ``write_parents`` makes of a scenario, read
without the scenario's models, so a restart protects sooner) when the simulator's clock reaches its
``submit_at_s`` (counted from ``--origin``, the simulator's start) unless the store already holds it: a
restarted worker never submits a parent twice, and one it had written but not sent is the engine's to
resume. SIGTERM stops it cleanly; SIGKILL is the point.

``--crash-at POINT`` makes it SIGKILL itself at a named moment (``crash.py`` lists them).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from ordersync.bootstrap import wire
from ordersync.config import BrokerSettings, Settings, StoreSettings, credentials_from_env, secret_values
from ordersync.domain.errors import BrokerError
from ordersync.engine import Engine, EngineOptions
from ordersync.logging import configure
from ordersync.store.lease import LeaseLost
from tools.chaos.crash import (
    CRASH_MARK,
    CRASH_POINTS,
    CrashingBroker,
    CrashingStore,
    CrashPlan,
    Trigger,
)
from tools.chaos.fastclock import FollowClock, fast_options
from tools.chaos.lockstep import LockstepClock
from tools.chaos.parents import Parent, order_of, read_parents, write_parents

__all__ = [
    "CRASH_MARK",
    "CRASH_POINTS",
    "SPAWNED_AT",
    "START_FAILED",
    "CrashPlan",
    "main",
    "worker_options",
    "write_parents",
]

log = structlog.get_logger("tools.chaos.worker")

START_FAILED = 75  # exit code: the engine could not start (a broker error during its start-up)
SPAWNED_AT = "ORDERSYNC_CHAOS_SPAWNED_AT"  # env: the driver's time.time() when it started this process


def _phase(name: str) -> None:
    """Log how long after its spawn this worker reached a start-up phase (real seconds)."""
    spawned = os.environ.get(SPAWNED_AT)
    if spawned is not None:
        log.info("chaos.worker_phase", phase=name, since_spawn_s=round(time.time() - float(spawned), 3))


def worker_options() -> EngineOptions:
    """Return the engine options: the production defaults but a 10 s poll, in the simulator's seconds.

    Under the lockstep clock (``lockstep.py``) one virtual second costs at most one real second, so the
    worker needs no shrunken intervals. The poll interval sets invariant 9's bound (2 x poll): 10 s (6 of
    the 200 requests a minute) leaves room for the clock's 5 s jumps and a retried POST under faults.
    """
    return EngineOptions(poll_interval_s=10.0)


def _parse_time(value: object) -> datetime:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


# -- running ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerArgs:
    base_url: str
    stream_url: str
    db: str
    parents: Path
    origin: datetime
    clock_file: Path | None  # lockstep (lockstep.py) ...
    status_file: Path | None
    crash: CrashPlan | None
    factor: float | None = None  # ... or the simulator's fast:N clock (fastclock.py)
    clock_anchor: tuple[datetime, float] | None = None


def _parse(argv: Sequence[str] | None) -> WorkerArgs:
    parser = argparse.ArgumentParser(prog="python -m tools.chaos.worker", description="chaos worker")
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--stream-url", required=True)
    parser.add_argument("--db", required=True, help="store URL (SQLAlchemy)")
    parser.add_argument("--parents", required=True, type=Path, help="the parents JSON (write_parents)")
    parser.add_argument("--origin", required=True, help="the simulator's start: submit_at_s counts from it")
    parser.add_argument("--clock-file", type=Path, help="the driver's clock (lockstep.py)")
    parser.add_argument("--status-file", type=Path, help="where this worker says it waits (lockstep.py)")
    parser.add_argument("--factor", type=float, help="the simulator's fast:N factor (no lockstep)")
    parser.add_argument("--clock-anchor", help="ISO@MONOTONIC: the fast clock's time at that monotonic()")
    parser.add_argument("--crash-at", choices=CRASH_POINTS)
    parser.add_argument("--crash-role", default="any", choices=("any", "parent", "child"))
    parser.add_argument("--crash-nth", default=1, type=int)
    ns = parser.parse_args(argv)
    crash = CrashPlan(ns.crash_at, ns.crash_role, ns.crash_nth) if ns.crash_at else None
    origin = _parse_time(ns.origin)
    anchor = None
    if ns.clock_anchor:
        at, _, mono = ns.clock_anchor.rpartition("@")
        anchor = (_parse_time(at), float(mono))
    return WorkerArgs(
        ns.base_url,
        ns.stream_url,
        ns.db,
        ns.parents,
        origin,
        ns.clock_file,
        ns.status_file,
        crash,
        ns.factor,
        anchor,
    )


async def _submit_on_schedule(
    engine: Engine, parents: list[Parent], origin: datetime, clock: LockstepClock | FollowClock
) -> None:
    known = {o.client_order_id for o in engine.orders()}
    pending = sorted(
        (p for p in parents if p.order["client_order_id"] not in known), key=lambda p: p.submit_at_s
    )
    log.info("chaos.schedule", known=len(known), to_submit=len(pending))
    submitted = 0
    while pending:
        elapsed = (clock.now() - origin).total_seconds()
        while pending and pending[0].submit_at_s <= elapsed:
            parent = pending[0]
            try:
                await engine.submit(order_of(parent, clock), parent.plan)
            except LeaseLost:
                # the store refused the write: the lease is unconfirmed for a moment (a busy event loop
                # renewed it late). A platform retries its submit; the rolled-back parent is not recorded
                if engine.lease_lost:
                    return  # another instance took over: this process is about to be replaced
                await asyncio.sleep(0.5)
                break
            pending.pop(0)
            submitted += 1
            if submitted % 100 == 0:
                log.info("chaos.submitted", parents=submitted, virtual_s=round(elapsed, 1))
        await clock.sleep(min(pending[0].submit_at_s - elapsed, 1.0) if pending else 0)


async def run(args: WorkerArgs) -> int:
    """Run the engine and the scenario's submissions until SIGTERM/SIGINT; return the exit code."""
    _phase("imported")
    credentials = credentials_from_env()
    parents = read_parents(args.parents)
    parent_ids = {p.order["client_order_id"] for p in parents}
    trigger = Trigger(args.crash, parent_ids)
    clock: LockstepClock | FollowClock
    if args.clock_file is not None and args.status_file is not None:
        clock, options = LockstepClock(args.clock_file, args.status_file), worker_options()
    else:
        assert args.factor is not None
        assert args.clock_anchor is not None
        clock = FollowClock(args.clock_anchor[0], args.factor, args.clock_anchor[1])
        options = fast_options(args.factor)
    settings = Settings(
        broker=BrokerSettings(base_url=args.base_url, stream_url=args.stream_url, timeout_s=5.0),
        store=StoreSettings(url=args.db),
    )
    # as `ordersync run`: the single writer (keep_orders), one active instance (the lease)
    wiring = wire(
        settings,
        credentials,
        clock,
        options=options,
        adapt=lambda store, broker: (
            CrashingStore(store, trigger, parent_ids),
            CrashingBroker(broker, trigger),
        ),
    )
    _phase("store_opened")
    engine, alpaca, real_store, lease = wiring.engine, wiring.broker, wiring.store, wiring.lease
    assert lease is not None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    watched: list[asyncio.Task[Any]] = []

    def busy() -> bool:  # the driver holds the market's clock while this is true (lockstep.py)
        if watched and not watched[0].done():
            # starting: the lease a killed worker held expires in real time (store/lease.py), and a
            # standby polling it on the market's clock would see minutes go by; a start-up is real time
            return True
        tasks = [*engine.background_tasks(), *(t for t in watched if not t.done())]
        asleep = clock.sleeping if isinstance(clock, LockstepClock) else set()
        return alpaca.inflight > 0 or engine.has_queued_work() or any(t not in asleep for t in tasks)

    pump = asyncio.create_task(
        clock.run_pump(busy) if isinstance(clock, LockstepClock) else asyncio.Event().wait()
    )
    try:
        began = loop.time()
        starting = asyncio.create_task(engine.start())
        watched.append(starting)
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():  # told to stop while starting
            starting.cancel()
            await engine.stop()
            return 0
        stopping.cancel()
        if starting.exception() is not None:
            error = starting.exception()
            log.error("chaos.start_failed", error=repr(error)[:300])
            return START_FAILED if isinstance(error, BrokerError) else 1
        log.info("chaos.worker_started", seconds=round(loop.time() - began, 2))
        _phase("engine_started")
        submitter = asyncio.create_task(
            _submit_on_schedule(engine, parents, args.origin, clock), name="submitter"
        )
        watched.append(submitter)
        await stop.wait()
        submitter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await submitter
        if submitter.exception() if not submitter.cancelled() else None:
            log.error("chaos.submitter_failed", error=repr(submitter.exception())[:300])
        await engine.stop()
        budget = alpaca.budget  # where the engine's virtual time went waiting for the request budget
        log.info(
            "chaos.budget",
            requests=budget.requests,
            waited_s=round(budget.waited_s, 1),
            rate_limited=budget.rate_limited,
        )
        return 0
    finally:
        pump.cancel()
        lease.release()
        real_store.close()
        if isinstance(clock, LockstepClock):
            clock.close()


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m tools.chaos.worker``."""
    args = _parse(argv)
    configure(json=True, level="info", secrets=secret_values())
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
