"""A transaction's buffered fills and journal rows, written at commit in one round trip each.

Nothing reads the journal inside a transaction, and the writer already knows the executions of the orders
it applies, so both can wait for the commit: executemany on SQLite, COPY on PostgreSQL. The fills' unique
key stays the final guard against a duplicate execution.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Insert, bindparam, insert, select

from ordersync.domain.errors import ConcurrencyConflict
from ordersync.store import tables as t
from ordersync.store.statements import INSERT_FILL_IF_NEW, bind_processor

try:  # PostgreSQL's driver is optional (the ``postgres`` extra)
    from psycopg.errors import UniqueViolation
except ImportError:  # pragma: no cover - SQLite-only installs never take the PostgreSQL paths

    class UniqueViolation(Exception):  # type: ignore[no-redef]
        """Stands in for psycopg's exception where psycopg is not installed."""


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
_NO_DIALECT: Any = None


def write_journal(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert journal rows in order (their ``seq`` follows the list)."""
    if conn.dialect.name == "postgresql":
        tuples = [(_utc(r["ts"]), r["kind"], r["client_order_id"], r["payload"]) for r in rows]
        _copy(conn, _PG_COPY_JOURNAL, tuples)
    else:
        _executemany(conn, _INSERT_JOURNAL, rows)


def write_fills(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert fills rows; one already stored for another order is skipped (a broker anomaly).

    Raises:
        ConcurrencyConflict: when another writer recorded an execution of the same order.
    """
    if conn.dialect.name != "postgresql":
        _executemany(conn, INSERT_FILL_IF_NEW, rows)
        return
    tuples = [
        (r["execution_id"], r["client_order_id"], str(r["qty"]), str(r["price"]), _utc(r["ts"])) for r in rows
    ]
    savepoint = conn.begin_nested()
    try:
        _copy(conn, _PG_COPY_FILLS, tuples)
    except UniqueViolation:
        savepoint.rollback()
    else:
        savepoint.commit()
        return
    columns = tuple(list(column) for column in zip(*tuples, strict=True))
    inserted = set(conn.exec_driver_sql(_PG_INSERT_FILLS, columns).scalars())
    skipped = [r for r in rows if r["execution_id"] not in inserted]
    if not skipped:
        return
    # stored already: by another order (a broker anomaly, ignored as on SQLite) or by a concurrent
    # writer of the same order, which is a conflict (its version check should have caught it first)
    ids = [r["execution_id"] for r in skipped]
    holders = {str(r[0]): str(r[1]) for r in conn.execute(_FILL_HOLDERS, {"ids": ids})}
    for row in skipped:
        if holders.get(row["execution_id"]) == row["client_order_id"]:
            coid, execution = row["client_order_id"], row["execution_id"]
            raise ConcurrencyConflict(f"execution {execution} of order {coid} recorded by another writer")


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # the parameters, in order
    convert: tuple[Callable[[Any], Any] | None, ...]  # SQLAlchemy's bind conversion per parameter


_COMPILED: dict[int, _Compiled] = {}


def _executemany(conn: Connection, statement: Insert, rows: list[dict[str, Any]]) -> None:
    # SQLite: the statement SQLAlchemy compiles and the bind conversions it applies, run through the
    # DBAPI's executemany on the same connection (same transaction); SQLAlchemy's own per-row parameter
    # processing costs more than SQLite's insert of a journal row
    compiled = _COMPILED.get(id(statement))
    if compiled is None:
        dialect = conn.dialect
        done = statement.compile(dialect=dialect, column_keys=sorted(rows[0]))
        names = tuple(done.positiontup or ())
        kinds = [statement.table.c[name].type for name in names]
        convert = tuple(bind_processor(k, dialect) for k in kinds)
        compiled = _COMPILED.setdefault(id(statement), _Compiled(str(done), names, convert))
    # column by column (one comprehension per column), then zipped into rows
    columns = [
        [row[name] for row in rows] if convert is None else [convert(row[name]) for row in rows]
        for name, convert in zip(compiled.names, compiled.convert, strict=True)
    ]
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(compiled.sql, zip(*columns, strict=True))
    finally:
        cursor.close()


def _copy(conn: Connection, statement: str, rows: list[tuple[Any, ...]]) -> None:
    # COPY on the DBAPI (psycopg) connection of this transaction
    driver: Any = conn.connection.driver_connection
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def _utc(value: datetime) -> datetime | None:
    # what the UtcDateTime column binds (a naive datetime is refused there, and so here)
    return _UTC_TIME.process_bind_param(value, _NO_DIALECT)
