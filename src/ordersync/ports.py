"""The ports the engine needs, as Protocols: a Clock, a Store with transactions, and a Broker.

Adapters implement these without inheriting (SqlAlchemyStore, AlpacaBroker, SystemClock); test fakes in
``ordersync.testing`` implement them too. Only ``bootstrap`` picks concrete classes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import IntEnum, StrEnum
from typing import Any, Protocol

from ordersync.domain.events import BrokerOrderView, FillActivity, OrderObserved
from ordersync.domain.exits import AttachedExits
from ordersync.domain.ids import BrokerOrderId, ClientOrderId, ExecutionId, Symbol
from ordersync.domain.kinds import AlertKind, JournalKind
from ordersync.domain.order import Order
from ordersync.domain.protection import ProtectionPlan


class Clock(Protocol):
    """Time for all logic: injected, so tests and the demo run on virtual time."""

    def now(self) -> datetime:
        """Return the current time, timezone-aware UTC."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time (virtual clocks wait less real time)."""
        ...


# -- store -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlanState:
    """A parent's protection plan plus the release gate's retry bookkeeping."""

    parent_id: ClientOrderId
    plan: ProtectionPlan
    release_failures: int = 0
    next_release_at: datetime | None = None
    done: bool = False  # the parent is terminal and its coverage settled: nothing more to release
    closing: bool = False  # flatten requested: cancel protection, then sell what is left
    replaced_at: datetime | None = None  # the plan changed then: older open children are replaced


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One journaled observation or decision (append-only; the forensic record of a run).

    ``kind`` is stored as its text; an entry read back carries that text, a ``str`` equal to its member."""

    ts: datetime
    kind: JournalKind
    client_order_id: str | None
    payload: dict[str, Any]
    seq: int | None = None


@dataclass(frozen=True, slots=True)
class Alert:
    """A condition an operator must see (unprotected position, drift, silent stream, stuck submit).

    ``kind`` is stored as its text; an alert read back carries that text, a ``str`` equal to its member."""

    kind: AlertKind
    key: str
    message: str
    raised_at: datetime
    resolved_at: datetime | None = None


class Transaction(Protocol):
    """Everything read or written inside one atomic unit (commit on success, roll back otherwise)."""

    def get_order(self, client_order_id: ClientOrderId) -> Order | None: ...
    def find_by_broker_id(self, broker_order_id: BrokerOrderId) -> Order | None: ...
    def add_order(self, order: Order) -> None: ...
    def save_order(self, order: Order) -> None: ...
    def children_of(self, parent_id: ClientOrderId) -> list[Order]: ...
    def orders_by_id(self, ids: Collection[ClientOrderId]) -> dict[ClientOrderId, Order]: ...
    def children_of_many(self, parent_ids: Collection[ClientOrderId]) -> dict[ClientOrderId, list[Order]]: ...
    def open_orders(self, symbol: str | None = None) -> list[Order]: ...  # of one symbol when given
    def all_orders(self) -> list[Order]: ...
    def add_plan(self, state: PlanState) -> None: ...
    def save_plan(self, state: PlanState) -> None: ...
    def get_plan(self, parent_id: ClientOrderId) -> PlanState | None: ...
    def active_plans(self) -> list[PlanState]: ...
    def record_fill(
        self,
        execution_id: ExecutionId,
        client_order_id: ClientOrderId,
        qty: Decimal,
        price: Decimal,
        ts: datetime,
    ) -> bool: ...
    def journal(self, entry: JournalEntry) -> None: ...
    def raise_alert(self, alert: Alert) -> bool: ...
    def resolve_alert(self, kind: AlertKind, key: str, at: datetime) -> bool: ...
    def open_alerts(self) -> list[Alert]: ...
    def get_cursor(self, name: str) -> str | None: ...
    def set_cursor(self, name: str, value: str) -> None: ...


class Lease(Protocol):
    """Exclusive right to act on one account: of two instances, only the holder submits or cancels."""

    def try_acquire(self) -> bool:
        """Take the lease if it is free; True if this instance now holds it."""
        ...

    def held(self) -> bool:
        """True while this instance still holds the lease (checked before every broker write)."""
        ...

    @property
    def lost(self) -> bool:
        """True once another instance is known to hold the lease (False while merely unconfirmed)."""
        ...

    def release(self) -> None:
        """Give the lease up (a crash gives it up too: the database or the OS frees it)."""
        ...


class Store(Protocol):
    """Durable state: every change and its journal entry commit together (docs/architecture.md §2,
    invariant 4)."""

    def transaction(self) -> AbstractContextManager[Transaction]: ...
    def read_journal(self, after_seq: int = 0, limit: int = 10_000) -> list[JournalEntry]: ...
    def close(self) -> None: ...


# -- broker ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PositionView:
    """The broker's position: ``qty_available`` is what a new closing order may use."""

    symbol: Symbol
    qty: Decimal
    qty_available: Decimal


class StreamState(StrEnum):
    """Connection changes the stream reports between events."""

    CONNECTED = "connected"  # authorized and listening: catch up before trusting it
    DISCONNECTED = "disconnected"

    @property
    def journal_kind(self) -> JournalKind:
        """The journal entry that records this change."""
        return (
            JournalKind.STREAM_CONNECTED if self is StreamState.CONNECTED else JournalKind.STREAM_DISCONNECTED
        )


@dataclass(frozen=True, slots=True)
class StreamStatus:
    """A connection change of the trade_updates stream."""

    state: StreamState
    at: datetime
    detail: str = ""


class Priority(IntEnum):
    """Who goes first when the request budget is short (lower value first; docs/architecture.md, 12).

    Writes that protect filled shares, and the reads they need, never wait behind reads that only look
    for news; noticing a fill comes next, then ordinary work, then reconciliation.
    """

    PROTECT = 0  # child submits, their settling lookups, the position read that sizes them
    DETECT = 1  # the FILL-activities poll and the order reads it triggers
    NORMAL = 2  # parents, cancels, catch-up reads
    BACKGROUND = 3  # reconciliation and its lookups


REQUEST_PRIORITY: ContextVar[Priority] = ContextVar("ordersync_request_priority", default=Priority.NORMAL)


@contextmanager
def prioritized(priority: Priority) -> Iterator[None]:
    """Send the broker requests made inside this block (and tasks started in it) at ``priority``."""
    token = REQUEST_PRIORITY.set(priority)
    try:
        yield
    finally:
        REQUEST_PRIORITY.reset(token)


class Broker(Protocol):
    """The broker's REST side (async; the adapter keeps blocking SDK calls off the event loop).

    Every request is sent at the caller's ``REQUEST_PRIORITY``.
    """

    async def submit(self, order: Order) -> BrokerOrderView: ...
    async def submit_group(self, order: Order, exits: AttachedExits) -> BrokerOrderView:
        """Send an entry with its exits attached (``order_class`` bracket or oto; legs nested in the
        answer when the broker gives them)."""
        ...

    async def cancel(self, broker_order_id: BrokerOrderId) -> None: ...
    async def get_by_client_id(self, client_order_id: ClientOrderId) -> BrokerOrderView | None: ...
    async def get_order(
        self, broker_order_id: BrokerOrderId, nested: bool = False
    ) -> BrokerOrderView | None: ...
    async def list_orders(
        self,
        status: str,
        after: datetime | None = None,
        limit: int = 500,
        direction: str = "asc",
        symbols: Sequence[str] | None = None,
    ) -> Sequence[BrokerOrderView]: ...
    async def positions(self) -> dict[Symbol, PositionView]: ...
    async def position(self, symbol: Symbol) -> PositionView | None: ...
    async def fill_activities(
        self, after: datetime | None, page_token: str | None = None, page_size: int = 100
    ) -> Sequence[FillActivity]: ...


class BrokerStream(Protocol):
    """The broker's event stream: observations and connection changes, never raising into the engine."""

    def events(self) -> AsyncIterator[OrderObserved | StreamStatus]: ...
    async def close(self) -> None: ...
