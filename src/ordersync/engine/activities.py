"""Noticing every fill within a poll interval, whatever the stream does (docs/architecture.md §2,
invariant 9, bounded delay).

The trade_updates stream can lose an event while it keeps delivering others, go silent, or drop; none of
that is visible from the stream itself. The account's FILL activities (docs/alpaca.md, 4.8) list every
execution of every order, so one request per poll (0.9 of the poll interval, engine/loops.py), at any
number of open orders, says whether a fill happened that we have not applied. Such a fill is a missed
event: the order is read (a few orders: one read each; many: one catch-up read of the lists) and the read
is applied like any observation, which releases its protection. Polls are at most one a second
(``MIN_INTERVAL``), so the bound of two poll intervals holds for intervals of a second or more. Every
request is told to the poller's budget (``spend``): what detection spends, full catch-ups cannot
(docs/architecture.md §12).

The cursor is the newest ``transaction_time`` seen, kept in the store (it survives a restart). Each poll
asks for activities after the cursor minus a small overlap, because executions in the same millisecond may
be listed out of order (docs/alpaca.md, 7); ids seen in the overlap are skipped. Replaying a window is
harmless anyway: an activity only triggers a read when the order's applied fill is behind it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from ordersync.domain.errors import BrokerError
from ordersync.domain.events import FillActivity, OrderObserved, Source
from ordersync.domain.ids import BrokerOrderId
from ordersync.domain.kinds import JournalKind
from ordersync.domain.order import OrderStatus
from ordersync.engine.context import Context, log
from ordersync.engine.sender import observed
from ordersync.ports import Priority, prioritized

CURSOR = "fill_activities_after"
OVERLAP = timedelta(seconds=2)
START_MARGIN = timedelta(minutes=1)  # no cursor yet: the start-up read covers what came before
PAGE = 100
MAX_PAGES = 20  # 2,000 executions per poll interval: beyond that, the next poll goes on
DIRECT_READS = 8  # more orders behind than this: one catch-up read of the lists instead
UNSUPPORTED_RETRY = timedelta(minutes=5)  # an endpoint the broker does not serve (404) is retried this late
# at most one poll a second (60 of Alpaca's 200 requests a minute), however short the poll interval: the
# poll outranks every request but protection in the budget, so more would starve cancels and catch-ups
MIN_INTERVAL = timedelta(seconds=1)


class FillActivities:
    """Polls the FILL activities and reads the orders whose fills we have not applied."""

    def __init__(
        self,
        ctx: Context,
        put: Callable[[OrderObserved], Awaitable[None]],
        catch_up: Callable[[str], Awaitable[int]],
        spend: Callable[[int], None] | None = None,
    ) -> None:
        self._ctx = ctx
        self._put = put
        self._catch_up = catch_up
        self._spend = spend or (lambda requests: None)  # each request told to the poller's budget
        self._seen: dict[str, datetime] = {}
        self._since: datetime | None = None
        self._unsupported_until: datetime | None = None
        self._last_poll: datetime | None = None
        self._probed: set[BrokerOrderId] = set()  # unknown orders read once (a replacement of ours?)
        self.polls = 0
        self.missed = 0  # orders read because an activity showed a fill we had not applied

    async def poll(self) -> int:
        """Read new activities once; read and queue the orders they show behind. Return how many."""
        now = self._ctx.clock.now()
        if self._unsupported_until is not None and now < self._unsupported_until:
            return 0
        # a fixed-rate poller a second apart may wake a hair early: only what is clearly sooner is skipped
        if self._last_poll is not None and now - self._last_poll < MIN_INTERVAL * 0.9:
            return 0
        self._last_poll = now
        since = self._cursor(now)
        with prioritized(Priority.DETECT):
            try:
                fresh = await self._read(since - OVERLAP)
            except BrokerError as e:
                if e.status_code in (404, 405, 501):  # the broker (or an old simulator) has no such list
                    self._unsupported_until = now + UNSUPPORTED_RETRY
                    log.warning("engine.fill_activities_unsupported", error=str(e)[:200])
                    return 0
                raise
            self.polls += 1
            behind = self._behind(fresh)
            if behind:
                await self._read_orders(behind)
        self._advance(since, fresh)
        return len(behind)

    def _cursor(self, now: datetime) -> datetime:
        if self._since is None:
            with self._ctx.store.transaction() as tx:
                raw = tx.get_cursor(CURSOR)
            self._since = datetime.fromisoformat(raw) if raw else now - START_MARGIN
        return self._since

    async def _read(self, after: datetime) -> list[FillActivity]:
        fresh: list[FillActivity] = []
        token: str | None = None
        for _ in range(MAX_PAGES):
            self._spend(1)
            page = await self._ctx.broker.fill_activities(after, token, PAGE)
            fresh += [a for a in page if a.activity_id not in self._seen]
            if len(page) < PAGE:
                break
            token = page[-1].activity_id
        return fresh

    def _behind(self, fresh: list[FillActivity]) -> list[BrokerOrderId]:
        """The orders of ours whose applied fill is behind an activity (missed events), oldest first."""
        behind: dict[BrokerOrderId, None] = {}
        ctx = self._ctx
        with ctx.store.transaction() as tx:
            open_symbols: set[str] | None = None
            for activity in fresh:
                broker_id = activity.broker_order_id
                order = tx.find_by_broker_id(broker_id)
                if order is None:
                    if broker_id in ctx.leg_owner:  # a leg of our group we have not stored yet
                        behind.setdefault(broker_id)
                        continue
                    # an order we do not know, on a symbol where we work: possibly the replacement
                    # (PATCH) of one of ours whose events we missed; read it once (it names what it
                    # replaced). Any other is another application's: none of our business, never read again.
                    if open_symbols is None:
                        open_symbols = {o.symbol for o in tx.open_orders()}
                    if activity.symbol in open_symbols and broker_id not in self._probed:
                        self._probed.add(broker_id)
                        behind.setdefault(broker_id)
                    continue
                applied = (
                    order.filled_qty >= activity.cum_qty
                    if activity.cum_qty is not None
                    else order.status is OrderStatus.FILLED
                )
                if not applied and broker_id not in behind:
                    behind.setdefault(broker_id)
                    tx.journal(
                        ctx.entry(
                            JournalKind.FILL_MISSED,
                            order.client_order_id,
                            broker_order_id=broker_id,
                            activity_id=activity.activity_id,
                            qty=activity.qty,
                            transaction_time=activity.transaction_time,
                        )
                    )
        return list(behind)

    async def _read_orders(self, behind: list[BrokerOrderId]) -> None:
        self.missed += len(behind)
        self._ctx.metrics.catch_ups.labels("fill_activity").inc()
        if len(behind) > DIRECT_READS:
            await self._catch_up("fill_activities")
            return
        for broker_id in behind:
            self._spend(1)
            view = await self._ctx.broker.get_order(broker_id, nested=True)
            if view is not None:
                await self._put(observed(self._ctx, view, Source.POLL))

    def _advance(self, since: datetime, fresh: list[FillActivity]) -> None:
        # only now (the orders behind were read and queued): a failed poll sees the same activities again
        self._seen.update((a.activity_id, a.transaction_time) for a in fresh)
        newest = max((a.transaction_time for a in fresh), default=since)
        if newest > since:
            self._since = newest
            with self._ctx.store.transaction() as tx:
                tx.set_cursor(CURSOR, newest.isoformat())
        horizon = (self._since or since) - 2 * OVERLAP
        for activity_id in [k for k, at in self._seen.items() if at < horizon]:
            del self._seen[activity_id]
