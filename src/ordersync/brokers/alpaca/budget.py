"""A request budget under Alpaca's 200 requests/minute per key (semantics.md §5).

A token bucket on the injected clock: callers wait for a token instead of earning a 429, and a 429 that
arrives anyway (another process on the same key) empties the bucket until the broker's reset.
"""

from __future__ import annotations

from datetime import datetime

from ordersync.ports import Clock


class RequestBudget:
    """Token bucket: ``per_minute`` tokens, refilled continuously, ``burst`` at most."""

    def __init__(self, clock: Clock, per_minute: float = 190.0, burst: float = 20.0) -> None:
        if per_minute <= 0 or burst < 1:
            raise ValueError(f"per_minute must be > 0 and burst >= 1, were {per_minute}, {burst}")
        self._clock = clock
        self._rate_s = per_minute / 60.0
        self._burst = burst
        self._tokens = burst
        self._at: datetime = clock.now()
        self.requests = 0
        self.waited_s = 0.0

    def _refill(self) -> None:
        now = self._clock.now()
        elapsed = max(0.0, (now - self._at).total_seconds())
        self._tokens = min(self._burst, self._tokens + elapsed * self._rate_s)
        self._at = now

    async def acquire(self) -> None:
        """Wait until a request may be sent, then spend one token."""
        self._refill()
        while self._tokens < 1:
            wait = (1 - self._tokens) / self._rate_s
            self.waited_s += wait
            await self._clock.sleep(wait)
            self._refill()
        self._tokens -= 1
        self.requests += 1

    def penalize(self, retry_after_s: float | None) -> None:
        """Empty the bucket after a 429 so the next requests wait for the broker's window."""
        self._refill()
        self._tokens = min(self._tokens, 0.0) - (retry_after_s or 0.0) * self._rate_s
