"""A request budget under Alpaca's 200 requests/minute per key (docs/alpaca.md, 'Rate limit').

A token bucket on the injected clock: callers wait for a token instead of earning a 429. Three things
refine it:

* priorities (``ordersync.ports.Priority``): a caller waits while a more urgent one waits, and each
  priority below ``PROTECT`` leaves a few tokens untouched, so when the budget runs short the writes that
  protect filled shares still go at once;
* the broker's own count: every response carries ``X-Ratelimit-Remaining`` and ``X-Ratelimit-Reset``; when
  the broker says the window is nearly spent (another process on the same key), only urgent requests go
  until the reset, and none once it is spent;
* a 429 blocks every request until the window's reset when the broker says the window is spent
  (remaining 0), never longer; a 429 that arrives with budget left (a burst the broker refused anyway) is
  retried after a short backoff that doubles with each 429 in a row, capped at the reset.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from ordersync.ports import Clock, Priority

# tokens each priority leaves for more urgent ones (when the bucket or the broker's count runs low)
RESERVE = {Priority.PROTECT: 0, Priority.DETECT: 2, Priority.NORMAL: 4, Priority.BACKGROUND: 8}
MAX_WAIT_S = 60.0  # Alpaca's window is a minute: a reset further away is a broken header
BURST_429_BASE_S = 0.25  # first wait after a 429 that left budget; doubles per 429 in a row


class RequestBudget:
    """Token bucket: ``per_minute`` tokens, refilled continuously, ``burst`` at most; priorities first."""

    def __init__(self, clock: Clock, per_minute: float = 190.0, burst: float = 20.0) -> None:
        if per_minute <= 0 or burst < 1:
            raise ValueError(f"per_minute must be > 0 and burst >= 1, were {per_minute}, {burst}")
        self._clock = clock
        self._rate_s = per_minute / 60.0
        self._burst = burst
        self._tokens = burst
        self._at: datetime = clock.now()
        self._waiting: Counter[Priority] = Counter()
        self._blocked_until = 0.0  # epoch seconds: nothing is sent before (after a 429)
        self._broker: tuple[int, float] | None = None  # (remaining, reset epoch) from the last response
        self._rate_limited_in_a_row = 0
        self.requests = 0
        self.waited_s = 0.0
        self.rate_limited = 0

    def _refill(self) -> None:
        now = self._clock.now()
        elapsed = max(0.0, (now - self._at).total_seconds())
        self._tokens = min(self._burst, self._tokens + elapsed * self._rate_s)
        self._at = now

    async def acquire(self, priority: Priority = Priority.NORMAL) -> None:
        """Wait until a request of ``priority`` may be sent, then spend one token."""
        self._waiting[priority] += 1
        try:
            while (wait := self.wait_s(priority)) > 0:
                self.waited_s += wait
                await self._clock.sleep(wait)
        finally:
            self._waiting[priority] -= 1
        self._tokens -= 1
        if self._broker is not None:
            self._broker = (self._broker[0] - 1, self._broker[1])
        self.requests += 1

    def wait_s(self, priority: Priority) -> float:
        """Seconds a request of ``priority`` must still wait (0: it may go now)."""
        self._refill()
        now = self._clock.now().timestamp()
        if self._blocked_until > now:
            return self._blocked_until - now
        reserve = RESERVE[priority]
        if any(self._waiting[p] for p in Priority if p < priority):
            reserve += 1  # a more urgent caller is waiting: let it have the next token
        if self._broker is not None:
            remaining, reset = self._broker
            if reset <= now:
                self._broker = None  # a new window: the broker's count starts over
            elif remaining - 1 < reserve:
                return min(MAX_WAIT_S, reset - now)
        need = 1 + reserve
        if self._tokens >= need:
            return 0.0
        return (need - self._tokens) / self._rate_s

    def observe(self, remaining: int | None, reset_epoch: float | None) -> None:
        """Record the broker's count from a response's ``X-Ratelimit-*`` headers (any thread)."""
        if remaining is not None and reset_epoch is not None:
            self._broker = (remaining, reset_epoch)

    def succeeded(self) -> None:
        """A request got through: the next 429 starts the short backoff over."""
        self._rate_limited_in_a_row = 0

    def on_rate_limited(self, remaining: int | None, reset_epoch: float | None) -> float:
        """Block every request after a 429 and return how long (seconds).

        Spent window (remaining 0): until its reset. Budget left, or no count: a short backoff, doubled
        for each 429 in a row, never past the reset.
        """
        self.rate_limited += 1
        self._rate_limited_in_a_row += 1
        now = self._clock.now().timestamp()
        until_reset = None if reset_epoch is None else min(MAX_WAIT_S, max(0.0, reset_epoch - now))
        if remaining is not None and remaining <= 0 and until_reset is not None:
            wait = until_reset
        else:
            wait = min(MAX_WAIT_S, BURST_429_BASE_S * 2.0 ** min(self._rate_limited_in_a_row - 1, 10))
            if until_reset is not None:
                wait = min(wait, max(until_reset, BURST_429_BASE_S))
        self.observe(remaining, reset_epoch)
        self._blocked_until = max(self._blocked_until, now + wait)
        return wait
