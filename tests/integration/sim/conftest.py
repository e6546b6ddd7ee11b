"""Fixtures for driving the simulator through the official SDK over loopback HTTP and websocket.

One simulator per module (stepped clock, port 0) serves most tests; each test trades its own symbols, so tests
do not see each other's positions. Tests that need a special scenario (faults, latencies) start their own with
`make_sim`. Clients are alpaca-py's `TradingClient` and `TradingStream`, configured as docs/alpaca.md §11.5
advises for tests: short retry wait, a request timeout.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from alpaca.trading.client import TradingClient
from simtools import KEY, SECRET, START, StreamRecorder, new_symbol, scenario, trading_client

from ordersync.sim import SimServer, SteppedClock


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    with SimServer(scenario(), SteppedClock(START), api_key=KEY, secret_key=SECRET) as server:
        yield server


@pytest.fixture
def make_sim() -> Iterator[Callable[..., SimServer]]:
    """Start a dedicated simulator for a scenario with `overrides`; stopped at teardown."""
    servers: list[SimServer] = []

    def start(**overrides: Any) -> SimServer:
        server = SimServer(scenario(**overrides), SteppedClock(START), api_key=KEY, secret_key=SECRET).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def client(sim: SimServer) -> TradingClient:
    return trading_client(sim)


@pytest.fixture
def client_for() -> Callable[..., TradingClient]:
    """`client_for(sim, key=..., secret=...)`: a configured TradingClient for any simulator."""
    return trading_client


@pytest.fixture
def fresh_symbol(sim: SimServer) -> Callable[..., str]:
    """`fresh_symbol(price="50.00")`: a symbol listed just now on the module's simulator."""
    return functools.partial(new_symbol, sim)


@pytest.fixture
def recorder() -> Iterator[Callable[[SimServer], StreamRecorder]]:
    """Start a StreamRecorder on a simulator; stopped at teardown."""
    recorders: list[StreamRecorder] = []

    def start(server: SimServer) -> StreamRecorder:
        rec = StreamRecorder(server).start(server.stream_listeners())
        recorders.append(rec)
        return rec

    yield start
    for rec in recorders:
        rec.stop()
