"""The alpaca-py client the demo's baseline platforms share (naive, poller, bracket).

Each call runs in a thread (alpaca-py is blocking), counts as in flight while it runs (so the conductor does
not move virtual time under it) and records activity on the demo clock. ``attempt`` is how the platforms
meet the broker's bad days: any error answer (a refusal, a 429, a 5xx, a lost response's 504) or transport
failure is logged in the seed platform's format and returned as ``None``, and the platform carries on, as the
seed's platform did (it logged errors and kept running).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient

from ordersync.demo.conductor import DemoClock
from ordersync.demo.platform_log import PlatformLog

T = TypeVar("T")

INSUFFICIENT_QTY = "40310000"


@dataclass(frozen=True)
class CallError:
    """What a failed call answered: the HTTP status (0 for a transport failure) and the parsed body."""

    status: int
    body: dict[str, Any]

    @property
    def refused(self) -> bool:
        """True for the broker's own refusal (4xx other than 429), not the weather (429, 5xx, transport)."""
        return 400 <= self.status < 500 and self.status != 429


class PlatformClient:
    """One platform's blocking alpaca-py client, driven from the event loop."""

    def __init__(self, client: TradingClient, clock: DemoClock, log: PlatformLog) -> None:
        self.client = client
        self.clock = clock
        self.log = log
        self.inflight = 0
        self.errors = 0
        self.last_error: CallError | None = None

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one blocking call in a thread; errors propagate."""
        self.inflight += 1
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        finally:
            self.inflight -= 1
            self.clock.touch()

    async def attempt(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """Run one call; on any error log it (seed format, ``what`` names the call) and return None."""
        try:
            return await self.call(fn, *args, **kwargs)
        except (APIError, requests.RequestException) as e:
            self.errors += 1
            self.last_error = error_of(e)
            if what != "submitting order":  # submissions are logged by the platform, with their context
                self.log.error(self.clock.now(), what, self.last_error.body)
            return None


def error_of(error: Exception) -> CallError:
    """Return the status and body of a failed call."""
    if isinstance(error, APIError):
        status = error.status_code or 0
        try:
            parsed = json.loads(str(error))
        except json.JSONDecodeError:
            parsed = {"message": str(error)[:200]}
        body = parsed if isinstance(parsed, dict) else {"message": str(parsed)}
        return CallError(status, body)
    return CallError(0, {"message": f"{type(error).__name__}: {str(error)[:200]}"})
