"""Timed events of the simulator, fired in virtual-time order.

Fills from a scenario plan, price moves, venue cancels, acknowledgements and scheduled stream drops are all
callbacks due at a virtual time. `run_due(now)` fires everything due by `now`, in (due time, insertion)
order, including callbacks scheduled by callbacks; a background ticker calls it for real and fast clocks, and
a stepped clock's `advance_to` walks through the due times one by one (`step_to`) so that each callback sees
the clock at its own due time. The scheduler has no lock of its own: the exchange calls it under the books
lock."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

__all__ = ["Scheduler"]


@dataclass(order=True)
class _Timer:
    due: datetime
    seq: int
    label: str = field(compare=False)
    callback: Callable[[], None] = field(compare=False)


class Scheduler:
    """A heap of callbacks keyed by virtual due time."""

    def __init__(self) -> None:
        self._heap: list[_Timer] = []
        self._seq = itertools.count()

    def schedule(self, due: datetime, label: str, callback: Callable[[], None]) -> None:
        """Run `callback` once virtual time reaches `due` (immediately at the next tick if already past)."""
        heapq.heappush(self._heap, _Timer(due, next(self._seq), label, callback))

    def next_due(self) -> datetime | None:
        return self._heap[0].due if self._heap else None

    def pending(self) -> list[tuple[datetime, str]]:
        """Return the pending timers as (due, label), soonest first; for the control API."""
        return [(t.due, t.label) for t in sorted(self._heap)]

    def run_due(self, now: datetime) -> int:
        """Fire every callback due at or before `now`; return how many fired."""
        fired = 0
        while self._heap and self._heap[0].due <= now:
            heapq.heappop(self._heap).callback()
            fired += 1
        return fired

    def step_to(self, target: datetime, set_now: Callable[[datetime], None]) -> int:
        """Walk virtual time to `target`, setting the clock to each due time before firing its callbacks."""
        fired = 0
        while self._heap and self._heap[0].due <= target:
            set_now(self._heap[0].due)
            fired += self.run_due(self._heap[0].due)
        set_now(target)
        return fired
