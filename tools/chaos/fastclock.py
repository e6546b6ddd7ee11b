"""The chaos run's former pace, kept beside the lockstep (``lockstep.py``): the simulator on ``fast:N``.

Market time runs N times real time whatever the processes do, so a real second the worker spends waiting
for a CPU is N market seconds. It bounds the run's real length (the schedule takes ``schedule_s`` real
seconds, whatever the machine), which the CI runs that judge invariants 1-7 need; fill->protect is
measured in lockstep (docs/architecture.md, "Measuring the bound under kills").
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx

from ordersync.engine import EngineOptions

__all__ = ["FastPacer", "FollowClock", "fast_options"]


class FollowClock:
    """The Clock port on the simulator's fast clock: virtual now = anchor + factor x real time elapsed.

    The engine then reads the same time as the broker it talks to (as it does in production), so an
    ``X-Ratelimit-Reset`` time, an order's ``submitted_at`` and its own ``created_at`` agree; and every
    interval in EngineOptions is in the simulator's seconds.
    """

    def __init__(self, anchor: datetime, factor: float, at_monotonic: float | None = None) -> None:
        self._anchor = anchor  # the simulator's time at ``at_monotonic`` (time.monotonic() is host-wide)
        self._factor = factor
        self._m0 = time.monotonic() if at_monotonic is None else at_monotonic

    @classmethod
    def synced(cls, base_url: str, factor: float) -> FollowClock:
        """Anchor on the simulator's clock (the sample with the shortest round trip of a few)."""
        best: tuple[float, datetime, float] | None = None
        with httpx.Client(base_url=base_url, timeout=5) as http:
            for _ in range(5):
                sent = time.monotonic()
                now = _parse(http.get("/sim/clock").json()["now"])
                back = time.monotonic()
                if best is None or back - sent < best[0]:
                    best = (back - sent, now, (sent + back) / 2)
        assert best is not None
        return cls(best[1], factor, best[2])

    @property
    def anchor(self) -> tuple[datetime, float]:
        """(the simulator's time, time.monotonic() then): a process on this host can follow the same clock
        without asking the simulator (a restarted worker protects sooner)."""
        return self._anchor, self._m0

    def now(self) -> datetime:
        return self._anchor + timedelta(seconds=(time.monotonic() - self._m0) * self._factor)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self._factor)


def fast_options(factor: float) -> EngineOptions:
    """Return the engine options: small real-time intervals, expressed in the simulator's seconds."""
    return EngineOptions(
        poll_interval_s=1.0 * factor,
        stream_silence_s=5.0 * factor,
        reconcile_interval_s=10.0 * factor,
        tick_s=0.5 * factor,
        release_backoff_base_s=0.5 * factor,
        release_backoff_cap_s=5.0 * factor,
        lookup_backoff_base_s=0.2 * factor,
        lookup_backoff_cap_s=2.0 * factor,
        unprotected_alert_s=5.0 * factor,
        unknown_alert_s=10.0 * factor,
        lease_poll_s=0.2 * factor,
    )


class FastPacer:
    """The Pacer interface on a fast clock: nothing to jump, the driver only waits (real time)."""

    def __init__(self, base_url: str, factor: float) -> None:
        self.clock = FollowClock.synced(base_url, factor)
        self.factor = factor
        self.steps = 0
        self.jumped_s = 0.0
        self.advance_real_s = 0.0

    def now(self) -> datetime:
        return self.clock.now()

    def run_until(self, at: datetime, watch: Callable[[], None] | None = None) -> None:
        while self.now() < at:
            if watch is not None:
                watch()
            time.sleep(0.05)

    def run_for(self, real_s: float, watch: Callable[[], None] | None = None) -> None:
        deadline = time.monotonic() + real_s
        while time.monotonic() < deadline:
            if watch is not None:
                watch()
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))

    def close(self) -> None:
        pass


def _parse(value: object) -> datetime:
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
