"""Alpaca's request rate limit: N requests per minute per API key, 429 beyond (docs/alpaca.md §5).

The window is a fixed minute of *virtual* time, so a demo on `fast:N` sees the same limit per market minute
as a run in real time, and tests on a stepped clock reset it by advancing the clock. Every response carries
`X-Ratelimit-Limit`, `X-Ratelimit-Remaining` and `X-Ratelimit-Reset` (Unix seconds of the window's end), the
header names Alpaca's own SDKs read."""

from __future__ import annotations

import hashlib
import math
import threading
from collections import Counter
from dataclasses import dataclass

from .clock import SimClock

__all__ = ["RateDecision", "RateLimiter", "fingerprint"]


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_epoch: int

    def headers(self) -> dict[str, str]:
        return {
            "X-Ratelimit-Limit": str(self.limit),
            "X-Ratelimit-Remaining": str(self.remaining),
            "X-Ratelimit-Reset": str(self.reset_epoch),
        }


class RateLimiter:
    """Fixed-window counter per API key over the simulator's clock."""

    def __init__(self, limit_per_min: int, clock: SimClock) -> None:
        self.limit = limit_per_min
        self._clock = clock
        self._lock = threading.Lock()
        self._window = -1
        self._counts: Counter[str] = Counter()

    def set_limit(self, limit_per_min: int) -> None:
        with self._lock:
            self.limit = limit_per_min
            self._counts.clear()

    def hit(self, key: str) -> RateDecision:
        """Count one request of `key` and say whether it is within the limit."""
        window = math.floor(self._clock.now().timestamp() / 60)
        with self._lock:
            if window != self._window:
                self._window, self._counts = window, Counter()
            self._counts[key] += 1
            used = self._counts[key]
            reset = (window + 1) * 60
            return RateDecision(used <= self.limit, self.limit, max(self.limit - used, 0), reset)

    def snapshot(self) -> dict[str, object]:
        """The limit and this window's counts, each API key shown as a short fingerprint, never in clear."""
        with self._lock:
            return {
                "limit_per_min": self.limit,
                "window_counts": {fingerprint(k): n for k, n in self._counts.items()},
            }


def fingerprint(key: str) -> str:
    """A short, stable stand-in for an API key id in anything shown (state, listings): never the key."""
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:8]
