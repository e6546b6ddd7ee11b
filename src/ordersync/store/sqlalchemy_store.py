"""The Store port on SQLAlchemy Core: one connection-scoped transaction per unit of work.

Core rather than the ORM: the engine applies thousands of events per second through a single writer,
and a row-per-statement API with no identity map is both faster and closer to what is journaled.
Optimistic versioning (``version`` column) turns a second concurrent writer into ConcurrencyConflict
instead of a silent lost update.

The hot path (one stream event: read the order, save it, record the fill, journal it) is kept cheap:
statements are built once at import (building a Core statement costs more than executing it on SQLite);
the writer reads a whole batch's orders in one query (``orders_by_id``, with their execution ids; ids
found absent are remembered too), and a transaction remembers the orders it has read, so a burst of
events costs no read per event; the engine's store (``keep_orders``) also keeps open orders in memory
between transactions. Saving an order read in this transaction is buffered and sent at commit as one
UPDATE per order of the columns that changed, with the version check of the first read (a conflict
then surfaces at commit, still as ConcurrencyConflict, and any multi-row read flushes first). The fills
of such orders and the journal rows are written together, in order, at commit (nothing reads the
journal inside a transaction): executemany on SQLite, COPY on PostgreSQL (one round trip each instead
of a SELECT and an INSERT per execution); the fills' unique key stays the final guard against a
duplicate. On SQLite the single-order read skips SQLAlchemy's execution layer (see ``_sqlite_read``).
bench/bench_throughput.py measures the effect.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, create_engine, event, func, insert, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from ordersync.domain.errors import ConcurrencyConflict

try:  # PostgreSQL's driver is optional (the ``postgres`` extra)
    from psycopg.errors import UniqueViolation
except ImportError:  # pragma: no cover - SQLite-only installs never take the PostgreSQL paths

    class UniqueViolation(Exception):  # type: ignore[no-redef]
        """Stands in for psycopg's exception where psycopg is not installed."""


from ordersync.domain.ids import BrokerOrderId, ClientOrderId, ExecutionId
from ordersync.domain.order import Order
from ordersync.ports import Alert, JournalEntry, PlanState
from ordersync.store import tables as t
from ordersync.store.lease import DEFAULT_RENEW_S, DEFAULT_TTL_S, FileLease, PostgresLease
from ordersync.store.mapping import order_to_row, plan_to_row, row_to_alert, row_to_order, row_to_plan
from ordersync.store.migrate import upgrade


def _json_default(value: object) -> str:
    if isinstance(value, Decimal | datetime):
        return value.isoformat() if isinstance(value, datetime) else str(value)
    return str(value)


# one encoder (json.dumps with arguments builds a new one per call: a tenth of the cost of a journal row)
_ENCODER = json.JSONEncoder(default=_json_default, separators=(",", ":"), sort_keys=True)


def dumps(payload: dict[str, Any]) -> str:
    """Return ``payload`` as compact JSON, with Decimals and datetimes as exact strings."""
    return _ENCODER.encode(payload)


# Built once: constructing a Core statement costs about twice what executing it costs on SQLite.
_ORDERED = (t.orders.c.created_at, t.orders.c.client_order_id)
_EXECUTIONS_OF = select(t.fills.c.execution_id).where(t.fills.c.client_order_id == bindparam("coid"))
_EXECUTIONS_IN = select(t.fills.c.client_order_id, t.fills.c.execution_id).where(
    t.fills.c.client_order_id.in_(bindparam("coids", expanding=True))
)
_FILL_EXISTS = select(t.fills.c.execution_id).where(t.fills.c.execution_id == bindparam("execution_id"))
_INSERT_ORDER = insert(t.orders)
_VERSIONS_IN = select(t.orders.c.client_order_id, t.orders.c.version).where(
    t.orders.c.client_order_id.in_(bindparam("coids", expanding=True))
)
_INSERT_FILL = insert(t.fills)
_INSERT_FILL_IF_NEW = sqlite_insert(t.fills).on_conflict_do_nothing(index_elements=["execution_id"])
# PostgreSQL: a batch's journal rows and fills go in with COPY (in order: the journal's seq follows the
# rows), several times cheaper than a multi-row INSERT, whose statement costs more to build and parse
# client-side than to execute. The fills are copied inside a savepoint: if one of them is stored already
# (the unique key is the final guard), the copy is undone and they go in again through INSERT ... ON
# CONFLICT DO NOTHING RETURNING, which names the rows that went in.
_PG_COPY_JOURNAL = "COPY journal (ts, kind, client_order_id, payload) FROM STDIN"
_PG_COPY_FILLS = "COPY fills (execution_id, client_order_id, qty, price, ts) FROM STDIN"
_PG_INSERT_FILLS = (
    "INSERT INTO fills (execution_id, client_order_id, qty, price, ts)"
    " SELECT * FROM unnest(%s::varchar[], %s::varchar[], %s::varchar[], %s::varchar[], %s::timestamptz[])"
    " ON CONFLICT (execution_id) DO NOTHING RETURNING execution_id"
)
_UTC_TIME = t.UtcDateTime()
_FILL_HOLDERS = select(t.fills.c.execution_id, t.fills.c.client_order_id).where(
    t.fills.c.execution_id.in_(bindparam("ids", expanding=True))
)
_INSERT_JOURNAL = insert(t.journal)
# the SET clause is whatever columns the parameters name; the WHERE binds must not share their names
_UPDATE_ORDER = update(t.orders).where(
    t.orders.c.client_order_id == bindparam("where_coid"), t.orders.c.version == bindparam("where_version")
)
_TIMES = ("created_at", "broker_updated_at")
_EXECUTION_LISTS = {  # an order's execution ids as one JSON array, read with the order itself
    "sqlite": func.json_group_array(t.fills.c.execution_id),
    "postgresql": func.json_agg(t.fills.c.execution_id),
}


def _order_query(dialect: str, where: Any) -> Any:
    aggregate = _EXECUTION_LISTS.get(dialect)
    if aggregate is None:
        return select(t.orders).where(where)
    executions = (
        select(aggregate).where(t.fills.c.client_order_id == t.orders.c.client_order_id).scalar_subquery()
    )
    return select(t.orders, executions.label("execution_ids")).where(where)


# (dialect, key) -> statement; built on first use per dialect
_QUERIES: dict[tuple[str, str], Any] = {}


@dataclass(frozen=True)
class _RawRead:
    """One compiled single-order read for SQLite, with SQLAlchemy's own result processors per column."""

    sql: str
    columns: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]


_RAW_READS: dict[str, _RawRead] = {}


def _sqlite_read(conn: Connection, where: str, key: str) -> dict[str, Any] | None:
    # The single-order read is the hot path's one unavoidable query (a burst of events reads each order
    # once per transaction), and SQLAlchemy's execution machinery costs as much as SQLite itself there.
    # So on SQLite it runs on the same DBAPI connection (same transaction) with the SQL that SQLAlchemy
    # compiled and the result processors SQLAlchemy would apply: the same row, at about half the cost.
    raw = _RAW_READS.get(where)
    if raw is None:
        query = _order_query("sqlite", _WHERE[where])
        compiled = query.compile(dialect=conn.dialect)
        if list(compiled.positiontup or ()) != ["key"]:
            raise RuntimeError(f"unexpected parameters {compiled.positiontup} in the {where} read")
        selected = list(query.selected_columns)
        dialect = conn.dialect
        processors = tuple(c.type.dialect_impl(dialect).result_processor(dialect, None) for c in selected)
        raw = _RAW_READS.setdefault(
            where, _RawRead(str(compiled), tuple(c.key for c in selected), processors)
        )
    found = conn.connection.driver_connection.execute(raw.sql, (key,)).fetchone()  # type: ignore[union-attr]
    if found is None:
        return None
    return {
        name: value if process is None else process(value)
        for name, process, value in zip(raw.columns, raw.processors, found, strict=True)
    }


_WHERE = {
    "by_id": t.orders.c.client_order_id == bindparam("key"),
    "by_broker_id": t.orders.c.broker_order_id == bindparam("key"),
    "in_ids": t.orders.c.client_order_id.in_(bindparam("keys", expanding=True)),
}


@dataclass(slots=True)
class _Known:
    """An order as this transaction sees it (its own writes included), built into an ``Order`` lazily."""

    base: Order  # right in every field but possibly version, execution_ids and the datetimes' zone
    version: int
    execution_ids: frozenset[ExecutionId]
    row: dict[str, Any]  # the row the database holds (or will, once pending writes are flushed)
    order: Order | None = None

    def get(self) -> Order:
        if self.order is None:
            self.order = _as_stored(self.base, self.version, self.execution_ids)
        return self.order


@dataclass(slots=True)
class _Pending:
    """A coalesced UPDATE not yet sent: the version the database has, and the columns to set."""

    version: int
    columns: set[str]


class SqlAlchemyTransaction:
    """The Transaction port over one open SQLAlchemy connection (see ``SqlAlchemyStore.transaction``)."""

    def __init__(self, conn: Connection, kept: dict[str, _Known] | None = None) -> None:
        self._conn = conn
        self._dialect = conn.dialect.name
        # the store's open orders as committed (see ``SqlAlchemyStore``): read from here, not the database
        self._kept = kept
        self._unkept: set[str] = set()  # orders written around this transaction's view (not to keep)
        # orders as this transaction last read or wrote them (exactly what a fresh read would return)
        self._orders: dict[str, _Known] = {}
        self._by_broker_id: dict[str, str] = {}
        self._pending: dict[str, _Pending] = {}
        self._new_fills: dict[str, dict[str, Any]] = {}  # execution_id -> fills row, inserted at flush
        self._fills_of: dict[str, set[ExecutionId]] = {}  # client_order_id -> its buffered executions
        self._journal: list[dict[str, Any]] = []
        # client ids a batch read (``orders_by_id``) found absent: asking again costs no query
        self._absent: set[str] = set()

    def flush(self) -> None:
        """Write what is buffered (order updates, journal rows); called before the transaction commits.

        Raises:
            ConcurrencyConflict: when another writer saved one of the buffered orders first.
        """
        self._flush_orders()
        if self._new_fills:
            self._flush_fills()
        if self._journal:
            rows, self._journal = self._journal, []
            if self._dialect == "postgresql":
                tuples = [(_utc(r["ts"]), r["kind"], r["client_order_id"], r["payload"]) for r in rows]
                self._copy(_PG_COPY_JOURNAL, tuples)
            else:
                self._conn.execute(_INSERT_JOURNAL, rows)

    # -- orders --------------------------------------------------------------------------------------

    def get_order(self, client_order_id: ClientOrderId) -> Order | None:
        known = self._orders.get(client_order_id) or self._from_kept(client_order_id)
        if known is not None:
            return known.get()
        if client_order_id in self._absent:
            return None
        return self._one("by_id", client_order_id)

    def find_by_broker_id(self, broker_order_id: BrokerOrderId) -> Order | None:
        coid = self._by_broker_id.get(broker_order_id)
        known = self._orders.get(coid) if coid is not None else None
        if known is not None and known.base.broker_order_id == broker_order_id:
            return known.get()
        self._flush_orders()  # a buffered update may have given another order this broker id
        return self._one("by_broker_id", broker_order_id)

    def add_order(self, order: Order) -> None:
        self._absent.discard(order.client_order_id)
        self._conn.execute(_INSERT_ORDER, order_to_row(order))

    def save_order(self, order: Order) -> None:
        """Write ``order`` if nobody changed it since it was read (its ``version``).

        Raises:
            ConcurrencyConflict: when another writer saved the same order first.
        """
        coid, version = order.client_order_id, order.version
        row = order_to_row(order)
        row["version"] = version + 1
        known = self._orders.get(coid)
        if known is None or known.version != version:
            if coid in self._pending:  # our own buffered write is newer than the caller's copy
                raise ConcurrencyConflict(f"order {coid} changed since version {version}")
            self._orders.pop(coid, None)
            self._unkept.add(coid)
            row.update(where_coid=coid, where_version=version)
            if self._conn.execute(_UPDATE_ORDER, row).rowcount != 1:
                raise ConcurrencyConflict(f"order {coid} changed since version {version}")
            return
        # read (or saved) in this transaction: buffer the change, one UPDATE per order at flush, of the
        # columns that changed; the version check there still guards the whole row
        changed = _changed(known.row, row)
        pending = self._pending.setdefault(coid, _Pending(version, set()))
        pending.columns.update(changed)
        known.base, known.version, known.row, known.order = order, version + 1, row, None
        if order.broker_order_id is not None:
            self._by_broker_id[order.broker_order_id] = coid

    def _from_kept(self, coid: str) -> _Known | None:
        kept = self._kept.get(coid) if self._kept is not None else None
        if kept is None or coid in self._unkept:
            return None
        known = self._orders[coid] = _Known(kept.base, kept.version, kept.execution_ids, kept.row, kept.order)
        if kept.base.broker_order_id is not None:
            self._by_broker_id[kept.base.broker_order_id] = coid
        return known

    def keep(self, kept: dict[str, _Known]) -> None:
        """After commit: remember the open orders as this transaction left them (the newest version wins;
        a terminal order is forgotten)."""
        for coid in self._unkept:
            kept.pop(coid, None)
        for coid, known in self._orders.items():
            if coid in self._unkept:
                continue
            if not known.base.is_open:
                kept.pop(coid, None)
                continue
            old = kept.get(coid)
            if old is None or old.version <= known.version:
                kept[coid] = known

    def children_of(self, parent_id: ClientOrderId) -> list[Order]:
        return self._many(t.orders.c.parent_id == parent_id)

    def orders_by_id(self, ids: Collection[ClientOrderId]) -> dict[ClientOrderId, Order]:
        """Return the orders with these client ids, in one query per 500 ids not yet read here.

        The writer calls it with a batch's ids before applying the batch: every later ``get_order`` of
        one of them, found or not, is then answered without a query.
        """
        found: dict[ClientOrderId, Order] = {}
        wanted: list[str] = []
        for coid in dict.fromkeys(ids):
            known = self._orders.get(coid) or self._from_kept(coid)
            if known is not None:
                found[coid] = known.get()
            elif coid not in self._absent:
                wanted.append(coid)
        query = _QUERIES.get((self._dialect, "in_ids"))
        if query is None:
            query = _QUERIES.setdefault(
                (self._dialect, "in_ids"), _order_query(self._dialect, _WHERE["in_ids"])
            )
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            rows = [dict(r) for r in self._conn.execute(query, {"keys": chunk}).mappings()]
            for row in rows:
                order = self._from_row(row)
                found[order.client_order_id] = order
            self._absent.update(set(chunk) - {r["client_order_id"] for r in rows})
        return found

    def children_of_many(self, parent_ids: Collection[ClientOrderId]) -> dict[ClientOrderId, list[Order]]:
        """Return the children of each parent, in one query per 500 parents."""
        grouped: dict[ClientOrderId, list[Order]] = {pid: [] for pid in parent_ids}
        wanted = list(parent_ids)
        for start in range(0, len(wanted), 500):
            for child in self._many(t.orders.c.parent_id.in_(wanted[start : start + 500])):
                assert child.parent_id is not None
                grouped[child.parent_id].append(child)
        return grouped

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        if symbol is None:
            return self._many(t.orders.c.is_open.is_(True))
        return self._many(t.orders.c.is_open.is_(True) & (t.orders.c.symbol == symbol))

    def all_orders(self) -> list[Order]:
        return self._many(None)

    def _one(self, where: str, key: str) -> Order | None:
        query = _QUERIES.get((self._dialect, where))
        if query is None:
            query = _QUERIES.setdefault((self._dialect, where), _order_query(self._dialect, _WHERE[where]))
        if self._dialect == "sqlite":
            row = _sqlite_read(self._conn, where, key)
        else:
            mapping = self._conn.execute(query, {"key": key}).mappings().first()
            row = None if mapping is None else dict(mapping)
        if row is None:
            return None
        return self._from_row(row)

    def _from_row(self, row: dict[str, Any]) -> Order:
        # a row of ``_order_query`` (the order and, where the dialect can, its execution ids as JSON)
        listed = row.pop("execution_ids", None)
        if listed is None and self._dialect not in _EXECUTION_LISTS:
            ids = list(self._conn.execute(_EXECUTIONS_OF, {"coid": row["client_order_id"]}).scalars())
        else:
            ids = json.loads(listed) if isinstance(listed, str) else (listed or [])
        executions = frozenset(ExecutionId(i) for i in ids if i is not None)
        buffered = self._fills_of.get(row["client_order_id"])
        order = row_to_order(row, executions | buffered if buffered else executions)
        return self._remember(order, row)

    def _many(self, where: Any) -> list[Order]:
        self._flush_orders()
        query = select(t.orders) if where is None else select(t.orders).where(where)
        rows_list = [dict(r) for r in self._conn.execute(query.order_by(*_ORDERED)).mappings()]
        executions = self._executions([r["client_order_id"] for r in rows_list])
        for coid, buffered in self._fills_of.items():
            executions[coid] = executions.get(coid, frozenset()) | buffered
        return [
            self._remember(row_to_order(r, executions.get(r["client_order_id"], frozenset())), r)
            for r in rows_list
        ]

    def _executions(self, ids: list[str]) -> dict[str, frozenset[ExecutionId]]:
        if not ids:
            return {}
        found: dict[str, set[ExecutionId]] = {}
        for chunk_start in range(0, len(ids), 500):
            chunk = ids[chunk_start : chunk_start + 500]
            for coid, exec_id in self._conn.execute(_EXECUTIONS_IN, {"coids": chunk}):
                found.setdefault(coid, set()).add(ExecutionId(exec_id))
        return {k: frozenset(v) for k, v in found.items()}

    def _remember(self, order: Order, row: dict[str, Any]) -> Order:
        coid = order.client_order_id
        if coid in self._pending:  # a read never overwrites what this transaction has not written yet
            return self._orders[coid].get()
        self._orders[coid] = _Known(order, order.version, order.execution_ids, row, order)
        if order.broker_order_id is not None:
            self._by_broker_id[order.broker_order_id] = coid
        return order

    def _flush_orders(self) -> None:
        if not self._pending:
            return
        groups: dict[frozenset[str], list[dict[str, Any]]] = {}
        for coid, pending in self._pending.items():
            row = self._orders[coid].row
            params = {column: row[column] for column in pending.columns}
            params.update(where_coid=coid, where_version=pending.version)
            groups.setdefault(frozenset(pending.columns), []).append(params)
        self._pending = {}
        for batch in groups.values():
            if self._conn.execute(_UPDATE_ORDER, batch).rowcount != len(batch):
                self._conflict(batch)

    def _conflict(self, batch: list[dict[str, Any]]) -> None:
        # the batch's total rowcount fell short: name an order whose version check failed
        coids = [p["where_coid"] for p in batch]
        versions: dict[str, int] = {}
        for coid, version in self._conn.execute(_VERSIONS_IN, {"coids": coids}):
            versions[coid] = version
        for params in batch:
            if versions.get(params["where_coid"]) != params["version"]:
                coid, version = params["where_coid"], params["where_version"]
                raise ConcurrencyConflict(f"order {coid} changed since version {version}")
        raise ConcurrencyConflict(f"one of {len(batch)} orders changed since it was read")

    # -- plans ---------------------------------------------------------------------------------------

    def add_plan(self, state: PlanState) -> None:
        self._conn.execute(insert(t.plans).values(plan_to_row(state)))

    def save_plan(self, state: PlanState) -> None:
        row = plan_to_row(state)
        self._conn.execute(update(t.plans).where(t.plans.c.parent_id == state.parent_id).values(row))

    def get_plan(self, parent_id: ClientOrderId) -> PlanState | None:
        row = self._conn.execute(select(t.plans).where(t.plans.c.parent_id == parent_id)).mappings().first()
        return None if row is None else row_to_plan(row)

    def active_plans(self) -> list[PlanState]:
        query = select(t.plans).where(t.plans.c.done.is_(False)).order_by(t.plans.c.parent_id)
        return [row_to_plan(r) for r in self._conn.execute(query).mappings()]

    # -- fills, journal, alerts, cursors ---------------------------------------------------------------

    def record_fill(
        self,
        execution_id: ExecutionId,
        client_order_id: ClientOrderId,
        qty: Decimal,
        price: Decimal,
        ts: datetime,
    ) -> bool:
        """Record one execution; return False if that execution_id is already recorded."""
        values = {
            "execution_id": execution_id,
            "client_order_id": client_order_id,
            "qty": qty,
            "price": price,
            "ts": ts,
        }
        known = self._orders.get(client_order_id)
        if execution_id in self._new_fills or (known is not None and execution_id in known.execution_ids):
            return False
        if known is not None:
            # the order's executions are known (read in this transaction): insert at flush, all together;
            # an id another order already holds would be a broker anomaly, ignored there as it is here
            # (on PostgreSQL a concurrent writer of the same order fails the order's version check first)
            self._new_fills[execution_id] = values
            self._fills_of.setdefault(client_order_id, set()).add(execution_id)
        elif self._dialect == "sqlite":
            # one statement: SQLite has one writer, so "exists" can only mean committed before us
            if self._conn.execute(_INSERT_FILL_IF_NEW, values).rowcount != 1:
                return False
        else:
            # PostgreSQL: a concurrent writer's uncommitted fill must still surface as a conflict
            if self._conn.execute(_FILL_EXISTS, {"execution_id": execution_id}).first():
                return False
            self._conn.execute(_INSERT_FILL, values)
        if known is not None:
            known.execution_ids = known.execution_ids | {execution_id}
            known.order = None
        return True

    def _flush_fills(self) -> None:
        rows = list(self._new_fills.values())
        self._new_fills, self._fills_of = {}, {}
        if self._dialect != "postgresql":
            self._conn.execute(_INSERT_FILL_IF_NEW, rows)
            return
        tuples = [
            (r["execution_id"], r["client_order_id"], str(r["qty"]), str(r["price"]), _utc(r["ts"]))
            for r in rows
        ]
        savepoint = self._conn.begin_nested()
        try:
            self._copy(_PG_COPY_FILLS, tuples)
        except UniqueViolation:
            savepoint.rollback()
        else:
            savepoint.commit()
            return
        columns = tuple(list(column) for column in zip(*tuples, strict=True))
        inserted = set(self._conn.exec_driver_sql(_PG_INSERT_FILLS, columns).scalars())
        skipped = [r for r in rows if r["execution_id"] not in inserted]
        if not skipped:
            return
        # stored already: by another order (a broker anomaly, ignored as on SQLite) or by a concurrent
        # writer of the same order, which is a conflict (its version check should have caught it first)
        ids = [r["execution_id"] for r in skipped]
        holders = {str(r[0]): str(r[1]) for r in self._conn.execute(_FILL_HOLDERS, {"ids": ids})}
        for row in skipped:
            if holders.get(row["execution_id"]) == row["client_order_id"]:
                coid, execution = row["client_order_id"], row["execution_id"]
                raise ConcurrencyConflict(f"execution {execution} of order {coid} recorded by another writer")

    def _copy(self, statement: str, rows: list[tuple[Any, ...]]) -> None:
        # COPY on the DBAPI (psycopg) connection of this transaction
        driver: Any = self._conn.connection.driver_connection
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)

    def journal(self, entry: JournalEntry) -> None:
        # serialized now, so a payload that cannot be stored fails here, at the call; inserted at commit
        row = {
            "ts": entry.ts,
            "kind": entry.kind,
            "client_order_id": entry.client_order_id,
            "payload": dumps(entry.payload),
        }
        self._journal.append(row)

    def raise_alert(self, alert: Alert) -> bool:
        """Open an alert unless the same (kind, key) is already open; return True if it was new."""
        if self._open_alert_id(alert.kind, alert.key) is not None:
            return False
        self._conn.execute(
            insert(t.alerts).values(
                kind=alert.kind, key=alert.key, message=alert.message, raised_at=alert.raised_at
            )
        )
        return True

    def resolve_alert(self, kind: str, key: str, at: datetime) -> bool:
        alert_id = self._open_alert_id(kind, key)
        if alert_id is None:
            return False
        self._conn.execute(update(t.alerts).where(t.alerts.c.id == alert_id).values(resolved_at=at))
        return True

    def open_alerts(self) -> list[Alert]:
        query = select(t.alerts).where(t.alerts.c.resolved_at.is_(None)).order_by(t.alerts.c.id)
        return [row_to_alert(r) for r in self._conn.execute(query).mappings()]

    def _open_alert_id(self, kind: str, key: str) -> int | None:
        query = select(t.alerts.c.id).where(
            t.alerts.c.kind == kind, t.alerts.c.key == key, t.alerts.c.resolved_at.is_(None)
        )
        found = self._conn.execute(query).scalar()
        return None if found is None else int(found)

    def get_cursor(self, name: str) -> str | None:
        value = self._conn.execute(select(t.cursors.c.value).where(t.cursors.c.name == name)).scalar()
        return None if value is None else str(value)

    def set_cursor(self, name: str, value: str) -> None:
        updated = self._conn.execute(update(t.cursors).where(t.cursors.c.name == name).values(value=value))
        if updated.rowcount == 0:
            self._conn.execute(insert(t.cursors).values(name=name, value=value))


class SqlAlchemyStore:
    """The Store port on a SQLAlchemy engine (SQLite file or PostgreSQL URL)."""

    def __init__(self, engine: Engine, *, keep_orders: bool = False) -> None:
        self._engine = engine
        self._fence: Callable[[Connection], None] | None = None
        # ``keep_orders``: open orders as last committed through this store, which transactions then read
        # from here instead of the database. For the single writer only (the engine's store): every save
        # still checks the version in its UPDATE, so a write by anyone else surfaces as
        # ConcurrencyConflict (which empties this); but a mere reader would not see others' writes.
        self._kept: dict[str, _Known] | None = {} if keep_orders else None

    @property
    def url(self) -> str:
        """Return the database URL with any password hidden."""
        return self._engine.url.render_as_string(hide_password=True)

    @contextmanager
    def transaction(self) -> Iterator[SqlAlchemyTransaction]:
        """Open a transaction: committed when the block ends normally, rolled back on any exception.

        Raises:
            ConcurrencyConflict: when a unique key shows another writer got there first.
        """
        try:
            with self._engine.begin() as conn:
                tx = SqlAlchemyTransaction(conn, self._kept)
                yield tx
                tx.flush()
                if self._fence is not None:
                    self._fence(conn)  # a stale lease holder's writes never commit (store/lease.py)
        except IntegrityError as e:
            self.forget_orders()
            raise ConcurrencyConflict(f"conflicting write: {e.orig}") from e
        except ConcurrencyConflict:
            self.forget_orders()  # another writer: what this store kept may be stale
            raise
        if self._kept is not None:
            tx.keep(self._kept)

    def forget_orders(self) -> None:
        """Drop the orders kept in memory: the next reads go to the database."""
        if self._kept is not None:
            self._kept.clear()

    def read_journal(self, after_seq: int = 0, limit: int = 10_000) -> list[JournalEntry]:
        """Return journal entries in order, after ``after_seq``."""
        query = select(t.journal).where(t.journal.c.seq > after_seq).order_by(t.journal.c.seq).limit(limit)
        with self._engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            JournalEntry(r["ts"], r["kind"], r["client_order_id"], json.loads(r["payload"]), r["seq"])
            for r in rows
        ]

    def lease(
        self,
        name: str,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        renew_every_s: float = DEFAULT_RENEW_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> PostgresLease | FileLease:
        """Return the lease that makes one instance active for ``name`` on this database.

        On PostgreSQL this store's transactions are fenced on it from now on: once another instance has
        taken the lease over, every transaction of this store is rolled back with ``LeaseLost``."""
        if self._engine.dialect.name == "postgresql":
            lease = PostgresLease(
                self._engine, name, ttl_s=ttl_s, renew_every_s=renew_every_s, monotonic=monotonic
            )
            self._fence = lease.fence
            return lease
        database = self._engine.url.database
        path = Path(database + ".lease") if database and database != ":memory:" else Path("ordersync.lease")
        return FileLease(path)

    def close(self) -> None:
        self._engine.dispose()


def _utc(value: datetime) -> datetime | None:
    # what the UtcDateTime column binds (a naive datetime is refused there, and so here)
    return _UTC_TIME.process_bind_param(value, _NO_DIALECT)


_NO_DIALECT: Any = None


def _changed(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    # the columns whose stored value differs, plus the version; Decimals compare by digits and exponent
    # (the text column keeps "12.50" and "12.5" apart), datetimes by instant (stored as UTC)
    changed = ["version"]
    for key, value in after.items():
        old: Any = before.get(key)
        if value is old or (
            type(value) is type(old)
            and value == old
            and (type(value) is not Decimal or value.as_tuple() == old.as_tuple())
        ):
            continue
        changed.append(key)
    return changed


def _as_stored(order: Order, version: int, execution_ids: frozenset[ExecutionId]) -> Order:
    # what a fresh read returns: datetimes in UTC (Decimals, enums and ids round-trip unchanged)
    times = {name: getattr(order, name) for name in _TIMES}
    utc = {k: v.astimezone(UTC) for k, v in times.items() if v is not None and v.tzinfo is not UTC}
    if not utc and version == order.version and execution_ids is order.execution_ids:
        return order
    return replace(order, version=version, execution_ids=execution_ids, **utc)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    # WAL lets readers (ordersync status) run beside the writer; FULL fsyncs each commit, so a
    # committed journal entry survives power loss, not only a process crash.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


_POSTGRES_CONNECT_ARGS: dict[str, object] = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 2,
    "tcp_user_timeout": 5000,
}


def _postgres_session(dbapi_connection: Any, _record: Any) -> None:
    # a statement waits at most 2 s for a row lock, and a transaction left idle for 5 s is ended by the
    # server: a frozen lease holder (SIGSTOP, a GC pause) stopped inside a write keeps its row locks, and
    # the standby that took over would otherwise block on them, its loop stalled past its own lease
    # (docs/operations.md, "High availability"). Set per connection, so a URL's own ``options`` stay intact
    cursor = dbapi_connection.cursor()
    cursor.execute("SET lock_timeout = 2000")
    cursor.execute("SET idle_in_transaction_session_timeout = 5000")
    cursor.close()
    dbapi_connection.commit()


def open_store(url: str, *, migrate: bool = True, keep_orders: bool = False) -> SqlAlchemyStore:
    """Open (and by default migrate to the latest schema) the store at ``url``.

    ``url`` is a SQLAlchemy URL (``sqlite:///path.db``, ``postgresql+psycopg://...``). ``keep_orders``:
    keep open orders in memory between transactions, for the engine's own store only (see
    ``SqlAlchemyStore``): a store that only reads would keep showing what it read first.
    """
    postgres = url.startswith("postgresql")
    # a database behind a dead network must fail a query within seconds, not after the kernel's TCP
    # timeouts (minutes): the lease's deadline and the engine's loops depend on it (docs/operations.md)
    connect_args = _POSTGRES_CONNECT_ARGS if postgres else {}
    engine = create_engine(url, future=True, pool_pre_ping=postgres, connect_args=connect_args)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    elif postgres:
        event.listen(engine, "connect", _postgres_session)
    if migrate:
        upgrade(engine)
    return SqlAlchemyStore(engine, keep_orders=keep_orders)
