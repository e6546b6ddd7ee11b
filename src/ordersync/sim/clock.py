"""Virtual clocks for the simulator.

The simulator never reads wall-clock time in its logic: every timestamp it writes and every timed event it
fires comes from one injected `SimClock`. Three kinds cover the uses: `RealClock` for a simulator that stands
in for Alpaca in real time, `FastClock` for demos where hours of market time pass in seconds (`--clock
fast:N`), and `SteppedClock` for tests, where time moves only when the test says so and nothing depends on
real sleeps. `FlowingClock` (`--clock flowing`) is both: it runs at real speed and a driver jumps it
forward over idle stretches (the demo's conductor in process, the chaos driver over the control API).

A `SteppedClock` can be bound to a stepper (the simulator's scheduler): `advance_to` then hands the target
time to the stepper, which moves the clock through every pending timed event in order, so each fill or price
move is stamped with its own due time rather than with the end of the jump."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

__all__ = [
    "ClockSpecError",
    "FastClock",
    "FlowingClock",
    "RealClock",
    "SimClock",
    "SteppedClock",
    "parse_clock_spec",
]


class ClockSpecError(ValueError):
    """A clock spec string is not `real`, `fast:N` (N > 0), `stepped` or `flowing`."""


@runtime_checkable
class SimClock(Protocol):
    """The simulator's source of time: timezone-aware UTC datetimes."""

    def now(self) -> datetime: ...


class RealClock:
    """Wall-clock UTC time, for a simulator that runs in real time."""

    def now(self) -> datetime:
        return datetime.now(tz=UTC)


class FastClock:
    """Virtual time = start + factor * real elapsed time (monotonic), for `--clock fast:N`."""

    def __init__(self, factor: float, start: datetime) -> None:
        if factor <= 0:
            raise ClockSpecError(f"fast clock factor must be > 0, was {factor}")
        self.factor = factor
        self._start = _require_aware(start)
        self._t0 = time.monotonic()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=(time.monotonic() - self._t0) * self.factor)


Stepper = Callable[[datetime], None]


class SteppedClock:
    """Time that moves only on `advance` / `advance_to`; for tests and scripted runs."""

    def __init__(self, start: datetime) -> None:
        self._now = _require_aware(start)
        self._lock = threading.Lock()
        self._stepper: Stepper | None = None

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> datetime:
        """Move time forward by `seconds` (firing due simulator events when bound); return the new now."""
        if seconds < 0:
            raise ValueError(f"cannot advance by a negative duration ({seconds} s)")
        return self.advance_to(self.now() + timedelta(seconds=seconds))

    def advance_to(self, t: datetime) -> datetime:
        """Move time forward to `t`; a target in the past is refused (time never runs backwards)."""
        target = _require_aware(t)
        if target < self.now():
            raise ValueError(f"cannot move a stepped clock back from {self.now()} to {target}")
        stepper = self._stepper
        if stepper is None:
            self.set_now(target)
        else:
            stepper(target)
        return self.now()

    def bind(self, stepper: Stepper) -> None:
        """Route `advance_to` through `stepper`, which must call `set_now` as it walks through due events."""
        self._stepper = stepper

    def set_now(self, t: datetime) -> None:
        """Set the time directly; used by the stepper, never to go backwards."""
        with self._lock:
            if t > self._now:
                self._now = t


class FlowingClock(SteppedClock):
    """A stepped clock that also flows at real speed between steps.

    A driver (the demo's conductor) jumps it forward over idle stretches with `advance_to`; while clients
    and the simulator are busy it runs like a wall clock, so a request that takes 5 ms of real time takes
    5 ms of virtual time too (a pure stepped clock would make it take none, a fast clock N times more).
    """

    def __init__(self, start: datetime) -> None:
        super().__init__(start)
        self._anchor = time.monotonic()

    def now(self) -> datetime:
        with self._lock:
            return self._now + timedelta(seconds=time.monotonic() - self._anchor)

    def set_now(self, t: datetime) -> None:
        """Jump to `t` if it is ahead of the flowing time; never go backwards."""
        with self._lock:
            current = self._now + timedelta(seconds=time.monotonic() - self._anchor)
            if t > current:
                self._now, self._anchor = t, time.monotonic()


def parse_clock_spec(spec: str, start: datetime | None = None) -> SimClock:
    """Build a clock from `real`, `fast:N`, `stepped` or `flowing`; `start` is the virtual start (default:
    now).

    Raises:
        ClockSpecError: the spec is malformed.
    """
    origin = start or datetime.now(tz=UTC)
    text = spec.strip().lower()
    if text == "real":
        return RealClock()
    if text == "stepped":
        return SteppedClock(origin)
    if text == "flowing":
        return FlowingClock(origin)
    if text.startswith("fast:"):
        try:
            factor = float(text.removeprefix("fast:"))
        except ValueError:
            raise ClockSpecError(
                f"bad clock spec {spec!r}: the factor after 'fast:' is not a number"
            ) from None
        return FastClock(factor, origin)
    raise ClockSpecError(f"bad clock spec {spec!r}: expected 'real', 'fast:N', 'stepped' or 'flowing'")


def _require_aware(t: datetime) -> datetime:
    if t.tzinfo is None:
        raise ValueError(f"clock times must be timezone-aware, got naive {t.isoformat()}")
    return t.astimezone(UTC)
