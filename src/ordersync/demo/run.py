"""Run one demo: start the simulator, drive the scenario in one mode, summarize from the simulator's books.

The modes' runners are ``safe_run.py`` (ordersync's engine) and ``client_run.py`` (the three baselines); a
scenario parent becomes safe mode's order and plan in ``entries.py``; the options are ``options.py``'s.
Their public names are importable from here as before.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

from ordersync.demo.client_run import ClientRun
from ordersync.demo.conductor import Conductor, DemoClock
from ordersync.demo.entries import UnsupportedScenario, check_supported, entry_order, plan_for
from ordersync.demo.options import DEFAULT_START, DEMO_KEY, DEMO_SECRET, MODES, DemoOptions
from ordersync.demo.orders import parents_of
from ordersync.demo.safe_run import SafeRun, alerts_raised
from ordersync.demo.summary import Summary, summarize_books
from ordersync.sim.clock import FlowingClock
from ordersync.sim.scenarios import Scenario
from ordersync.sim.server import SimServer

__all__ = [
    "DEFAULT_START",
    "DEMO_KEY",
    "DEMO_SECRET",
    "MODES",
    "DemoOptions",
    "UnsupportedScenario",
    "alerts_raised",
    "check_supported",
    "entry_order",
    "plan_for",
    "run_demo",
    "scenario_end",
]

SETTLE_S = 600.0  # virtual seconds after the last scheduled event, to let everything settle


def scenario_end(scenario: Scenario, start: datetime) -> datetime:
    """Return when the scenario's last scheduled event happens, plus the settle time."""
    last = 0.0
    for parent in scenario.parents:
        times = [f.after_s for f in parent.fills] + [parent.cancel_after_s or 0, parent.expire_after_s or 0]
        last = max(last, parent.submit_at_s + max(times, default=0.0))
    last = max([last, *(p.at_s for p in scenario.prices)])
    last = max([last, *(a.at_s for a in scenario.actions), *(r.at_s for r in scenario.restarts)])
    return start + timedelta(seconds=last + SETTLE_S)


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
        return SafeRun(server, clock, options)
    if options.mode in ("naive", "poller", "bracket"):
        return ClientRun(server, clock, options)
    raise ValueError(f"mode must be one of {', '.join(MODES)}, was {options.mode!r}")
