"""The Transaction port over one open SQLAlchemy connection (see ``SqlAlchemyStore.transaction``).

The hot path (one stream event: read the order, save it, record the fill, journal it) is kept cheap:
the writer reads a whole batch's orders in one query (``orders_by_id``, with their execution ids; ids
found absent are remembered too), and a transaction remembers the orders it has read, so a burst of
events costs no read per event; the engine's store (``keep_orders``) also keeps open orders in memory
between transactions. Saving an order read in this transaction is buffered and sent at commit as one
UPDATE per order of the columns that changed, with the version check of the first read (a conflict
then surfaces at commit, still as ConcurrencyConflict, and any multi-row read flushes first). The fills
of such orders and the journal rows are written together, in order, at commit (``bulk``); the fills'
unique key stays the final guard against a duplicate. On SQLite the single-order read skips
SQLAlchemy's execution layer (``statements.sqlite_read``). bench/bench_throughput.py measures the effect.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any

from sqlalchemy import Connection, select

from ordersync.domain.errors import ConcurrencyConflict
from ordersync.domain.ids import BrokerOrderId, ClientOrderId, ExecutionId
from ordersync.domain.order import Order
from ordersync.ports import JournalEntry
from ordersync.store import tables as t
from ordersync.store.bulk import write_fills, write_journal
from ordersync.store.known import Known, Pending, changed_row
from ordersync.store.mapping import order_to_row, row_to_order
from ordersync.store.reads import Decoded, read_orders
from ordersync.store.records import Records
from ordersync.store.statements import (
    EXECUTION_LISTS,
    EXECUTIONS_IN,
    EXECUTIONS_OF,
    FILL_EXISTS,
    INSERT_FILL,
    INSERT_FILL_IF_NEW,
    INSERT_ORDER,
    ORDERED,
    QUERIES,
    UPDATE_ORDER,
    VERSIONS_IN,
    WHERE,
    dumps,
    order_query,
    sqlite_read,
)
from ordersync.store.updates import update_orders


class SqlAlchemyTransaction(Records):
    """The Transaction port over one open SQLAlchemy connection (see ``SqlAlchemyStore.transaction``)."""

    def __init__(
        self, conn: Connection, kept: dict[str, Known] | None = None, decoded: Decoded | None = None
    ) -> None:
        self._conn = conn
        self._dialect = conn.dialect.name
        # the store's open orders as committed (see ``SqlAlchemyStore``): read from here, not the database
        self._kept = kept
        self._unkept: set[str] = set()  # orders written around this transaction's view (not to keep)
        # orders as this transaction last read or wrote them (exactly what a fresh read would return)
        self._orders: dict[str, Known] = {}
        self._by_broker_id: dict[str, str] = {}
        self._pending: dict[str, Pending] = {}
        self._new_fills: dict[str, dict[str, Any]] = {}  # execution_id -> fills row, inserted at flush
        self._fills_of: dict[str, set[ExecutionId]] = {}  # client_order_id -> its buffered executions
        self._journal: list[dict[str, Any]] = []
        # client ids a batch read (``orders_by_id``) found absent: asking again costs no query
        self._absent: set[str] = set()
        # SQLite: many-row reads decode only rows that changed since the store last decoded them
        self._decoded = decoded if self._dialect == "sqlite" else None

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
            write_journal(self._conn, rows)

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
        self._wrote("order", order.client_order_id)
        self._conn.execute(INSERT_ORDER, order_to_row(order))

    def save_order(self, order: Order) -> None:
        """Write ``order`` if nobody changed it since it was read (its ``version``).

        Raises:
            ConcurrencyConflict: when another writer saved the same order first.
        """
        coid, version = order.client_order_id, order.version
        self._wrote("order", coid)
        known = self._orders.get(coid)
        if known is None or known.version != version:
            if coid in self._pending:  # our own buffered write is newer than the caller's copy
                raise ConcurrencyConflict(f"order {coid} changed since version {version}")
            self._orders.pop(coid, None)
            self._unkept.add(coid)
            row = order_to_row(order)
            row.update(version=version + 1, where_coid=coid, where_version=version)
            if self._conn.execute(UPDATE_ORDER, row).rowcount != 1:
                raise ConcurrencyConflict(f"order {coid} changed since version {version}")
            return
        # read (or saved) in this transaction: buffer the change, one UPDATE per order at flush, of the
        # columns that changed; the version check there still guards the whole row
        row, changed = changed_row(known, order)
        row["version"] = version + 1
        pending = self._pending.get(coid)
        if pending is None:
            pending = self._pending[coid] = Pending(version, set(changed))
        else:
            pending.columns.update(changed)
        known.base, known.version, known.row, known.order = order, version + 1, row, None
        if order.broker_order_id is not None:
            self._by_broker_id[order.broker_order_id] = coid

    def _from_kept(self, coid: str) -> Known | None:
        kept = self._kept.get(coid) if self._kept is not None else None
        if kept is None or coid in self._unkept:
            return None
        known = self._orders[coid] = Known(kept.base, kept.version, kept.execution_ids, kept.row, kept.order)
        if kept.base.broker_order_id is not None:
            self._by_broker_id[kept.base.broker_order_id] = coid
        return known

    def keep(self, kept: dict[str, Known]) -> None:
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
        return self._many(lambda: t.orders.c.parent_id == parent_id, "children", parent_id)

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
        query = QUERIES.get((self._dialect, "in_ids"))
        if query is None:
            query = QUERIES.setdefault((self._dialect, "in_ids"), order_query(self._dialect, WHERE["in_ids"]))
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
        # SQLite: one read with the ids as one JSON parameter; otherwise one per 500 parents
        size = max(1, len(wanted)) if self._decoded is not None else 500
        for start in range(0, len(wanted), size):
            chunk = wanted[start : start + size]
            where = t.orders.c.parent_id.in_
            for child in self._many(partial(where, chunk), "children_in", json.dumps(chunk)):
                assert child.parent_id is not None
                grouped[child.parent_id].append(child)
        return grouped

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        if symbol is None:
            return self._many(lambda: t.orders.c.is_open.is_(True), "open")
        return self._many(
            lambda: t.orders.c.is_open.is_(True) & (t.orders.c.symbol == symbol), "open_symbol", symbol
        )

    def all_orders(self) -> list[Order]:
        return self._many(lambda: None, "all")

    def _one(self, where: str, key: str) -> Order | None:
        query = QUERIES.get((self._dialect, where))
        if query is None:
            query = QUERIES.setdefault((self._dialect, where), order_query(self._dialect, WHERE[where]))
        if self._dialect == "sqlite":
            row = sqlite_read(self._conn, where, key)
        else:
            mapping = self._conn.execute(query, {"key": key}).mappings().first()
            row = None if mapping is None else dict(mapping)
        if row is None:
            return None
        return self._from_row(row)

    def _from_row(self, row: dict[str, Any]) -> Order:
        # a row of ``order_query`` (the order and, where the dialect can, its execution ids as JSON)
        listed = row.pop("execution_ids", None)
        if listed is None and self._dialect not in EXECUTION_LISTS:
            ids = list(self._conn.execute(EXECUTIONS_OF, {"coid": row["client_order_id"]}).scalars())
        else:
            ids = json.loads(listed) if isinstance(listed, str) else (listed or [])
        executions = frozenset(ExecutionId(i) for i in ids if i is not None)
        buffered = self._fills_of.get(row["client_order_id"])
        order = row_to_order(row, executions | buffered if buffered else executions)
        return self._remember(order, row)

    def _many(self, where: Callable[[], Any], name: str, *params: Any) -> list[Order]:
        # ``where()`` for SQLAlchemy (built only there); ``name``, ``params``: the same read on SQLite
        self._flush_orders()
        if self._decoded is not None:
            read, unchanged = read_orders(self._conn, name, params, self._decoded)
            if unchanged and not self._fills_of:
                # the kept list (nothing written since, or patched with this store's writes; exact either
                # way): not remembered for this transaction's saves, which take the UPDATE-now path
                return [order for order, _ in read]
            found = []
            for order, row in read:
                buffered = self._fills_of.get(order.client_order_id)
                if buffered:
                    order = replace(order, execution_ids=order.execution_ids | buffered)
                found.append(self._remember(order, row))
            return found
        clause = where()
        query = select(t.orders) if clause is None else select(t.orders).where(clause)
        rows_list = [dict(r) for r in self._conn.execute(query.order_by(*ORDERED)).mappings()]
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
            for coid, exec_id in self._conn.execute(EXECUTIONS_IN, {"coids": chunk}):
                found.setdefault(coid, set()).add(ExecutionId(exec_id))
        return {k: frozenset(v) for k, v in found.items()}

    def _remember(self, order: Order, row: dict[str, Any]) -> Order:
        coid = order.client_order_id
        if coid in self._pending:  # a read never overwrites what this transaction has not written yet
            return self._orders[coid].get()
        self._orders[coid] = Known(order, order.version, order.execution_ids, row, order)
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
        for columns, batch in groups.items():
            if update_orders(self._conn, columns, batch) != len(batch):
                self._conflict(batch)

    def _conflict(self, batch: list[dict[str, Any]]) -> None:
        # the batch's total rowcount fell short: name an order whose version check failed
        coids = [p["where_coid"] for p in batch]
        versions: dict[str, int] = {}
        for coid, version in self._conn.execute(VERSIONS_IN, {"coids": coids}):
            versions[coid] = version
        for params in batch:
            if versions.get(params["where_coid"]) != params["version"]:
                coid, version = params["where_coid"], params["where_version"]
                raise ConcurrencyConflict(f"order {coid} changed since version {version}")
        raise ConcurrencyConflict(f"one of {len(batch)} orders changed since it was read")

    # -- fills, journal ---------------------------------------------------------------

    def record_fill(
        self,
        execution_id: ExecutionId,
        client_order_id: ClientOrderId,
        qty: Decimal,
        price: Decimal,
        ts: datetime,
    ) -> bool:
        """Record one execution; return False if that execution_id is already recorded."""
        self._wrote("order", client_order_id)  # its execution ids are part of its reads
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
            if self._conn.execute(INSERT_FILL_IF_NEW, values).rowcount != 1:
                return False
        else:
            # PostgreSQL: a concurrent writer's uncommitted fill must still surface as a conflict
            if self._conn.execute(FILL_EXISTS, {"execution_id": execution_id}).first():
                return False
            self._conn.execute(INSERT_FILL, values)
        if known is not None:
            known.execution_ids = known.execution_ids | {execution_id}
            known.order = None
        return True

    def _flush_fills(self) -> None:
        rows = list(self._new_fills.values())
        self._new_fills, self._fills_of = {}, {}
        write_fills(self._conn, rows)

    def journal(self, entry: JournalEntry) -> None:
        # serialized now, so a payload that cannot be stored fails here, at the call; inserted at commit
        row = {
            "ts": entry.ts,
            "kind": entry.kind,
            "client_order_id": entry.client_order_id,
            "payload": dumps(entry.payload),
        }
        self._journal.append(row)
