"""The engine's shared bag: collaborators, in-memory bookkeeping, alerts and notifications.

Every transaction the engine runs is synchronous and never spans an ``await``: on one event loop that makes
each unit of work atomic with respect to every other task, which is the single-writer rule in practice.
Applying an observation lives in observe.py and operator holds in holds.py (re-exported here).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import structlog

from ordersync.domain.ids import BrokerOrderId, ClientOrderId, Symbol
from ordersync.domain.kinds import AlertKind, HoldReason, JournalKind, NotificationKind
from ordersync.domain.order import Order
from ordersync.engine.metrics import EngineMetrics
from ordersync.engine.options import EngineOptions
from ordersync.ports import (
    Alert,
    Broker,
    Clock,
    JournalEntry,
    Lease,
    Store,
    Transaction,
)

log = structlog.get_logger("ordersync.engine")


@dataclass(frozen=True, slots=True)
class Notification:
    """What an embedding platform hears about: fills, children released/accepted/refused, alerts."""

    kind: NotificationKind  # a ``str``: a listener may compare it to the text (``"fill"``)
    client_order_id: str | None
    detail: dict[str, Any]


@dataclass
class Context:
    """The engine's collaborators and in-memory bookkeeping (all durable state is in the store)."""

    broker: Broker
    store: Store
    clock: Clock
    options: EngineOptions
    metrics: EngineMetrics
    listeners: list[Callable[[Notification], None]] = field(default_factory=list)
    dirty: set[ClientOrderId] = field(default_factory=set)
    dirty_symbols: set[str] = field(default_factory=set)  # a sibling ended: every plan there may move
    leg_owner: dict[BrokerOrderId, ClientOrderId] = field(default_factory=dict)
    following: set[BrokerOrderId] = field(default_factory=set)  # replacements being read
    sending: set[ClientOrderId] = field(default_factory=set)
    settling: set[ClientOrderId] = field(default_factory=set)
    stopping: bool = False
    poll_news: int = 0  # changes first learned from catch-up reads (the stream missed them)
    canceling: dict[ClientOrderId, datetime] = field(default_factory=dict)
    wash_waits: dict[ClientOrderId, datetime] = field(default_factory=dict)  # release.py: held since
    native_waits: dict[ClientOrderId, tuple[HoldReason, datetime]] = field(default_factory=dict)  # native.py
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    on_dirty: Callable[[], None] = lambda: None
    lease: Lease | None = None
    lease_lost: bool = False
    lease_unconfirmed: bool = False
    ours: dict[Symbol, Decimal] | None = None  # our book per symbol (domain/attribution.py); None: re-read
    holds: dict[ClientOrderId, str] = field(default_factory=dict)  # operator holds, as of the last read

    def may_write(self) -> bool:
        """True if this instance may send to the broker: it holds the lease (or runs without one).

        Checked right before every submit and cancel. A lease another instance took over is *lost*: this
        instance stops for good. A lease that cannot be renewed because the database does not answer is
        *unconfirmed*: broker writes pause and resume once a renewal succeeds with the same token.
        """
        if self.lease is None:
            return True
        if self.lease.held():
            if self.lease_unconfirmed:
                self.lease_unconfirmed = False
                log.warning(
                    "engine.lease_confirmed", detail="the database answers again: broker writes resume"
                )
            self.metrics.lease_held.set(1)
            return True
        self.metrics.lease_held.set(0)
        if self.lease.lost:
            if not self.lease_lost:
                self.lease_lost = True
                log.error("engine.lease_lost", detail="another instance is active: no more broker writes")
        elif not self.lease_unconfirmed:
            self.lease_unconfirmed = True
            log.error(
                "engine.lease_unconfirmed",
                detail="the lease cannot be renewed (database unreachable?): broker writes paused",
            )
        return False

    def entry(self, kind: JournalKind, client_order_id: str | None, **payload: Any) -> JournalEntry:
        """Return a journal entry stamped with the engine clock."""
        return JournalEntry(self.clock.now(), kind, client_order_id, payload)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        """Run ``coro`` in the background; its failure is logged, never lost silently.

        Once the engine is stopping nothing new starts (the work stays journaled for the next start).
        """
        if self.stopping:
            coro.close()
            return
        task = asyncio.create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("engine.task_failed", task=task.get_name(), error=repr(task.exception()))

    def mark_dirty(self, parent_id: ClientOrderId) -> None:
        """Ask the release gate to look at ``parent_id`` again."""
        self.dirty.add(parent_id)
        self.on_dirty()

    def mark_symbol(self, symbol: str) -> None:
        """Ask the release gate to look at every active plan on ``symbol`` (an order there ended)."""
        self.dirty_symbols.add(symbol)
        self.on_dirty()

    def notify(self, kind: NotificationKind, client_order_id: str | None, **detail: Any) -> None:
        """Tell every listener, and the log at INFO (an order's life, readable by an operator).

        A listener that raises is logged and ignored. Alerts log themselves as ``engine.alert``."""
        if kind is not NotificationKind.ALERT:
            log.info(
                f"order.{kind}", client_order_id=client_order_id, **{k: str(v) for k, v in detail.items()}
            )
        note = Notification(kind, client_order_id, detail)
        for listener in list(self.listeners):
            try:
                listener(note)
            except Exception as e:  # a platform callback must never stop the engine
                log.warning("engine.listener_failed", kind=kind, error=repr(e))

    def raise_alert(self, tx: Transaction, kind: AlertKind, key: str, message: str) -> bool:
        """Open an alert (once per kind/key while open): journal, log, count and notify it."""
        if not tx.raise_alert(Alert(kind, key, message, self.clock.now())):
            return False
        self.metrics.alerts.labels(kind).inc()
        self.metrics.open_alerts.labels(kind).inc()
        tx.journal(self.entry(JournalKind.ALERT, None, alert=kind, key=key, message=message))
        log.warning("engine.alert", alert=kind, key=key, message=message)
        self.notify(NotificationKind.ALERT, None, alert=kind, key=key, message=message)
        return True

    def resolve_alert(self, tx: Transaction, kind: AlertKind, key: str) -> None:
        """Close an open alert whose condition has cleared."""
        if tx.resolve_alert(kind, key, self.clock.now()):
            self.metrics.open_alerts.labels(kind).dec()
            tx.journal(self.entry(JournalKind.ALERT_RESOLVED, None, alert=kind, key=key))

    def remember_legs(self, order: Order) -> None:
        """Index an OCO child's leg ids so their events find their group."""
        for leg in order.leg_ids:
            self.leg_owner[leg] = order.client_order_id


async def pause(clock: Clock, seconds: float) -> None:
    """Wait ``seconds`` of the engine clock, or as many real seconds, whichever ends first.

    For the few waits that must end even when nobody advances a virtual clock: the start-up read and a
    dry-run reconciliation, which a driver (the demo) may run while its clock stands still.
    """
    sleeper = asyncio.ensure_future(clock.sleep(seconds))
    try:
        await asyncio.wait([sleeper], timeout=max(0.0, seconds))
    finally:
        sleeper.cancel()


# the names below lived here before the split (observation application and operator holds are their own
# concepts now); re-exported last, after Context exists, so every existing import keeps working
from ordersync.engine.holds import HOLDS, UnknownParent, lift_hold, read_holds, write_holds  # noqa: E402
from ordersync.engine.observe import apply_observation  # noqa: E402

__all__ = [
    "HOLDS",
    "Context",
    "Notification",
    "UnknownParent",
    "apply_observation",
    "lift_hold",
    "log",
    "pause",
    "read_holds",
    "write_holds",
]
