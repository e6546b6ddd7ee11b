"""The Store port on SQLAlchemy Core: one connection-scoped transaction per unit of work.

Core rather than the ORM: the engine applies thousands of events per second through a single writer,
and a row-per-statement API with no identity map is both faster and closer to what is journaled.
Optimistic versioning (``version`` column) turns a second concurrent writer into ConcurrencyConflict
instead of a silent lost update.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, insert, select, update
from sqlalchemy.exc import IntegrityError

from ordersync.domain.errors import ConcurrencyConflict
from ordersync.domain.ids import BrokerOrderId, ClientOrderId, ExecutionId
from ordersync.domain.order import Order
from ordersync.ports import Alert, JournalEntry, PlanState
from ordersync.store import tables as t
from ordersync.store.mapping import order_to_row, plan_to_row, row_to_alert, row_to_order, row_to_plan
from ordersync.store.migrate import upgrade


def _json_default(value: object) -> str:
    if isinstance(value, Decimal | datetime):
        return value.isoformat() if isinstance(value, datetime) else str(value)
    return str(value)


def dumps(payload: dict[str, Any]) -> str:
    """Return ``payload`` as compact JSON, with Decimals and datetimes as exact strings."""
    return json.dumps(payload, default=_json_default, separators=(",", ":"), sort_keys=True)


class SqlAlchemyTransaction:
    """The Transaction port over one open SQLAlchemy connection (see ``SqlAlchemyStore.transaction``)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    # -- orders --------------------------------------------------------------------------------------

    def get_order(self, client_order_id: ClientOrderId) -> Order | None:
        return self._one(t.orders.c.client_order_id == client_order_id)

    def find_by_broker_id(self, broker_order_id: BrokerOrderId) -> Order | None:
        return self._one(t.orders.c.broker_order_id == broker_order_id)

    def add_order(self, order: Order) -> None:
        self._conn.execute(insert(t.orders).values(order_to_row(order)))

    def save_order(self, order: Order) -> None:
        """Write ``order`` if nobody changed it since it was read (its ``version``).

        Raises:
            ConcurrencyConflict: when another writer saved the same order first.
        """
        row = order_to_row(replace(order, version=order.version + 1))
        result = self._conn.execute(
            update(t.orders)
            .where(t.orders.c.client_order_id == order.client_order_id, t.orders.c.version == order.version)
            .values(row)
        )
        if result.rowcount != 1:
            raise ConcurrencyConflict(f"order {order.client_order_id} changed since version {order.version}")

    def children_of(self, parent_id: ClientOrderId) -> list[Order]:
        return self._many(t.orders.c.parent_id == parent_id)

    def open_orders(self) -> list[Order]:
        return self._many(t.orders.c.is_open.is_(True))

    def all_orders(self) -> list[Order]:
        return self._many(None)

    def _one(self, where: Any) -> Order | None:
        found = self._many(where)
        return found[0] if found else None

    def _many(self, where: Any) -> list[Order]:
        query = select(t.orders) if where is None else select(t.orders).where(where)
        rows = self._conn.execute(
            query.order_by(t.orders.c.created_at, t.orders.c.client_order_id)
        ).mappings()
        rows_list = list(rows)
        executions = self._executions([r["client_order_id"] for r in rows_list])
        return [row_to_order(r, executions.get(r["client_order_id"], frozenset())) for r in rows_list]

    def _executions(self, ids: list[str]) -> dict[str, frozenset[ExecutionId]]:
        if not ids:
            return {}
        found: dict[str, set[ExecutionId]] = {}
        for chunk_start in range(0, len(ids), 500):
            chunk = ids[chunk_start : chunk_start + 500]
            query = select(t.fills.c.client_order_id, t.fills.c.execution_id).where(
                t.fills.c.client_order_id.in_(chunk)
            )
            for coid, exec_id in self._conn.execute(query):
                found.setdefault(coid, set()).add(ExecutionId(exec_id))
        return {k: frozenset(v) for k, v in found.items()}

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
        exists = self._conn.execute(
            select(t.fills.c.execution_id).where(t.fills.c.execution_id == execution_id)
        ).first()
        if exists:
            return False
        values = {
            "execution_id": execution_id,
            "client_order_id": client_order_id,
            "qty": qty,
            "price": price,
        }
        self._conn.execute(insert(t.fills).values(ts=ts, **values))
        return True

    def journal(self, entry: JournalEntry) -> None:
        self._conn.execute(
            insert(t.journal).values(
                ts=entry.ts,
                kind=entry.kind,
                client_order_id=entry.client_order_id,
                payload=dumps(entry.payload),
            )
        )

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

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

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
                yield SqlAlchemyTransaction(conn)
        except IntegrityError as e:
            raise ConcurrencyConflict(f"conflicting write: {e.orig}") from e

    def read_journal(self, after_seq: int = 0, limit: int = 10_000) -> list[JournalEntry]:
        """Return journal entries in order, after ``after_seq``."""
        query = select(t.journal).where(t.journal.c.seq > after_seq).order_by(t.journal.c.seq).limit(limit)
        with self._engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            JournalEntry(r["ts"], r["kind"], r["client_order_id"], json.loads(r["payload"]), r["seq"])
            for r in rows
        ]

    def close(self) -> None:
        self._engine.dispose()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    # WAL lets readers (ordersync status) run beside the writer; FULL fsyncs each commit, so a
    # committed journal entry survives power loss, not only a process crash.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def open_store(url: str, *, migrate: bool = True) -> SqlAlchemyStore:
    """Open (and by default migrate to the latest schema) the store at ``url``.

    ``url`` is a SQLAlchemy URL (``sqlite:///path.db``, ``postgresql+psycopg://...``).
    """
    engine = create_engine(url, future=True, pool_pre_ping=not url.startswith("sqlite"))
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    if migrate:
        upgrade(engine)
    return SqlAlchemyStore(engine)
