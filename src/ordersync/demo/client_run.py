"""The three baselines the demo compares ordersync with: ``naive`` (the incident's platform), ``poller`` (a
competent list poller) and ``bracket`` (Alpaca's own brackets), each a platform on alpaca-py without the
stream (docs/comparison.md).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any, Protocol

from alpaca.trading.client import TradingClient

from ordersync.demo.bracket import BracketPlatform
from ordersync.demo.conductor import DemoClock
from ordersync.demo.naive import NaivePlatform
from ordersync.demo.options import DEMO_KEY, DEMO_SECRET, DemoOptions
from ordersync.demo.platform_log import PlatformLog
from ordersync.demo.poller import PollerPlatform
from ordersync.demo.summary import Summary
from ordersync.sim.server import SimServer


class _Platform(Protocol):
    @property
    def inflight(self) -> int: ...

    async def submit_parent(self, parent: Any) -> None: ...


class ClientRun:
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
