"""``InMemoryStore``: the Store port in memory, with the SQL store's semantics.

Transactions commit on success and roll back on any exception, ``save_order`` checks the version, a
duplicated execution id is refused, alerts are unique while open, and values come back the way the database
returns them (UTC datetimes, execution ids from the recorded fills, JSON journal payloads). The store
contract suite (tests/integration/store) runs against it and the SQL store alike to keep it honest.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal

from ordersync.domain.errors import ConcurrencyConflict
from ordersync.domain.ids import BrokerOrderId, ClientOrderId, ExecutionId
from ordersync.domain.order import Order
from ordersync.ports import Alert, JournalEntry, PlanState
from ordersync.testing.clock import utc


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
        self._write(_add_fill(execution_id, _Fill(client_order_id, qty, price, utc(ts))))
        return True

    def journal(self, entry: JournalEntry) -> None:
        payload = json.loads(json.dumps(entry.payload, default=_json_default, sort_keys=True))
        self._write(_append_journal(JournalEntry(utc(entry.ts), entry.kind, entry.client_order_id, payload)))

    def raise_alert(self, alert: Alert) -> bool:
        if self._d.open_alert(alert.kind, alert.key) is not None:
            return False
        self._write(_add_alert(Alert(alert.kind, alert.key, alert.message, utc(alert.raised_at))))
        return True

    def resolve_alert(self, kind: str, key: str, at: datetime) -> bool:
        if self._d.open_alert(kind, key) is None:
            return False
        self._write(_resolve_alert(kind, key, utc(at)))
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
        created_at=utc(order.created_at),
        broker_updated_at=None if order.broker_updated_at is None else utc(order.broker_updated_at),
    )


def _stored_plan(state: PlanState) -> PlanState:
    at = state.next_release_at
    return replace(state, next_release_at=None if at is None else utc(at))


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
