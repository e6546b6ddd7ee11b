"""A release pass that fails (a store refusing writes while the lease is renewed, a bug) keeps its marks.

Without the retry, a parent whose fill was applied just before the failure never came back to the gate:
nothing else marks a plan that is merely short, so its shares waited unprotected (seen on a fleet worker
whose writes were refused for a moment and which then held its lease for a minute placing nothing).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest
from engine_harness import EngineHarness

from ordersync.engine import scheduling


def failing_first(times: int, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Make the next ``times`` release passes raise; return the list of passes attempted."""
    real: Callable[..., Awaitable[Any]] = scheduling.release
    attempts: list[object] = []

    async def flaky(*args: Any) -> Any:
        attempts.append(args[1])
        if len(attempts) <= times:
            raise RuntimeError("the store refused the write (lease being renewed)")
        return await real(*args)

    monkeypatch.setattr(scheduling, "release", flaky)
    return attempts


async def test_a_failed_release_pass_is_retried_and_the_fill_is_protected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = EngineHarness()
    await h.start()
    await h.buy("p1", qty=10)
    attempts = failing_first(1, monkeypatch)
    before = h.clock.now()

    h.broker.fill("p1", 4, 100)
    await h.deliver()

    assert [o.qty for o in h.broker.open_sells("AAPL")] == [Decimal(4)], "protected on the retry"
    assert len(attempts) >= 2, "the failed pass, then the one that protects (the answer marks p1 again)"
    assert (h.clock.now() - before).total_seconds() >= 1.0, "the retry waits: no hot loop"
    await h.stop()


async def test_repeated_failures_back_off_exponentially_and_the_marks_survive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = EngineHarness()
    await h.start()
    await h.buy("p1", qty=10)
    attempts = failing_first(4, monkeypatch)
    before = h.clock.now()

    h.broker.fill("p1", 10, 100)
    await h.deliver()

    assert len(attempts) >= 5, "four failures, then the pass that protects"
    assert all("p1" in str(batch) for batch in attempts), "every retry still carries the parent"
    assert (h.clock.now() - before).total_seconds() >= 1 + 2 + 4 + 8, "1, 2, 4, 8 s between attempts"
    assert [o.qty for o in h.broker.open_sells("AAPL")] == [Decimal(10)]
    await h.stop()
