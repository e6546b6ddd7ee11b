"""Reconciliation and alerts: the engine's view of what may be wrong, and how long it has been wrong.

Alerts (each a structlog event, a Prometheus metric and an ``alerts`` row, shown by ``ordersync
status``): an unprotected fill older than ``unprotected_alert_s``; a submit unknown for longer than
``unknown_alert_s``; a stream down or silent with open orders; an acknowledged order that no broker read
knows; a reconciliation discrepancy that persists ``drift_alert_runs`` runs. Each resolves itself when the
condition clears (an alert nothing clears is a false alarm an operator must clear by hand).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from ordersync.domain.errors import BrokerError, BrokerUnavailable, RateLimited
from ordersync.domain.events import BrokerOrderView, Source
from ordersync.domain.ids import BrokerOrderId, ClientOrderId, Symbol
from ordersync.domain.kinds import AlertKind, JournalKind
from ordersync.domain.order import Order, OrderStatus
from ordersync.domain.protection import coverage, target_qty
from ordersync.domain.reconcile import Discrepancy, Lookup, Note, Observe, expected_positions, reconcile
from ordersync.engine.catchup import read_changed
from ordersync.engine.context import Context, apply_observation, log, pause, read_holds
from ordersync.engine.retry import backoff_s
from ordersync.engine.sender import observed, start_settle
from ordersync.ports import Alert, PlanState, Transaction


@dataclass
class ReconcileReport:
    """What one reconciliation found (``ordersync reconcile`` prints it)."""

    corrections: int = 0
    lookups: int = 0
    discrepancies: list[Discrepancy] = field(default_factory=list)
    alerts_raised: int = 0
    notes: list[Note] = field(default_factory=list)  # others' orders and shares: reported, never alerted


# every this many ticks the unprotected check reads every live plan; between, only the plans that may have
# changed (see ``Watch._check_unprotected``)
FULL_CHECK_TICKS = 10


class Watch:
    """Reconciliation runs and alert bookkeeping for one engine."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._seen: dict[tuple[AlertKind, str], int] = {}  # discrepancy -> consecutive runs seen
        self._unprotected_since: dict[ClientOrderId, datetime] = {}
        self._short: set[ClientOrderId] = set()  # parents short of protection at their last check
        self._symbol_of: dict[ClientOrderId, str] = {}  # parents checked at least once, and their symbol
        self._touched: set[ClientOrderId] = set()  # parents the release gate was asked about since then
        self._touched_symbols: set[str] = set()
        self._ticks_since_full = FULL_CHECK_TICKS  # the first tick reads everything
        self._missing: dict[ClientOrderId, int] = {}  # acknowledged orders no lookup found, runs in a row
        self.discrepancies_alerted = 0

    async def reconcile(self, *, dry_run: bool, read_attempts: int | None = None) -> ReconcileReport:
        """Compare local orders and positions with the broker's; apply fixes unless ``dry_run``.

        Positions are compared with what our orders imply *after* the corrections this same run read
        (a fill the stream missed is no drift). A dry run reports only the discrepancies that persist
        across ``drift_alert_runs`` reads (a fill landing between the order and position reads shows as
        a difference once), as the periodic runs alert only on those. Reads are retried on 5xx/429 a
        bounded number of times (``read_attempts``, default the option's); then the error is raised.
        """
        attempts = read_attempts or self._ctx.options.read_attempts
        report = await self._run(dry_run=dry_run, attempts=attempts)
        runs = 1
        while dry_run and (report.discrepancies or report.corrections) and runs < self._drift_runs():
            runs += 1
            await pause(self._ctx.clock, self._ctx.options.lookup_backoff_base_s)
            again = await self._run(dry_run=True, attempts=attempts)
            persisting = {(d.kind, d.key) for d in again.discrepancies}
            report.discrepancies = [d for d in report.discrepancies if (d.kind, d.key) in persisting]
            report.corrections, report.lookups = again.corrections, again.lookups
        return report

    def _drift_runs(self) -> int:
        return self._ctx.options.drift_alert_runs

    async def _read_broker(
        self, oldest_open: datetime | None, attempts: int
    ) -> tuple[list[BrokerOrderView], dict[Symbol, Decimal]]:
        ctx = self._ctx
        for attempt in range(1, attempts + 1):
            try:
                views = await read_changed(ctx.broker, oldest_open)
                positions = {s: p.qty for s, p in (await ctx.broker.positions()).items()}
                return views, positions
            except (BrokerUnavailable, RateLimited) as e:
                if attempt == attempts:
                    raise
                wait = backoff_s(attempt, ctx.options.lookup_backoff_base_s, ctx.options.lookup_backoff_cap_s)
                log.warning("engine.reconcile_read_failed", attempt=attempt, wait_s=wait, error=str(e)[:200])
                await pause(ctx.clock, wait)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _run(self, *, dry_run: bool, attempts: int) -> ReconcileReport:
        ctx = self._ctx
        with ctx.store.transaction() as tx:
            local_open = tx.open_orders()
            everything = tx.all_orders()
        oldest = min((o.created_at for o in local_open), default=None)
        views, positions = await self._read_broker(oldest, attempts)
        # our book once this run's reads are applied (the corrections are not drift); the broker's position
        # is attributed against it: the rest is others' (docs/architecture.md §2, invariant 8)
        ours = expected_positions(everything, {}, views)
        held = {o.broker_order_id for o in everything if o.broker_order_id}
        corrections = reconcile(local_open, views, ours, positions, ctx.clock.now(), held)
        report = ReconcileReport()
        report.discrepancies = [c for c in corrections if isinstance(c, Discrepancy)]
        report.notes = [c for c in corrections if isinstance(c, Note)]
        if dry_run:
            report.corrections = sum(isinstance(c, Observe) for c in corrections)
            report.lookups = sum(isinstance(c, Lookup) for c in corrections)
            return report
        with ctx.store.transaction() as tx:
            for c in corrections:
                if isinstance(c, Observe) and apply_observation(ctx, tx, c.observation) is not None:
                    report.corrections += 1
            seen = _RunSeen(
                looked_up={c.client_order_id for c in corrections if isinstance(c, Lookup)},
                open_at_broker={v.broker_order_id for v in views if not v.status.is_terminal},
            )
            report.alerts_raised = self._track(tx, report.discrepancies, seen)
            tx.journal(
                ctx.entry(
                    JournalKind.RECONCILED,
                    None,
                    corrections=report.corrections,
                    discrepancies=len(report.discrepancies),
                    others=[f"{n.kind} {n.key}: {n.detail}" for n in report.notes],
                )
            )
        ctx.ours = None  # the release gate's book is read afresh from the store (corrections included)
        for note in report.notes:
            log.info("engine.others", kind=note.kind, key=note.key, detail=note.detail)
        for c in corrections:
            if isinstance(c, Lookup):
                report.lookups += 1
                if _inflight(ctx, c.client_order_id):
                    start_settle(ctx, c.client_order_id)  # skips an order whose POST is on the wire
                else:
                    ctx.spawn(self.look_up(c.client_order_id), f"lookup:{c.client_order_id}")
        return report

    async def look_up(self, coid: ClientOrderId) -> None:
        """Look up one order that no broker list showed, by its client id.

        Found: adopt the broker's view (and clear a ``missing_at_broker`` raised before). Not found: only an
        order the broker had *acknowledged* is missing. One that is still ours alone by the time the answer
        comes (an intent, or a submit whose answer is unknown: a 429 turned it back into an intent and the
        resend is on the wire) belongs to the settle path, whose same-id resend may be about to land; an
        alert there would be a false alarm that nothing ever clears.
        """
        ctx = self._ctx
        try:
            view = await ctx.broker.get_by_client_id(coid)
        except BrokerError:
            return  # the next reconciliation asks again
        settle = False
        with ctx.store.transaction() as tx:
            if view is not None:
                apply_observation(ctx, tx, observed(ctx, view, Source.RECONCILE))
                self._missing.pop(coid, None)
                self.resolve_alert(tx, AlertKind.MISSING_AT_BROKER, coid)
                return
            order = tx.get_order(coid)
            if order is None or order.is_terminal:
                return
            if order.status.is_local:
                settle = order.is_inflight
            else:  # like every discrepancy: alerted once it persists across drift_alert_runs lookups
                self._missing[coid] = self._missing.get(coid, 0) + 1
                if self._missing[coid] >= self._drift_runs():
                    message = f"{coid} is open here but unknown to the broker"
                    self.raise_alert(tx, AlertKind.MISSING_AT_BROKER, coid, message)
        if settle:
            start_settle(ctx, coid)  # a no-op while its POST is on the wire or a settle already runs

    def _track(self, tx: Transaction, discrepancies: list[Discrepancy], seen: _RunSeen) -> int:
        raised = 0
        current = {(d.kind, d.key): d for d in discrepancies}
        for key, d in current.items():
            self._seen[key] = self._seen.get(key, 0) + 1
            if self._seen[key] >= self._ctx.options.drift_alert_runs and self.raise_alert(
                tx, d.kind, d.key, d.detail
            ):
                raised += 1
                self.discrepancies_alerted += 1
        for key in [k for k in self._seen if k not in current]:
            del self._seen[key]
        # resolve from the store, not from memory: an alert raised before a restart must clear too
        for alert in tx.open_alerts():
            if _cleared(alert, current, seen):
                self.resolve_alert(tx, alert.kind, alert.key)
        return raised

    def tick(self, open_orders: list[Order], stream_connected: bool, last_stream_at: datetime) -> None:
        """Age-based alerts: unprotected fills, unknown submits, a silent stream.

        ``open_orders`` is the caller's read of this tick (no await since): each plan and each open order
        is read once per tick, because a tick runs every second against possibly thousands of orders.
        """
        ctx = self._ctx
        now = ctx.clock.now()
        with ctx.store.transaction() as tx:
            alerts = _TickAlerts(self._ctx, tx)
            holds = read_holds(tx)
            # `ordersync protect` lifted a hold (another process, through the store): release again
            released = [pid for pid in ctx.holds if pid not in holds]
            ctx.holds = holds
            alerts.resolve_all_but(AlertKind.PROTECTION_CANCELLED_BY_OPERATOR, set(holds))
            plans = tx.active_plans()
            due, waiting, sequencing = _scan(plans, now)
            short = self._check_unprotected(tx, alerts, plans, open_orders, now)
            due += [pid for pid in short if pid not in waiting]
            due += sequencing
            due += released
            self._check_unknown(alerts, open_orders, now)
            silent = (now - last_stream_at).total_seconds()
            if not stream_connected and open_orders:
                message = f"stream down for {silent:.0f}s with open orders"
                alerts.raise_(AlertKind.STREAM_DOWN, "trade_updates", message)
            elif stream_connected:
                alerts.resolve_all_but(AlertKind.STREAM_DOWN, set())
        for pid in due:
            ctx.mark_dirty(pid)

    def touched(self, parents: Collection[ClientOrderId], symbols: Collection[str]) -> None:
        """Note parents (and symbols) the release gate was asked to look at: their coverage may change."""
        self._touched.update(parents)
        self._touched_symbols.update(symbols)

    def _to_check(self, plans: list[PlanState]) -> list[PlanState]:
        """The plans whose coverage may have changed since their last check (every plan now and then).

        A parent becomes short only by what also asks the release gate to act (a fill, a child ended
        unfilled, a hold lifted, a new plan): those marks are collected here, the short parents are
        checked on every tick, and every ``FULL_CHECK_TICKS`` ticks all of them are. Set operations, not a
        test per plan: a quiet tick at 10,000 live plans checks a handful (bench/bench_tick.py)."""
        touched = self._touched | self._ctx.dirty
        symbols = self._touched_symbols | self._ctx.dirty_symbols
        self._touched, self._touched_symbols = set(), set()
        self._ticks_since_full += 1
        if self._ticks_since_full >= FULL_CHECK_TICKS:
            self._ticks_since_full = 0
            return plans
        wanted = self._short | touched
        if symbols:
            wanted |= {pid for pid, sym in self._symbol_of.items() if sym in symbols}
        if len(self._symbol_of) != len(plans):  # a plan never checked yet (new, parent unread), or ended
            live = {s.parent_id for s in plans}
            for pid in self._symbol_of.keys() - live:
                del self._symbol_of[pid]
            wanted |= live - self._symbol_of.keys()
        if not wanted:
            return []
        return [s for s in plans if s.parent_id in wanted]

    def _check_unprotected(
        self,
        tx: Transaction,
        alerts: _TickAlerts,
        plans: list[PlanState],
        open_orders: list[Order],
        now: datetime,
    ) -> list[ClientOrderId]:
        checked = self._to_check(plans)
        ids = [state.parent_id for state in checked]
        parents = _parents(tx, ids, open_orders)
        children = tx.children_of_many(ids)
        short_now: set[ClientOrderId] = set()
        for state in checked:
            parent = parents.get(state.parent_id)
            if parent is None or (state.parent_id in self._ctx.holds and not state.closing):
                continue  # on operator hold: its own alert says so; not ours to re-arm
            self._symbol_of[state.parent_id] = parent.symbol
            # the release gate counts unsent and unknown children (they may be live: never double-sell);
            # the alert counts only what the broker acknowledged: an unknown child protects nothing yet
            acknowledged = [c for c in children[state.parent_id] if not c.status.is_local]
            short = target_qty(parent, state.plan) - coverage(acknowledged, parent)
            if short > 0:
                short_now.add(state.parent_id)
                since = self._unprotected_since.setdefault(state.parent_id, now)
                age = (now - since).total_seconds()
                if age >= self._ctx.options.unprotected_alert_s:
                    msg = f"{parent.symbol}: {short} of {parent.client_order_id} unprotected for {age:.0f}s"
                    alerts.raise_(AlertKind.UNPROTECTED_POSITION, state.parent_id, msg)
        self._short = (self._short - set(ids)) | short_now
        if self._short - short_now:  # short before and not checked now: its plan ended
            self._short &= {state.parent_id for state in plans}
        if len(checked) == len(plans):
            self._symbol_of = {pid: self._symbol_of[pid] for pid in ids if pid in self._symbol_of}
        for pid in [p for p in self._unprotected_since if p not in self._short]:
            del self._unprotected_since[pid]
        # resolve from the store, not from memory: an alert raised before a restart must clear too
        alerts.resolve_all_but(AlertKind.UNPROTECTED_POSITION, self._short)
        ages = [(now - since).total_seconds() for since in self._unprotected_since.values()]
        self._ctx.metrics.unprotected_age.set(max(ages, default=0.0))
        return sorted(self._short)

    def _check_unknown(self, alerts: _TickAlerts, open_orders: list[Order], now: datetime) -> None:
        unknown = [o for o in open_orders if o.status is OrderStatus.SUBMITTING]
        self._ctx.metrics.unknown_orders.set(len(unknown))
        # settled (found, or resent and accepted): resolved
        alerts.resolve_all_but(AlertKind.STUCK_UNKNOWN, {o.client_order_id for o in unknown})
        for order in unknown:
            if (now - order.created_at).total_seconds() >= self._ctx.options.unknown_alert_s:
                coid = order.client_order_id
                alerts.raise_(AlertKind.STUCK_UNKNOWN, coid, f"{coid} submit outcome unknown")

    def raise_alert(self, tx: Transaction, kind: AlertKind, key: str, message: str) -> bool:
        """Open an alert through the engine context."""
        return self._ctx.raise_alert(tx, kind, key, message)

    def resolve_alert(self, tx: Transaction, kind: AlertKind, key: str) -> None:
        """Close an alert through the engine context."""
        self._ctx.resolve_alert(tx, kind, key)


class _TickAlerts:
    """The open alerts, read once per tick. Re-raising an alert that is already open is then free (it was
    a query per unprotected parent per tick: hundreds of PostgreSQL round trips a second under load), and
    resolving walks this set instead of re-reading the table for each kind."""

    def __init__(self, ctx: Context, tx: Transaction) -> None:
        self._ctx, self._tx = ctx, tx
        self._open = {(a.kind, a.key) for a in tx.open_alerts()}

    def raise_(self, kind: AlertKind, key: str, message: str) -> None:
        if (kind, key) not in self._open and self._ctx.raise_alert(self._tx, kind, key, message):
            self._open.add((kind, key))

    def resolve_all_but(self, kind: AlertKind, keep: Collection[str]) -> None:
        for alert_kind, key in [a for a in self._open if a[0] == kind and a[1] not in keep]:
            self._ctx.resolve_alert(self._tx, alert_kind, key)
            self._open.discard((alert_kind, key))


@dataclass(frozen=True)
class _RunSeen:
    """What one reconciliation read, for clearing the alerts of conditions that no longer hold."""

    looked_up: set[ClientOrderId]  # ours, open here, in no broker list
    open_at_broker: set[BrokerOrderId]  # every open order the broker listed, ours or not


def _scan(
    plans: list[PlanState], now: datetime
) -> tuple[list[ClientOrderId], set[ClientOrderId], list[ClientOrderId]]:
    """One pass: (releases due, parents backing off after a refusal, exits in progress to re-ask).
    A held release is re-marked each tick, but not one backing off (its due time marks it: a re-mark
    costs its symbol a release pass and a position read); an exit re-asks a cancel never confirmed."""
    due: list[ClientOrderId] = []
    waiting: set[ClientOrderId] = set()
    sequencing: list[ClientOrderId] = []
    for s in plans:
        if s.next_release_at is not None:
            if s.next_release_at <= now:
                due.append(s.parent_id)
            else:
                waiting.add(s.parent_id)
        if s.closing or s.replaced_at is not None:
            sequencing.append(s.parent_id)
    return due, waiting, sequencing


def _parents(
    tx: Transaction, ids: list[ClientOrderId], open_orders: list[Order]
) -> dict[ClientOrderId, Order]:
    """The parents of ``ids``: from the tick's read of the open orders when many are wanted (a full pass),
    by id when few are (a quiet tick: indexing 10,000 open orders would cost more than the check)."""
    if len(ids) * 20 < len(open_orders):
        return tx.orders_by_id(ids)
    parents = {o.client_order_id: o for o in open_orders}
    parents.update(tx.orders_by_id([i for i in ids if i not in parents]))  # ended parents: read here
    return parents


def _cleared(alert: Alert, current: Collection[tuple[str, str]], seen: _RunSeen) -> bool:
    """True when a reconciliation-checked alert's condition no longer holds after this run."""
    if alert.kind in (AlertKind.POSITION_DRIFT, AlertKind.FOREIGN_ORDER):
        return (alert.kind, alert.key) not in current
    if alert.kind == AlertKind.MISSING_AT_BROKER:  # in a broker list again, or no longer open here
        return alert.key not in seen.looked_up
    if alert.kind == AlertKind.FOREIGN_ORDER_HOLDS_SHARES:  # the holder has ended: it holds nothing now
        return alert.key not in seen.open_at_broker
    return False


def _inflight(ctx: Context, coid: ClientOrderId) -> bool:
    with ctx.store.transaction() as tx:
        order = tx.get_order(coid)
    return order is not None and order.status is OrderStatus.SUBMITTING
