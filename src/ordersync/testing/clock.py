"""``FakeClock``, the clock tests move by hand, and ``T0``, the "now" every factory starts from.

Time in ordersync comes from an injected clock, never from ``datetime.now()``, so a test decides what time
it is and nothing in it waits for real: ``sleep`` advances the fake time at once.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

T0 = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)  # a Monday, 09:30 New York: the default "now" of every factory


class FakeClock:
    """A settable, advanceable clock returning timezone-aware UTC times."""

    def __init__(self, start: datetime = T0) -> None:
        self._now = utc(start)

    def now(self) -> datetime:
        """Return the current fake time."""
        return self._now

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (timezone-aware; may go backwards, to model a clock step)."""
        self._now = utc(when)

    def advance(self, seconds: float = 0.0, *, delta: timedelta | None = None) -> datetime:
        """Move forward by ``seconds`` (or ``delta``) and return the new time."""
        step = delta if delta is not None else timedelta(seconds=seconds)
        if step < timedelta(0):
            raise ValueError(f"advance needs a non-negative step, was {step}")
        self._now += step
        return self._now

    async def sleep(self, seconds: float) -> None:
        """Advance by ``seconds`` at once, then let other tasks run (no real waiting)."""
        self.advance(max(seconds, 0.0))
        await asyncio.sleep(0)


def utc(when: datetime) -> datetime:
    """``when`` in UTC; a naive datetime is refused (its zone would be a guess)."""
    if when.tzinfo is None:
        raise ValueError(f"naive datetime {when!r} refused: ordersync uses UTC only")
    return when.astimezone(UTC)
