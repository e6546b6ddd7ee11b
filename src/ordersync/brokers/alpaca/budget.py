"""A request budget under Alpaca's 200 requests/minute per key (docs/alpaca.md, 5).

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
RESERVE = {Priority.PROTECT: 0, Priority.DETECT: 1, Priority.NORMAL: 2, Priority.BACKGROUND: 3}
MAX_WAIT_S = 60.0  # Alpaca's window is a minute: a reset further away is a broken header
BURST_429_BASE_S = 0.25  # first wait after a 429 that left budget; doubles per 429 in a row ...
BURST_429_CAP_S = 1.0  # ... up to a second: the broker says budget is left, so a storm costs its own length
AGING_S = 5.0  # a request waiting this long counts one priority more urgent (no starvation)


class RequestBudget:
    """Token bucket: at most ``per_minute`` requests in any minute-long window; priorities first.

    The broker counts requests per fixed minute. A bucket refilled at rate r with a burst of b can send
    b + r in one such window, so the rate is ``per_minute - burst``: our own requests never spend the
    broker's window before it ends (which would hold every request but protection until the reset).
    """

    def __init__(self, clock: Clock, per_minute: float = 190.0, burst: float | None = None) -> None:
        burst = max(1.0, min(10.0, per_minute // 20)) if burst is None else burst
        if per_minute <= burst or burst < 1:
            raise ValueError(f"per_minute must exceed burst >= 1, were {per_minute}, {burst}")
        self._clock = clock
        self._rate_s = (per_minute - burst) / 60.0
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
        """Wait until a request of ``priority`` may be sent, then spend one token.

        Priority is strict, with aging: every ``AGING_S`` spent waiting makes a request one level more
        urgent, so a steady stream of urgent requests delays the others but never starves them.
        """
        since = self._clock.now()
        current = priority
        self._waiting[current] += 1
        try:
            while (wait := self.wait_s(priority, aged=current)) > 0:
                self.waited_s += min(wait, AGING_S)
                await self._clock.sleep(min(wait, AGING_S))
                aged = Priority(
                    max(0, priority - int((self._clock.now() - since).total_seconds() // AGING_S))
                )
                if aged != current:
                    self._waiting[current] -= 1
                    self._waiting[aged] += 1
                    current = aged
        finally:
            self._waiting[current] -= 1
        self._tokens -= 1
        if self._broker is not None:
            self._broker = (self._broker[0] - 1, self._broker[1])
        self.requests += 1

    def wait_s(self, priority: Priority, aged: Priority | None = None) -> float:
        """Seconds a request of ``priority`` must still wait (0: it may go now).

        ``aged``: the priority it has earned by waiting, for our own bucket; the broker's last requests
        of a window stay reserved by the original priority (that wait ends at the reset anyway).
        """
        self._refill()
        now = self._clock.now().timestamp()
        if self._blocked_until > now:
            return self._blocked_until - now
        if self._broker is not None:
            remaining, reset = self._broker
            if reset <= now:
                self._broker = None  # a new window: the broker's count starts over
            elif remaining - 1 < RESERVE[priority]:
                return min(MAX_WAIT_S, reset - now)
        effective = priority if aged is None else aged
        reserve = RESERVE[effective]
        if any(self._waiting[p] for p in Priority if p < effective):
            reserve += 1  # a more urgent caller is waiting: let it have the next token
        need = min(1 + reserve, self._burst)
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
        for each 429 in a row up to ``BURST_429_CAP_S``, never past the reset.
        """
        self.rate_limited += 1
        self._rate_limited_in_a_row += 1
        now = self._clock.now().timestamp()
        until_reset = None if reset_epoch is None else min(MAX_WAIT_S, max(0.0, reset_epoch - now))
        if remaining is not None and remaining <= 0 and until_reset is not None:
            wait = until_reset
        else:
            wait = min(BURST_429_CAP_S, BURST_429_BASE_S * 2.0 ** min(self._rate_limited_in_a_row - 1, 10))
            if until_reset is not None:
                wait = min(wait, max(until_reset, BURST_429_BASE_S))
        self.observe(remaining, reset_epoch)
        self._blocked_until = max(self._blocked_until, now + wait)
        return wait
