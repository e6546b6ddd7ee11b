"""Start-up: the first read of the broker, resuming interrupted work, and keeping the lease meanwhile.

Its own concept because start-up has rules the running loops do not: broker weather at start is retried
a bounded number of times (then the engine starts anyway and keeps reading in the background), work a
crash interrupted is resumed before the loops run, and the lease must be renewed while start() is still
busy (a slow first read must not let the lease expire under a new active).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ordersync.domain.errors import BrokerError, OrderSyncError
from ordersync.domain.kinds import JournalKind
from ordersync.domain.order import OrderStatus
from ordersync.engine.context import Context, log, pause
from ordersync.engine.retry import backoff_s
from ordersync.engine.sender import start_send, start_settle
from ordersync.engine.watch import Watch

LEASE_RENEW_CHECK_S = 0.5  # real seconds between lease checks (renewal itself happens when due)


async def keep_lease(ctx: Context, running: Callable[[], bool]) -> None:
    """Renew the lease every half second of real time while the engine runs.

    The tick renews it too, but ticks start only once start() returns: a start-up read slower than the
    lease's time to live (a loaded host, a large account) let the lease expire under a new active, whose
    first write was then fenced. The lease is real time (database time), so is this wait.
    """
    while running() and not ctx.lease_lost:
        ctx.may_write()  # renews when due; notes a loss or a database outage
        await asyncio.sleep(LEASE_RENEW_CHECK_S)


async def first_read(ctx: Context, watch: Watch, running: Callable[[], bool]) -> None:
    """Read the broker once (catch-up and start-up reconciliation in one), retrying its weather.

    A 429 or a 5xx at start-up is weather, not a reason to exit: retry with capped backoff, a bounded
    number of times (each wait also ends after as much real time, so a driver that advances the clock
    only once start() returns cannot deadlock it); then start anyway and keep trying in the background.
    Starting before the first read is safe: intents resend with their own ids (a duplicate is a 422 and
    a lookup), releases need confirmed fills and a position read.
    """
    options = ctx.options
    for attempt in range(1, options.startup_read_attempts + 1):
        try:
            await watch.reconcile(dry_run=False, read_attempts=1)  # the retries are here
            return
        except OrderSyncError as e:
            if not isinstance(e, BrokerError):
                raise  # a lost lease, a conflict, a domain error: not weather
            await _wait_before_retry(ctx, attempt, e)
        except Exception as e:  # the store's driver (a lock timeout behind a frozen holder, an outage)
            await _wait_before_retry(ctx, attempt, e)
    with ctx.store.transaction() as tx:
        tx.journal(ctx.entry(JournalKind.STARTUP_READ_DEFERRED, None, attempts=options.startup_read_attempts))
    ctx.spawn(_first_read_later(ctx, watch, running), "catch_up:startup")


async def _wait_before_retry(ctx: Context, attempt: int, error: Exception) -> None:
    options = ctx.options
    wait = backoff_s(attempt, options.lookup_backoff_base_s, options.lookup_backoff_cap_s)
    log.warning("engine.startup_read_failed", attempt=attempt, wait_s=wait, error=str(error)[:200])
    if attempt < options.startup_read_attempts:
        await pause(ctx.clock, wait)


async def _first_read_later(ctx: Context, watch: Watch, running: Callable[[], bool]) -> None:
    options, attempt = ctx.options, 0
    while running():
        attempt += 1
        wait = backoff_s(attempt, options.lookup_backoff_base_s, options.lookup_backoff_cap_s)
        await ctx.clock.sleep(wait)
        try:
            await watch.reconcile(dry_run=False, read_attempts=1)  # the retries are here
            return
        except OrderSyncError as e:
            if not isinstance(e, BrokerError):
                raise
            log.warning("engine.startup_read_failed", attempt=attempt, wait_s=wait, error=str(e)[:200])
        except Exception as e:  # the store's driver: retried like the broker's weather
            log.warning("engine.startup_read_failed", attempt=attempt, wait_s=wait, error=str(e)[:200])


def resume(ctx: Context) -> None:
    """After a crash: send intents journaled but never sent, settle submits sent but never answered, and
    look at every live plan again."""
    with ctx.store.transaction() as tx:
        open_orders = tx.open_orders()
        plans = tx.active_plans()
        children = tx.children_of_many([state.parent_id for state in plans])
    # leg ownership is rebuilt from every child of a live plan, ended ones included: a primary the
    # broker ended may still have a stop leg we have not seen yet
    for order in [*open_orders, *(c for kids in children.values() for c in kids)]:
        ctx.remember_legs(order)
    for order in open_orders:
        if order.status is OrderStatus.INTENT:
            start_send(ctx, order.client_order_id)
        elif order.status is OrderStatus.SUBMITTING:
            start_settle(ctx, order.client_order_id)
    for state in plans:
        ctx.mark_dirty(state.parent_id)
