"""The request budget: priorities when it runs short; 429s wait for the broker's reset, never longer."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from ordersync.brokers.alpaca.budget import BURST_429_BASE_S, RESERVE, RequestBudget
from ordersync.ports import Priority
from ordersync.testing import FakeClock


def spent(budget: RequestBudget, clock: FakeClock, tokens_left: float) -> None:
    """Leave ``tokens_left`` tokens in the bucket (spent through the public acquire path)."""
    while budget.wait_s(Priority.PROTECT) == 0 and budget.wait_s(Priority.BACKGROUND) == 0:
        asyncio.run(budget.acquire(Priority.BACKGROUND))
    while budget.wait_s(Priority.PROTECT) == 0 and budget._tokens - 1 >= tokens_left:
        asyncio.run(budget.acquire(Priority.PROTECT))


def test_a_short_budget_still_lets_protection_go_at_once_and_holds_the_rest() -> None:
    clock = FakeClock()
    budget = RequestBudget(clock, per_minute=60, burst=20)
    spent(budget, clock, tokens_left=2)

    assert budget.wait_s(Priority.PROTECT) == 0, "a child submit must not wait while tokens are left"
    assert budget.wait_s(Priority.DETECT) == 0, "the FILL-activities poll keeps going on 2 tokens"
    assert budget.wait_s(Priority.NORMAL) > 0, "a catch-up read leaves the last tokens to protection"
    assert budget.wait_s(Priority.BACKGROUND) > 0, "a reconciliation leaves the last tokens to protection"


def test_a_waiting_urgent_request_goes_before_a_lower_one() -> None:
    clock = FakeClock()
    budget = RequestBudget(clock, per_minute=60, burst=20)
    spent(budget, clock, tokens_left=RESERVE[Priority.DETECT] + 1)
    assert budget.wait_s(Priority.DETECT) == 0

    budget._waiting[Priority.PROTECT] += 1  # a child submit is waiting for a token
    assert budget.wait_s(Priority.DETECT) > 0, "the lower priority must let the waiting child go first"


def test_after_a_429_with_the_window_spent_every_request_waits_until_the_reset_and_not_longer() -> None:
    clock = FakeClock()
    budget = RequestBudget(clock, per_minute=190)
    reset = clock.now().timestamp() + 7.0

    wait = budget.on_rate_limited(remaining=0, reset_epoch=reset)

    assert wait == 7.0
    assert budget.wait_s(Priority.PROTECT) == 7.0
    clock.advance(7.0)
    assert budget.wait_s(Priority.PROTECT) == 0, "the window has reset: the next request goes"


def test_a_429_that_left_budget_costs_a_short_backoff_doubling_per_429_in_a_row() -> None:
    clock = FakeClock()
    budget = RequestBudget(clock, per_minute=190)
    reset = clock.now().timestamp() + 59.0  # the minute has just begun: never wait for it

    waits = [budget.on_rate_limited(remaining=150, reset_epoch=reset) for _ in range(5)]

    assert waits == [BURST_429_BASE_S, 2 * BURST_429_BASE_S, 4 * BURST_429_BASE_S, 1.0, 1.0]
    budget.succeeded()
    assert budget.on_rate_limited(remaining=150, reset_epoch=reset) == BURST_429_BASE_S


def test_a_429_backoff_never_runs_past_the_reset() -> None:
    clock = FakeClock()
    budget = RequestBudget(clock, per_minute=190)
    reset = clock.now().timestamp() + 1.0
    waits = [budget.on_rate_limited(remaining=10, reset_epoch=reset) for _ in range(8)]
    assert max(waits) <= 1.0


def test_the_brokers_remaining_count_holds_everything_but_protection_when_nearly_spent() -> None:
    clock = FakeClock()
    budget = RequestBudget(clock, per_minute=190)
    reset = clock.now().timestamp() + 30.0
    budget.observe(remaining=2, reset_epoch=reset)  # another process on the key spent the rest

    assert budget.wait_s(Priority.PROTECT) == 0
    assert budget.wait_s(Priority.NORMAL) == 30.0
    budget.observe(remaining=0, reset_epoch=reset)
    assert budget.wait_s(Priority.PROTECT) == 30.0, "a spent window holds even protection until the reset"
    clock.advance(delta=timedelta(seconds=30))
    assert budget.wait_s(Priority.BACKGROUND) == 0, "a new window: the broker's old count no longer holds"


async def test_acquire_waits_on_the_clock_for_the_reset_only() -> None:
    clock = FakeClock()
    budget = RequestBudget(clock, per_minute=190)
    start = clock.now()
    budget.on_rate_limited(remaining=0, reset_epoch=start.timestamp() + 4.0)

    await budget.acquire(Priority.PROTECT)

    assert (clock.now() - start).total_seconds() == 4.0
    assert budget.requests == 1


def test_the_bucket_never_sends_more_in_a_minute_than_the_brokers_window_allows() -> None:
    clock = FakeClock()
    budget = RequestBudget(clock, per_minute=60)
    sent = 0
    for _ in range(600):  # one minute in 0.1 s steps, a request whenever one may go
        while budget.wait_s(Priority.PROTECT) == 0:
            asyncio.run(budget.acquire(Priority.PROTECT))
            sent += 1
        clock.advance(0.1)
    assert 55 <= sent <= 60, f"{sent} requests in one minute from a full bucket"


async def test_a_steady_stream_of_urgent_requests_delays_the_others_but_never_starves_them() -> None:
    clock = FakeClock()
    budget = RequestBudget(clock, per_minute=60)
    while budget.wait_s(Priority.PROTECT) == 0:
        await budget.acquire(Priority.PROTECT)  # the bucket is empty
    budget._waiting[Priority.PROTECT] += 1  # and an urgent caller is always waiting
    start = clock.now()

    await budget.acquire(Priority.BACKGROUND)

    waited = (clock.now() - start).total_seconds()
    assert 0 < waited <= 3 * 5.0 + 1, f"the background request waited {waited} s"
