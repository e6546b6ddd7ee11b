"""Waiting in real time for something another thread, task or process does: the one polling loop of the
tests, for synchronous code (``wait_until``) and for a running event loop (``wait_until_async``).

Only for what runs in real time (a server process, a thread); a test that can inject a clock moves the clock
instead. Neither asserts how long it took: a timeout only ends a wait that would otherwise hang.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator


def _polls(timeout_s: float, interval_s: float) -> Iterator[float]:
    # the pause before each next look, until the deadline has passed
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        yield interval_s


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.05) -> None:
    """Poll ``predicate`` (real time) until it holds; fail naming ``what`` after ``timeout_s``.

    Raises:
        AssertionError: the predicate did not hold in time.
    """
    for pause in _polls(timeout_s, interval_s):
        if predicate():
            return
        time.sleep(pause)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


async def wait_until_async(
    predicate: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.05
) -> None:
    """``wait_until`` inside an event loop: the other tasks run between looks.

    Raises:
        AssertionError: the predicate did not hold in time.
    """
    for pause in _polls(timeout_s, interval_s):
        if predicate():
            return
        await asyncio.sleep(pause)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
