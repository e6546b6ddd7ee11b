"""429s against the simulator's real rate limiter: wait until X-Ratelimit-Reset, never a fixed minute.

The simulator runs on a stepped clock and the adapter's clock *is* that clock (sleeping advances it), so
the test sees exactly how long the adapter chose to wait, in the broker's own seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ordersync.brokers.alpaca import AlpacaBroker
from ordersync.brokers.alpaca.budget import RequestBudget
from ordersync.domain.errors import RateLimited
from ordersync.domain.ids import ClientOrderId
from ordersync.ports import Priority, prioritized
from ordersync.sim import SimServer, SteppedClock, parse_scenario

START = datetime(2025, 10, 10, 15, 59, 30, tzinfo=UTC)  # 30 s before a rate-limit window ends
KEY, SECRET = "limit-key", "limit-secret"


class SimTime:
    """The Clock port on the simulator's stepped clock: a sleep advances the broker's time."""

    def __init__(self, server: SimServer) -> None:
        self._server = server
        self.slept: list[float] = []

    def now(self) -> datetime:
        return self._server.now()

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        if seconds > 0:
            await asyncio.to_thread(self._server.advance, seconds)
        await asyncio.sleep(0)


class SimTimeless:
    """A clock standing still at START (for a budget decision on its own)."""

    def now(self) -> datetime:
        return START

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)


def start_sim(limit: int, faults: dict[str, Any] | None = None) -> SimServer:
    data: dict[str, Any] = {
        "name": "rate-limit",
        "start": START.isoformat(),
        "rate_limit_per_min": limit,
        "symbols": {"OKE": {"price": "72.10"}},
        "faults": faults or {},
    }
    scenario = parse_scenario(data, "rate-limit scenario")
    return SimServer(scenario, SteppedClock(START), api_key=KEY, secret_key=SECRET).start()


@pytest.fixture
def servers() -> Iterator[list[SimServer]]:
    started: list[SimServer] = []
    yield started
    for server in started:
        server.stop()


def broker_on(server: SimServer) -> tuple[AlpacaBroker, SimTime]:
    clock = SimTime(server)
    return AlpacaBroker(KEY, SECRET, clock=clock, base_url=server.base_url, timeout_s=5), clock


async def test_a_window_spent_by_another_process_waits_until_its_reset_and_not_a_second_longer(
    servers: list[SimServer],
) -> None:
    server = start_sim(limit=3)
    servers.append(server)
    broker, clock = broker_on(server)
    other, _ = broker_on(server)  # another process on the same key
    reset = datetime(2025, 10, 10, 16, 0, tzinfo=UTC)  # the simulator's window is the clock minute
    with prioritized(Priority.PROTECT):
        await broker.positions()
        await other.positions()
        await other.positions()  # the window is spent; our broker does not know yet

        with pytest.raises(RateLimited) as refused:
            await broker.positions()
        assert refused.value.retry_after_s == pytest.approx((reset - server.now()).total_seconds(), abs=0.01)
        await broker.positions()

    assert server.now() == reset, f"waited until {server.now()}, the window reset at {reset}"
    assert sum(clock.slept) < 31, "one wait until the reset, no fixed ~59 s on top"


async def test_our_own_requests_never_earn_a_429_when_the_broker_says_the_window_is_spent(
    servers: list[SimServer],
) -> None:
    server = start_sim(limit=3)
    servers.append(server)
    broker, _ = broker_on(server)
    with prioritized(Priority.PROTECT):
        for _ in range(4):
            await broker.positions()  # the 4th waits for the next window instead of being refused
    assert server.now() == datetime(2025, 10, 10, 16, 0, tzinfo=UTC)
    assert broker.budget.rate_limited == 0


async def test_an_injected_429_waits_until_its_own_reset_not_the_rest_of_the_minute(
    servers: list[SimServer],
) -> None:
    # the simulator answers a refused burst as Alpaca does: remaining 0, reset at the next whole second
    faults = {"on_request": [{"nth": 1, "fault": "429", "path": "/v2/orders:by_client_order_id"}]}
    server = start_sim(limit=200, faults=faults)
    servers.append(server)
    broker, _ = broker_on(server)
    before = server.now()

    with pytest.raises(RateLimited) as refused:
        await broker.get_by_client_id(ClientOrderId("any"))
    assert refused.value.retry_after_s == 1.0, "until the reset the 429 named, not the window's 30 s left"
    await broker.get_by_client_id(ClientOrderId("any"))

    assert server.now() - before == timedelta(seconds=1)


def test_a_429_with_budget_left_costs_a_short_backoff_not_the_reset() -> None:
    # a 429 whose headers still show budget (a burst the broker refused anyway): a quarter second
    clock = SimTimeless()
    budget = RequestBudget(clock, per_minute=190)
    assert budget.on_rate_limited(remaining=199, reset_epoch=clock.now().timestamp() + 30) == 0.25


async def test_when_the_brokers_count_runs_low_only_protection_goes_until_the_reset(
    servers: list[SimServer],
) -> None:
    server = start_sim(limit=4)
    servers.append(server)
    broker, _ = broker_on(server)
    await broker.positions()  # the broker now says 3 remain in this window

    with prioritized(Priority.BACKGROUND):
        await broker.positions()  # a reconciliation read: it leaves the last requests of the window alone
    assert server.now() == datetime(2025, 10, 10, 16, 0, tzinfo=UTC), "it waited for the next window"

    assert broker.budget.wait_s(Priority.NORMAL) == 0, "3 remain: a normal request may still go"
    await broker.positions()  # 2 remain: only protection may spend them now
    assert broker.budget.wait_s(Priority.NORMAL) > 0
    before = server.now()
    with prioritized(Priority.PROTECT):
        for _ in range(2):
            await broker.positions()  # a child's position read goes at once, down to the last request
    assert server.now() == before
