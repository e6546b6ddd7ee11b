"""The engine's time-driven steps that need only the context: the loop runner, the tick's sweeps of
unsent intents and unanswered submits, the silence window, and the bounded drain at stop.

Kept out of supervisor.py so the Engine class reads as wiring (which loop runs what) while the rules
each step applies sit here, each a plain function of the context.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime

from ordersync.domain.errors import BrokerError
from ordersync.domain.events import BrokerOrderView
from ordersync.domain.order import Order, OrderStatus
from ordersync.engine.activities import MIN_INTERVAL
from ordersync.engine.catchup import read_changed
from ordersync.engine.context import Context, log
from ordersync.engine.options import EngineOptions
from ordersync.engine.retry import backoff_s
from ordersync.engine.sender import start_send, start_settle
from ordersync.ports import Broker, Clock

# FILL activities are read at this fraction of the poll interval: a fill right after one read is seen by
# the next, and that read's round trip, the order read and the write must fit in the rest of the interval
# for staleness (venue fill -> applied) to stay within ``poll_interval_s``
DETECT_FRACTION = 0.9


def detect_interval_s(options: EngineOptions) -> float:
    """How often the poller reads FILL activities (stream up or not: a silent stream looks healthy); never
    more than once a second (``activities.MIN_INTERVAL``: the poll outranks all but protection)."""
    return max(MIN_INTERVAL.total_seconds(), DETECT_FRACTION * options.poll_interval_s)


async def every(
    ctx: Context,
    running: Callable[[], bool],
    interval_s: float,
    step: Callable[[], Awaitable[None]],
    *,
    fixed_rate: bool = False,
) -> None:
    """Run ``step`` every ``interval_s`` of the engine clock while ``running()``; a failure is logged and
    the loop goes on (one bad pass must not stop a loop for good).

    ``fixed_rate``: steps start ``interval_s`` apart (the time a step takes is not added to the period, at
    least a tenth of the interval is slept), which a bound on detection needs; otherwise the loop sleeps
    ``interval_s`` after each step.
    """
    took_s = 0.0
    while running():
        await ctx.clock.sleep(max(interval_s - took_s, interval_s / 10) if fixed_rate else interval_s)
        started = ctx.clock.now()
        try:
            await step()
        except BrokerError as e:
            log.warning("engine.loop_broker_error", loop=step.__name__, error=str(e)[:200])
        except Exception as e:
            log.error("engine.loop_failed", loop=step.__name__, error=repr(e))
        took_s = (ctx.clock.now() - started).total_seconds()


def send_new_intents(ctx: Context, open_orders: list[Order]) -> None:
    """Send every unsent intent: parents recorded by another process (``ordersync submit`` writes to the
    store, which is the intake) and children a fenced or crashed instance wrote but never sent."""
    for order in open_orders:
        if order.status is OrderStatus.INTENT and order.client_order_id not in ctx.sending:
            start_send(ctx, order.client_order_id)


def settle_orphaned_submits(ctx: Context, open_orders: list[Order]) -> None:
    """Look up every submit whose outcome is unknown and that no task is settling.

    The store failed after the POST (a database outage), so the task that sent it died before recording
    the answer. The order may be live at the broker and its parent's release waits on it.
    """
    for order in open_orders:
        if order.status is OrderStatus.SUBMITTING:
            start_settle(ctx, order.client_order_id)  # a no-op while sent or already settling


def widened_silence_window(options: EngineOptions, window_s: float, lossy: bool, connected: bool) -> float:
    """Read around a quiet stream less and less often while the reads find nothing new.

    Fills stay bounded without these reads (the FILL activities poll runs every poll interval): a silent
    market over a weekend costs a read per window, doubling up to ``reconcile_interval_s``, not one per
    ``stream_silence_s``. News (a lossy stream) or any stream event sets the window back.
    """
    if lossy:
        return options.stream_silence_s
    if connected:
        return min(2 * window_s, max(options.reconcile_interval_s, options.stream_silence_s))
    return window_s


async def drain(ctx: Context, extra: Callable[[], asyncio.Task[None] | None], timeout_s: float) -> None:
    """Let in-flight background work finish for at most ``timeout_s`` (real time), then cancel the rest."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while pending := [t for t in [*ctx.tasks, extra()] if t is not None and not t.done()]:
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            break
        await asyncio.wait(pending, timeout=left)


async def catch_up_retrying(ctx: Context, catch_up: Callable[[str], Awaitable[int]], reason: str) -> None:
    """Run a catch-up read, retrying broker weather: a 5xx on the read after a reconnect must not leave
    the gap unread until the next reconciliation."""
    options = ctx.options
    for attempt in range(1, options.read_attempts + 1):
        try:
            await catch_up(reason)
            return
        except BrokerError as e:
            wait = backoff_s(attempt, options.lookup_backoff_base_s, options.lookup_backoff_cap_s)
            log.warning("engine.catch_up_failed", reason=reason, attempt=attempt, error=str(e)[:200])
            await ctx.clock.sleep(wait)


async def catch_up_logged(catch_up: Callable[[str], Awaitable[int]], reason: str) -> None:
    """Run one catch-up read; a broker error is logged (the next poll tries again)."""
    try:
        await catch_up(reason)
    except BrokerError as e:
        log.warning("engine.catch_up_failed", reason=reason, error=str(e)[:200])


class CatchUpBudget:
    """Paces the full catch-up reads while the stream is not trusted, inside ``poll_budget_per_min``.

    Fills do not wait for a catch-up: the FILL activities poll notices them within the poll interval and
    reads only the orders behind. A catch-up (every open order, pages of 500, and the closed since the
    oldest open) is for what activities do not show: cancels, expiries and replacements by others. It is
    paced by a bucket refilled at ``poll_budget_per_min`` from which the poller's every request is taken
    (activities pages, order reads, catch-up pages): what the detection leaves runs catch-ups, so their
    cadence follows their cost (1,000 open: 3 requests) and the fills of the moment, within the budget.
    The bucket holds two catch-ups' worth plus one detection step, so the credit reaches a catch-up's
    cost whatever the detection takes in between; a debt (a burst of order reads) is forgiven below as
    much, so a storm of fills delays the next catch-up by seconds, not minutes. Detection is never held
    back by it.
    """

    def __init__(self, options: EngineOptions, clock: Clock) -> None:
        self._clock = clock
        self._rate_s = options.poll_budget_per_min / 60.0
        self._detect_s = detect_interval_s(options)
        self._at = clock.now()
        self.cost = 2.0  # requests a catch-up takes (open + closed, one page each) until one is measured
        self.credit = self.cost

    def spend(self, requests: int = 1) -> None:
        """Count requests the poller made (activities pages, the orders they show behind)."""
        self._refill()
        self.credit = max(-self._cap(), self.credit - requests)

    def catch_up_due(self) -> bool:
        """True when a catch-up's cost is in the bucket (the caller starts one; ``read`` counts it)."""
        self._refill()
        return self.credit >= self.cost

    async def read(self, broker: Broker, oldest_open: datetime | None) -> list[BrokerOrderView]:
        """``read_changed``, each page counted; its page count is the next estimate of a catch-up's cost."""
        pages = 0

        def page() -> None:
            nonlocal pages
            pages += 1
            self.spend()

        views = await read_changed(broker, oldest_open, on_page=page)
        self.cost = float(pages)  # a read that failed half-way says nothing of the whole one's cost
        return views

    def _refill(self) -> None:
        now = self._clock.now()
        elapsed = max(0.0, (now - self._at).total_seconds())
        self._at = now
        self.credit = min(self._cap(), self.credit + elapsed * self._rate_s)

    def _cap(self) -> float:
        return 2 * self.cost + self._rate_s * self._detect_s
