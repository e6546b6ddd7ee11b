"""The engine's time-driven steps that need only the context: the loop runner, the tick's sweeps of
unsent intents and unanswered submits, the silence window, and the bounded drain at stop.

Kept out of supervisor.py so the Engine class reads as wiring (which loop runs what) while the rules
each step applies sit here, each a plain function of the context.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from ordersync.domain.errors import BrokerError
from ordersync.domain.order import Order, OrderStatus
from ordersync.engine.context import Context, log
from ordersync.engine.options import EngineOptions
from ordersync.engine.retry import backoff_s
from ordersync.engine.sender import start_send, start_settle


async def every(
    ctx: Context, running: Callable[[], bool], interval_s: float, step: Callable[[], Awaitable[None]]
) -> None:
    """Run ``step`` every ``interval_s`` of the engine clock while ``running()``; a failure is logged and
    the loop goes on (one bad pass must not stop a loop for good)."""
    while running():
        await ctx.clock.sleep(interval_s)
        try:
            await step()
        except BrokerError as e:
            log.warning("engine.loop_broker_error", loop=step.__name__, error=str(e)[:200])
        except Exception as e:
            log.error("engine.loop_failed", loop=step.__name__, error=repr(e))


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
