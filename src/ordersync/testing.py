"""Test doubles and factories shipped with ordersync: FakeClock, order and event factories, InMemoryStore.

Imports only ``ordersync.domain`` and ``ordersync.ports`` (plus the standard library). Production code never
imports this module (an import-linter contract forbids it). ``InMemoryStore`` keeps the SQLAlchemy store's
semantics, and the store contract suite (tests/integration/store) runs against both to keep it honest:
transactions commit on success and roll back on any exception, ``save_order`` checks the version,
a duplicated execution id is refused, alerts are unique while open, and values come back the way the
database returns them (UTC datetimes, execution ids from the recorded fills, JSON journal payloads).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Collection, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from ordersync.domain.errors import ConcurrencyConflict
from ordersync.domain.events import BrokerOrderView, Execution, OrderObserved, Source
from ordersync.domain.ids import BrokerOrderId, ClientOrderId, ExecutionId
from ordersync.domain.order import (
    Order,
    OrderRole,
    OrderSide,
    OrderStatus,
    OrderType,
    TimeInForce,
    new_order,
)
from ordersync.ports import Alert, JournalEntry, PlanState

__all__ = [
    "T0",
    "FakeClock",
    "InMemoryStore",
    "InMemoryTransaction",
    "fresh_postgres_schema",
    "make_fill",
    "make_order",
    "make_view",
    "observe",
    "postgres_unreachable",
    "wait_until",
]

T0 = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)  # a Monday, 09:30 New York: the default "now" of every factory


class FakeClock:
    """A settable, advanceable clock returning timezone-aware UTC times."""

    def __init__(self, start: datetime = T0) -> None:
        self._now = _utc(start)

    def now(self) -> datetime:
        """Return the current fake time."""
        return self._now

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (timezone-aware; may go backwards, to model a clock step)."""
        self._now = _utc(when)

    def advance(self, seconds: float = 0.0, *, delta: timedelta | None = None) -> datetime:
        """Move forward by ``seconds`` (or ``delta``) and return the new time."""
        step = delta if delta is not None else timedelta(seconds=seconds)
        if step < timedelta(0):
            raise ValueError(f"advance needs a non-negative step, was {step}")
        self._now += step
        return self._now

    async def sleep(self, seconds: float) -> None:
        """Advance by ``seconds`` at once, then let other tasks run (no real waiting)."""
        self.advance(max(seconds, 0.0))
        await asyncio.sleep(0)


# -- factories ---------------------------------------------------------------------------------------


def make_order(
    client_order_id: str = "ord-1",
    *,
    symbol: str = "AAPL",
    side: OrderSide | str = OrderSide.BUY,
    type: OrderType | str = OrderType.LIMIT,
    qty: Decimal | str | int = 10,
    limit_price: Decimal | str | None = None,
    stop_price: Decimal | str | None = None,
    time_in_force: TimeInForce | str = TimeInForce.DAY,
    created_at: datetime = T0,
    role: OrderRole = OrderRole.ENTRY,
    parent_id: str | None = None,
    status: OrderStatus = OrderStatus.INTENT,
    filled_qty: Decimal | str | int = 0,
    filled_avg_price: Decimal | str | None = None,
    broker_order_id: str | None = None,
    broker_updated_at: datetime | None = None,
) -> Order:
    """Return a valid order (validated by ``new_order``), then placed in ``status`` with ``filled_qty``.

    A limit/stop-limit order without ``limit_price`` gets 100.00 and a stop order (or an OCO child)
    without ``stop_price`` gets 95.00; an order the broker knows gets broker id ``brk-<client_order_id>``;
    a filled quantity gets the limit (or stop, or 100.00) price as its average unless ``filled_avg_price``
    is given.
    """
    kind = OrderType(type)
    if limit_price is None and kind in (OrderType.LIMIT, OrderType.STOP_LIMIT):
        limit_price = Decimal("100.00")
    if stop_price is None and (kind in (OrderType.STOP, OrderType.STOP_LIMIT) or role is OrderRole.OCO):
        stop_price = Decimal("95.00")
    order = new_order(
        client_order_id=client_order_id,
        symbol=symbol,
        side=side,
        type=kind,
        qty=qty,
        created_at=created_at,
        time_in_force=time_in_force,
        limit_price=limit_price,
        stop_price=stop_price,
        role=role,
        parent_id=None if parent_id is None else ClientOrderId(parent_id),
    )
    filled = Decimal(filled_qty)
    avg = _default_price(order) if filled > 0 and filled_avg_price is None else filled_avg_price
    if broker_order_id is None and not status.is_local:
        broker_order_id = f"brk-{client_order_id}"
    return replace(
        order,
        status=status,
        filled_qty=filled,
        filled_avg_price=None if avg is None else Decimal(avg),
        broker_order_id=None if broker_order_id is None else BrokerOrderId(broker_order_id),
        broker_updated_at=broker_updated_at,
    )


def make_view(
    order: Order,
    *,
    status: OrderStatus | None = None,
    filled_qty: Decimal | str | int | None = None,
    updated_at: datetime | None = None,
    filled_avg_price: Decimal | str | None = None,
    broker_order_id: str | None = None,
    client_order_id: str | None = None,
) -> BrokerOrderView:
    """Return the broker's view of ``order``; every field defaults to what the order already knows.

    ``status`` defaults to the order's (``new`` for a local order), ``updated_at`` to one second after the
    order's last broker update (or its creation), the average price to the order's (or its limit price).
    """
    filled = order.filled_qty if filled_qty is None else Decimal(filled_qty)
    avg: Decimal | str | None = filled_avg_price
    if avg is None and filled > 0:
        avg = order.filled_avg_price or _default_price(order)
    return BrokerOrderView(
        broker_order_id=BrokerOrderId(
            broker_order_id or order.broker_order_id or f"brk-{order.client_order_id}"
        ),
        client_order_id=ClientOrderId(client_order_id or order.client_order_id),
        symbol=order.symbol,
        status=status or (OrderStatus.NEW if order.status.is_local else order.status),
        qty=order.qty,
        filled_qty=filled,
        filled_avg_price=None if avg is None else Decimal(avg),
        updated_at=updated_at or _next_update(order),
        leg_ids=order.leg_ids,
    )


def observe(
    order: Order,
    status: OrderStatus,
    filled_qty: Decimal | str | int | None = None,
    *,
    event: str | None = None,
    execution_id: str | None = None,
    exec_qty: Decimal | str | int | None = None,
    price: Decimal | str | None = None,
    updated_at: datetime | None = None,
    source: Source = Source.STREAM,
    ts_init: datetime | None = None,
) -> OrderObserved:
    """Return an observation of ``order`` in ``status`` with cumulative ``filled_qty``.

    With ``execution_id`` it is a fill event: ``exec_qty`` defaults to the increase over the order's
    filled quantity, ``event`` to ``fill`` (complete) or ``partial_fill``, and ``price`` to the order's
    limit price (or 100.00).

    Raises:
        ValueError: for an execution that adds nothing and has no explicit ``exec_qty``.
    """
    view = make_view(order, status=status, filled_qty=filled_qty, updated_at=updated_at)
    execution = None
    if execution_id is not None:
        qty = view.filled_qty - order.filled_qty if exec_qty is None else Decimal(exec_qty)
        if qty <= 0 and exec_qty is None:
            raise ValueError(
                f"give exec_qty: filled_qty {view.filled_qty} adds nothing to {order.filled_qty}"
            )
        fill_price = Decimal(price) if price is not None else _default_price(order)
        execution = Execution(ExecutionId(execution_id), qty, fill_price)
        if event is None:
            event = "fill" if view.filled_qty == order.qty else "partial_fill"
    return OrderObserved(
        order=view,
        source=source,
        ts_event=view.updated_at,
        ts_init=ts_init or view.updated_at,
        event=event,
        execution=execution,
    )


def make_fill(
    order: Order,
    qty: Decimal | str | int,
    price: Decimal | str | None = None,
    *,
    execution_id: str | None = None,
    updated_at: datetime | None = None,
    source: Source = Source.STREAM,
) -> OrderObserved:
    """Return the fill event that adds ``qty`` at ``price`` to ``order`` (new cumulative avg price).

    The execution id defaults to a UUID derived from the order and the new cumulative quantity, so the
    same fill built twice is the same (duplicated) event.
    """
    add = Decimal(qty)
    px = Decimal(price) if price is not None else _default_price(order)
    total = order.filled_qty + add
    old_avg = order.filled_avg_price or Decimal(0)
    avg = (old_avg * order.filled_qty + px * add) / total
    status = OrderStatus.FILLED if total == order.qty else OrderStatus.PARTIALLY_FILLED
    exec_id = execution_id or str(uuid.uuid5(uuid.NAMESPACE_URL, f"{order.client_order_id}/{total}"))
    view = replace(
        make_view(order, status=status, filled_qty=total, updated_at=updated_at), filled_avg_price=avg
    )
    return OrderObserved(
        order=view,
        source=source,
        ts_event=view.updated_at,
        ts_init=view.updated_at,
        event="fill" if status is OrderStatus.FILLED else "partial_fill",
        execution=Execution(ExecutionId(exec_id), add, px),
    )


def _default_price(order: Order) -> Decimal:
    return order.limit_price or order.stop_price or Decimal("100.00")


def _next_update(order: Order) -> datetime:
    return (order.broker_updated_at or order.created_at) + timedelta(seconds=1)


def _utc(when: datetime) -> datetime:
    if when.tzinfo is None:
        raise ValueError(f"naive datetime {when!r} refused: ordersync uses UTC only")
    return when.astimezone(UTC)


# -- InMemoryStore -----------------------------------------------------------------------------------


@dataclass
class _Fill:
    client_order_id: ClientOrderId
    qty: Decimal
    price: Decimal
    ts: datetime


@dataclass
class _Data:
    """One version of the whole database."""

    orders: dict[ClientOrderId, Order] = field(default_factory=dict)
    plans: dict[ClientOrderId, PlanState] = field(default_factory=dict)
    fills: dict[ExecutionId, _Fill] = field(default_factory=dict)
    journal: list[JournalEntry] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    cursors: dict[str, str] = field(default_factory=dict)

    def copy(self) -> _Data:
        # values are frozen dataclasses (or replaced whole), so shallow copies of the containers suffice
        return _Data(
            dict(self.orders),
            dict(self.plans),
            dict(self.fills),
            list(self.journal),
            list(self.alerts),
            dict(self.cursors),
        )

    def open_alert(self, kind: str, key: str) -> int | None:
        for index, alert in enumerate(self.alerts):
            if alert.kind == kind and alert.key == key and alert.resolved_at is None:
                return index
        return None


# Writes are functions of the data, so a transaction can run them on its private copy at once (errors
# surface at the call, reads see the transaction's own writes) and again on the latest committed data
# at commit: a row another transaction changed in between fails its version check there, as the SQL
# UPDATE ... WHERE version = n does, instead of being silently overwritten.
_Write = Callable[[_Data], None]


def _add_order(order: Order) -> _Write:
    def write(d: _Data) -> None:
        if order.client_order_id in d.orders:
            raise ConcurrencyConflict(f"conflicting write: order {order.client_order_id} exists")
        _check_broker_id(d, order)
        d.orders[order.client_order_id] = _stored(order)

    return write


def _save_order(order: Order) -> _Write:
    def write(d: _Data) -> None:
        current = d.orders.get(order.client_order_id)
        if current is None or current.version != order.version:
            raise ConcurrencyConflict(f"order {order.client_order_id} changed since version {order.version}")
        _check_broker_id(d, order)
        d.orders[order.client_order_id] = _stored(replace(order, version=order.version + 1))

    return write


def _check_broker_id(d: _Data, order: Order) -> None:
    # the orders table has a unique broker_order_id
    others = (o for o in d.orders.values() if o.client_order_id != order.client_order_id)
    if order.broker_order_id is not None and order.broker_order_id in {o.broker_order_id for o in others}:
        raise ConcurrencyConflict(f"conflicting write: broker id {order.broker_order_id} is taken")


def _add_plan(state: PlanState) -> _Write:
    def write(d: _Data) -> None:
        if state.parent_id in d.plans:
            raise ConcurrencyConflict(f"conflicting write: plan of {state.parent_id} exists")
        d.plans[state.parent_id] = _stored_plan(state)

    return write


def _save_plan(state: PlanState) -> _Write:
    def write(d: _Data) -> None:
        if state.parent_id in d.plans:  # like an UPDATE: a missing plan stays missing
            d.plans[state.parent_id] = _stored_plan(state)

    return write


def _add_fill(execution_id: ExecutionId, fill: _Fill) -> _Write:
    def write(d: _Data) -> None:
        if execution_id in d.fills:  # recorded by a concurrent transaction: the primary key refuses it
            raise ConcurrencyConflict(f"conflicting write: execution {execution_id} exists")
        d.fills[execution_id] = fill

    return write


def _append_journal(entry: JournalEntry) -> _Write:
    def write(d: _Data) -> None:
        seq = d.journal[-1].seq + 1 if d.journal and d.journal[-1].seq is not None else 1
        d.journal.append(replace(entry, seq=seq))

    return write


def _add_alert(alert: Alert) -> _Write:
    def write(d: _Data) -> None:
        if d.open_alert(alert.kind, alert.key) is None:
            d.alerts.append(alert)

    return write


def _resolve_alert(kind: str, key: str, at: datetime) -> _Write:
    def write(d: _Data) -> None:
        index = d.open_alert(kind, key)
        if index is not None:
            d.alerts[index] = replace(d.alerts[index], resolved_at=at)

    return write


def _set_cursor(name: str, value: str) -> _Write:
    def write(d: _Data) -> None:
        d.cursors[name] = value

    return write


class InMemoryTransaction:
    """The Transaction port over a private copy of the committed data, plus the log of its writes."""

    def __init__(self, data: _Data) -> None:
        self._d = data
        self.writes: list[_Write] = []

    def _write(self, write: _Write) -> None:
        write(self._d)
        self.writes.append(write)

    def get_order(self, client_order_id: ClientOrderId) -> Order | None:
        stored = self._d.orders.get(client_order_id)
        return None if stored is None else self._load(stored)

    def find_by_broker_id(self, broker_order_id: BrokerOrderId) -> Order | None:
        found = self._select(lambda o: o.broker_order_id == broker_order_id)
        return found[0] if found else None

    def add_order(self, order: Order) -> None:
        self._write(_add_order(order))

    def save_order(self, order: Order) -> None:
        self._write(_save_order(order))

    def children_of(self, parent_id: ClientOrderId) -> list[Order]:
        return self._select(lambda o: o.parent_id == parent_id)

    def orders_by_id(self, ids: Collection[ClientOrderId]) -> dict[ClientOrderId, Order]:
        wanted = set(ids)
        return {o.client_order_id: o for o in self._select(lambda o: o.client_order_id in wanted)}

    def children_of_many(self, parent_ids: Collection[ClientOrderId]) -> dict[ClientOrderId, list[Order]]:
        grouped: dict[ClientOrderId, list[Order]] = {pid: [] for pid in parent_ids}
        for child in self._select(lambda o: o.parent_id in grouped):
            assert child.parent_id is not None
            grouped[child.parent_id].append(child)
        return grouped

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return self._select(lambda o: o.is_open and (symbol is None or o.symbol == symbol))

    def all_orders(self) -> list[Order]:
        return self._select(lambda o: True)

    def add_plan(self, state: PlanState) -> None:
        self._write(_add_plan(state))

    def save_plan(self, state: PlanState) -> None:
        self._write(_save_plan(state))

    def get_plan(self, parent_id: ClientOrderId) -> PlanState | None:
        return self._d.plans.get(parent_id)

    def active_plans(self) -> list[PlanState]:
        return [p for _, p in sorted(self._d.plans.items()) if not p.done]

    def record_fill(
        self,
        execution_id: ExecutionId,
        client_order_id: ClientOrderId,
        qty: Decimal,
        price: Decimal,
        ts: datetime,
    ) -> bool:
        if execution_id in self._d.fills:
            return False
        self._write(_add_fill(execution_id, _Fill(client_order_id, qty, price, _utc(ts))))
        return True

    def journal(self, entry: JournalEntry) -> None:
        payload = json.loads(json.dumps(entry.payload, default=_json_default, sort_keys=True))
        self._write(_append_journal(JournalEntry(_utc(entry.ts), entry.kind, entry.client_order_id, payload)))

    def raise_alert(self, alert: Alert) -> bool:
        if self._d.open_alert(alert.kind, alert.key) is not None:
            return False
        self._write(_add_alert(Alert(alert.kind, alert.key, alert.message, _utc(alert.raised_at))))
        return True

    def resolve_alert(self, kind: str, key: str, at: datetime) -> bool:
        if self._d.open_alert(kind, key) is None:
            return False
        self._write(_resolve_alert(kind, key, _utc(at)))
        return True

    def open_alerts(self) -> list[Alert]:
        return [a for a in self._d.alerts if a.resolved_at is None]

    def get_cursor(self, name: str) -> str | None:
        return self._d.cursors.get(name)

    def set_cursor(self, name: str, value: str) -> None:
        self._write(_set_cursor(name, value))

    def _select(self, keep: Callable[[Order], bool]) -> list[Order]:
        rows = sorted(self._d.orders.values(), key=lambda o: (o.created_at, o.client_order_id))
        return [self._load(o) for o in rows if keep(o)]

    def _load(self, stored: Order) -> Order:
        # like the SQL store: execution ids are read back from the fills table, not from the order row
        fills = self._d.fills.items()
        return replace(
            stored,
            execution_ids=frozenset(e for e, f in fills if f.client_order_id == stored.client_order_id),
        )


@dataclass
class _Database:
    committed: _Data = field(default_factory=_Data)


class InMemoryStore:
    """The Store port in memory; ``reopen()`` returns a new store over the same committed data."""

    def __init__(self, database: _Database | None = None) -> None:
        self._db = database or _Database()

    @contextmanager
    def transaction(self) -> Iterator[InMemoryTransaction]:
        """Work on a copy; on a normal exit replay the writes on the latest committed data and swap it in.

        Raises:
            ConcurrencyConflict: when a concurrent transaction committed a conflicting change first.
        """
        tx = InMemoryTransaction(self._db.committed.copy())
        yield tx
        latest = self._db.committed.copy()
        for write in tx.writes:
            write(latest)
        self._db.committed = latest

    def read_journal(self, after_seq: int = 0, limit: int = 10_000) -> list[JournalEntry]:
        """Return journal entries in order, after ``after_seq``."""
        entries = self._db.committed.journal
        return [e for e in entries if e.seq is not None and e.seq > after_seq][:limit]

    def close(self) -> None:
        """Nothing to release; the data stays readable through ``reopen()``."""

    def reopen(self) -> InMemoryStore:
        """Return a new store over this store's committed data (a "restart" on the same database)."""
        return InMemoryStore(self._db)


def _stored(order: Order) -> Order:
    return replace(
        order,
        execution_ids=frozenset(),
        created_at=_utc(order.created_at),
        broker_updated_at=None if order.broker_updated_at is None else _utc(order.broker_updated_at),
    )


def _stored_plan(state: PlanState) -> PlanState:
    at = state.next_release_at
    return replace(state, next_release_at=None if at is None else _utc(at))


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


# -- shared test infrastructure ---------------------------------------------------------------------------


def postgres_unreachable(url: str) -> str | None:
    """Return why the PostgreSQL server at ``url`` cannot be used, or None if it answers."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as e:
        return f"PostgreSQL unreachable at {url}: {e.orig}"
    finally:
        engine.dispose()
    return None


def fresh_postgres_schema(url: str, prefix: str = "ordersync_test") -> AbstractContextManager[str]:
    """Create an empty schema, yield a URL whose connections see only it, drop it (and its tables) after."""
    from ordersync.store.isolation import isolated_schema

    return isolated_schema(url, prefix)


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.05) -> None:
    """Poll ``predicate`` (real time) until it holds; fail naming ``what`` after ``timeout_s``.

    Raises:
        AssertionError: the predicate did not hold in time.
    """
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
