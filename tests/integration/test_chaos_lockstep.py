"""The chaos harness's lockstep clock: the market's time jumps only while the engine's side is quiet.

A real simulator on a flowing clock, the driver's Pacer and the worker's LockstepClock in this process (the
harness puts them in two processes sharing the same files).
"""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from ordersync.sim import SimServer, parse_scenario
from ordersync.sim.clock import FlowingClock, parse_clock_spec
from tools.chaos.lockstep import LockstepClock, Pacer

START = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)


def test_the_flowing_clock_spec_is_served() -> None:
    assert isinstance(parse_clock_spec("flowing", START), FlowingClock)


def test_the_pacer_jumps_only_while_the_worker_is_quiet_and_wakes_its_sleepers(tmp_path: Path) -> None:
    scenario = parse_scenario({"symbols": {"OKE": {"price": "100"}}})
    busy = threading.Event()
    busy.set()

    async def worker(clock: LockstepClock, pacer: Pacer) -> tuple[bool, bool, float]:
        pump = asyncio.create_task(clock.run_pump(busy.is_set))
        await asyncio.sleep(0.2)
        # busy: the driver may not jump (time flows at real speed only)
        held = await asyncio.to_thread(pacer.step)
        busy.clear()
        began = clock.now()
        sleeper = asyncio.create_task(clock.sleep(30))  # thirty virtual seconds
        jumped = False
        while not sleeper.done():
            jumped = await asyncio.to_thread(pacer.step) or jumped
            await asyncio.sleep(0.005)
        pump.cancel()
        return held, jumped, (clock.now() - began).total_seconds()

    with (
        SimServer(scenario, FlowingClock(START), api_key="k", secret_key="s") as server,
        httpx.Client(base_url=server.base_url, timeout=10) as http,
    ):
        pacer = Pacer(http, tmp_path, step_s=5.0)
        clock = LockstepClock(pacer.clock_path, pacer.status_path)
        held, jumped, waited = asyncio.run(worker(clock, pacer))
        sim_now = server.now()
        clock.close()
        pacer.close()

    assert not held, "no jump while the worker is busy"
    assert jumped
    assert pacer.steps >= 6, "the quiet worker's thirty virtual seconds were jumped over, 5 s at a time"
    assert waited >= 30
    assert sim_now >= START + timedelta(seconds=30), "the simulator's clock is the one that moved"


def test_a_jump_ends_at_a_one_shot_wake_and_never_at_a_periodic_loops(tmp_path: Path) -> None:
    # the request budget's waiters are one-shot wakes: jumping past them would waste its tokens; the
    # engine's ticker wakes every second and is quantised to the step instead
    scenario = parse_scenario({"symbols": {"OKE": {"price": "100"}}})

    async def worker(clock: LockstepClock, pacer: Pacer) -> tuple[float, int]:
        pump = asyncio.create_task(clock.run_pump(lambda: False))

        async def ticker() -> None:
            while True:
                await clock.sleep(1.0)

        ticking = asyncio.create_task(ticker(), name="ticker")
        began = clock.now()
        waiter = asyncio.create_task(clock.sleep(2.5))  # e.g. a request waiting for a token
        while not waiter.done():
            await asyncio.to_thread(pacer.step)
            await asyncio.sleep(0.005)
        woke_after = (clock.now() - began).total_seconds()
        steps = pacer.steps
        ticking.cancel()
        pump.cancel()
        return woke_after, steps

    with (
        SimServer(scenario, FlowingClock(START), api_key="k", secret_key="s") as server,
        httpx.Client(base_url=server.base_url, timeout=10) as http,
    ):
        pacer = Pacer(http, tmp_path, step_s=5.0)
        clock = LockstepClock(pacer.clock_path, pacer.status_path)
        woke_after, steps = asyncio.run(worker(clock, pacer))
        clock.close()
        pacer.close()

    assert 2.5 <= woke_after < 5.0, "the jump stopped at the waiter's due time, not the 5 s step"
    assert steps == 1, "the ticker's 1 s wakes did not cut the jump short"
