"""Helpers shared by the simulator's integration tests: a test scenario, SDK clients, a stream recorder."""

from __future__ import annotations

import asyncio
import functools
import itertools
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from alpaca.trading.client import TradingClient
from alpaca.trading.models import TradeUpdate
from alpaca.trading.stream import TradingStream

from ordersync.sim import Scenario, SimServer, parse_scenario

START = datetime(2025, 10, 10, 15, 59, tzinfo=UTC)
KEY, SECRET = "test-key", "test-secret"
_symbols = itertools.count(1)


def scenario(**overrides: Any) -> Scenario:
    """A small test scenario: a few symbols and fill plans; `overrides` replace top-level keys."""
    data: dict[str, Any] = {
        "name": "integration",
        "start": START.isoformat(),
        "rate_limit_per_min": 10_000,
        "symbols": {"OKE": {"price": "72.10"}, "STWD": {"price": "20.05"}, "EPD": {"price": "31.20"}},
        "parents": [
            {"id": "plan-oke", "symbol": "OKE", "qty": "9", "fills": [{"after_s": 204, "qty": "9"}]},
            {"id": "plan-stwd", "symbol": "STWD", "qty": "37", "fills": [{"after_s": 174, "qty": "37"}]},
            {
                "id": "plan-epd",
                "symbol": "EPD",
                "qty": "10",
                "fills": [{"after_s": 60, "qty": "3"}, {"after_s": 120, "qty": "4", "price": "31.25"}],
            },
        ],
    }
    data.update(overrides)
    return parse_scenario(data, "test scenario")


def new_symbol(sim: SimServer, price: str = "50.00") -> str:
    """List a fresh symbol on `sim`, so a test's positions are its own."""
    symbol = f"T{next(_symbols):03d}"
    sim.set_price(symbol, price)
    return symbol


def trading_client(sim: SimServer, key: str = KEY, secret: str = SECRET) -> TradingClient:
    client = TradingClient(key, secret, url_override=sim.base_url)
    client._retry_wait = 0.01
    client._session.request = functools.partial(client._session.request, timeout=10)  # type: ignore[method-assign]
    return client


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


class StreamRecorder:
    """Runs alpaca-py's TradingStream in its own thread and records every TradeUpdate it delivers."""

    def __init__(self, sim: SimServer, key: str = KEY, secret: str = SECRET) -> None:
        self.sim = sim
        self.events: list[TradeUpdate] = []
        self._lock = threading.Lock()
        self.stream = TradingStream(key, secret, url_override=sim.stream_url)
        self.stream.subscribe_trade_updates(self._handle)
        self._thread = threading.Thread(target=self.stream.run, name="trading-stream", daemon=True)

    async def _handle(self, update: TradeUpdate) -> None:
        with self._lock:
            self.events.append(update)

    def start(self, listeners_before: int = 0) -> StreamRecorder:
        self._thread.start()
        wait_until(lambda: self.sim.stream_listeners() > listeners_before, what="the stream to listen")
        return self

    def for_order(self, order_id: object) -> list[TradeUpdate]:
        with self._lock:
            return [e for e in self.events if str(e.order.id) == str(order_id)]

    def wait_for(
        self, order_id: object, event: str, count: int = 1, timeout: float = 5.0
    ) -> list[TradeUpdate]:
        def matching() -> list[TradeUpdate]:
            return [e for e in self.for_order(order_id) if e.event == event]

        wait_until(lambda: len(matching()) >= count, timeout, f"{count} {event!r} event(s) for {order_id}")
        return matching()

    def stop(self) -> None:
        loop = self.stream._loop
        if loop is not None and loop.is_running():
            asyncio.run_coroutine_threadsafe(self.stream.stop_ws(), loop).result(timeout=5)
        self.sim.disconnect_streams()  # wakes the SDK's 5 s recv wait so it sees the stop at once
        self._thread.join(timeout=10)


# the types of conftest.py's fixture factories, for the test files' annotations
Sim = Callable[..., SimServer]
Client = Callable[..., TradingClient]
Recorder = Callable[[SimServer], StreamRecorder]
HEADERS = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}  # raw HTTP calls with the test keys
