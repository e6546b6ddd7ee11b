"""A transaction's buffered order updates, sent at commit as one statement per set of changed columns.

Each row still carries its own version check (``WHERE client_order_id = ... AND version = ...``), so a
write by another writer since the read makes the statement's row count fall short and the caller raises
ConcurrencyConflict, exactly as the one-UPDATE-per-order path did. On PostgreSQL the rows travel as
arrays through ``unnest`` (one statement and one round trip instead of one per order, most of the
writer's time on a network database); on SQLite they go through the DBAPI's executemany with the SQL
and bind conversions SQLAlchemy would use, without its per-row parameter machinery.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from ordersync.store import tables as t
from ordersync.store.statements import bind_processor

WHERE_COLUMNS = ("where_coid", "where_version")


@dataclass(frozen=True)
class _Statement:
    sql: str
    columns: tuple[str, ...]  # SET columns, in the order of the parameters
    convert: tuple[Callable[[Any], Any] | None, ...]  # SQLAlchemy's bind conversion per SET column


_STATEMENTS: dict[tuple[str, tuple[str, ...]], _Statement] = {}


def update_orders(conn: Connection, columns: Collection[str], rows: Sequence[dict[str, Any]]) -> int:
    """Update each order of ``rows`` (SET ``columns``, where ``where_coid`` and ``where_version``);
    return how many rows matched (fewer than ``len(rows)``: a version check failed)."""
    statement = _statement(conn, tuple(sorted(columns)))
    values = [
        [row[name] if convert is None else convert(row[name]) for row in rows]
        for name, convert in zip(statement.columns, statement.convert, strict=True)
    ]
    coids = [row["where_coid"] for row in rows]
    versions = [row["where_version"] for row in rows]
    driver: Any = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        with driver.cursor() as cursor:
            cursor.execute(statement.sql, (*values, coids, versions))
            return int(cursor.rowcount)
    cursor = driver.cursor()
    try:
        cursor.executemany(statement.sql, zip(*values, coids, versions, strict=True))
        return int(cursor.rowcount)
    finally:
        cursor.close()


def _statement(conn: Connection, columns: tuple[str, ...]) -> _Statement:
    dialect = conn.dialect
    key = (dialect.name, columns)
    found = _STATEMENTS.get(key)
    if found is not None:
        return found
    types = [t.orders.c[name].type for name in columns]
    convert = tuple(bind_processor(kind, dialect) for kind in types)
    if dialect.name == "postgresql":
        arrays = [f"%s::{kind.compile(dialect=dialect)}[]" for kind in types]
        names = ", ".join((*columns, *WHERE_COLUMNS))
        sets = ", ".join(f"{name} = v.{name}" for name in columns)
        sql = (
            f"UPDATE orders SET {sets} FROM unnest({', '.join(arrays)}, %s::varchar[], %s::integer[])"
            f" AS v({names}) WHERE orders.client_order_id = v.where_coid AND orders.version = v.where_version"
        )
    else:
        sets = ", ".join(f"{name} = ?" for name in columns)
        sql = f"UPDATE orders SET {sets} WHERE client_order_id = ? AND version = ?"
    return _STATEMENTS.setdefault(key, _Statement(sql, columns, convert))
