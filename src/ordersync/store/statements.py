"""The store's SQL, built once at import: constructing a Core statement costs about twice what executing
it costs on SQLite, and the writer runs these thousands of times per second.

Also the single-order read on SQLite that bypasses SQLAlchemy's execution layer (``sqlite_read``), and the
journal payload encoder.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ordersync.store import tables as t


def _json_default(value: object) -> str:
    if isinstance(value, Decimal | datetime):
        return value.isoformat() if isinstance(value, datetime) else str(value)
    return str(value)


# one encoder (json.dumps with arguments builds a new one per call: a tenth of the cost of a journal row)
_ENCODER = json.JSONEncoder(default=_json_default, separators=(",", ":"), sort_keys=True)


def dumps(payload: dict[str, Any]) -> str:
    """Return ``payload`` as compact JSON, with Decimals and datetimes as exact strings.

    A flat payload of plain values (str, int, bool, None, Decimal, datetime: a stream event's journal
    entry) goes through orjson when it is installed, several times faster than the json encoder, and only
    when the bytes are those the json encoder writes: every key a str, the output ASCII (json escapes
    the rest, and DEL), no integer beyond 64 bits (orjson refuses it). Anything else takes the json encoder.
    Decimals and datetimes are turned into their strings here, as ``_json_default`` does: orjson's
    ``default`` hook costs about a microsecond per value, more than the rest of the encoding.
    """
    if _orjson is not None and _KEYS.issuperset(map(type, payload)):
        plain: dict[str, Any] = {}
        for key, value in payload.items():
            kind = type(value)
            if kind is Decimal:
                value = str(value)
            elif kind is datetime:
                value = value.isoformat()
            elif kind not in _SCALARS:
                break
            plain[key] = value
        else:
            try:
                encoded: bytes = _orjson.dumps(plain, option=_ORJSON_OPTIONS)
            except TypeError:  # orjson.JSONEncodeError is a TypeError: an integer beyond 64 bits
                pass
            else:
                if encoded.isascii() and b"\x7f" not in encoded:  # json escapes DEL too
                    return encoded.decode()
    return _ENCODER.encode(payload)


_SCALARS = frozenset({str, int, bool, type(None)})
_KEYS = frozenset({str})
_orjson: Any
try:
    _orjson = importlib.import_module("orjson")
    _ORJSON_OPTIONS = _orjson.OPT_SORT_KEYS
except ImportError:  # pragma: no cover - orjson is a dependency; json alone stays correct
    _orjson, _ORJSON_OPTIONS = None, 0


def bind_processor(kind: Any, dialect: Any) -> Callable[[Any], Any] | None:
    """Return the conversion SQLAlchemy applies to a ``kind`` parameter, or one that returns the same.

    On SQLite a UTC datetime is bound as the text SQLAlchemy's DATETIME writes
    ("YYYY-MM-DD HH:MM:SS.ffffff", in UTC): through ``isoformat`` here, at half the cost of its
    ``%``-format of nine fields (a stream event binds three of them: journal, fill, order).
    """
    if dialect.name == "sqlite" and isinstance(kind, t.UtcDateTime):
        return _sqlite_utc_text
    if (
        isinstance(kind, t.DecimalText)
        and kind.impl_instance.dialect_impl(dialect).bind_processor(dialect) is None
    ):
        return _decimal_text  # what its process_bind_param does, without the TypeDecorator's wrapper
    processor: Callable[[Any], Any] | None = kind.dialect_impl(dialect).bind_processor(dialect)
    return processor


def _decimal_text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _sqlite_utc_text(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is not UTC:
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} refused: ordersync stores UTC only")
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:26]  # without the "+00:00"


ORDERED = (t.orders.c.created_at, t.orders.c.client_order_id)
EXECUTIONS_OF = select(t.fills.c.execution_id).where(t.fills.c.client_order_id == bindparam("coid"))
EXECUTIONS_IN = select(t.fills.c.client_order_id, t.fills.c.execution_id).where(
    t.fills.c.client_order_id.in_(bindparam("coids", expanding=True))
)
FILL_EXISTS = select(t.fills.c.execution_id).where(t.fills.c.execution_id == bindparam("execution_id"))
INSERT_ORDER = insert(t.orders)
VERSIONS_IN = select(t.orders.c.client_order_id, t.orders.c.version).where(
    t.orders.c.client_order_id.in_(bindparam("coids", expanding=True))
)
INSERT_FILL = insert(t.fills)
INSERT_FILL_IF_NEW = sqlite_insert(t.fills).on_conflict_do_nothing(index_elements=["execution_id"])
# the SET clause is whatever columns the parameters name; the WHERE binds must not share their names
UPDATE_ORDER = update(t.orders).where(
    t.orders.c.client_order_id == bindparam("where_coid"), t.orders.c.version == bindparam("where_version")
)
EXECUTION_LISTS = {  # an order's execution ids as one JSON array, read with the order itself
    "sqlite": func.json_group_array(t.fills.c.execution_id),
    "postgresql": func.json_agg(t.fills.c.execution_id),
}


def order_query(dialect: str, where: Any) -> Any:
    aggregate = EXECUTION_LISTS.get(dialect)
    if aggregate is None:
        return select(t.orders).where(where)
    executions = (
        select(aggregate).where(t.fills.c.client_order_id == t.orders.c.client_order_id).scalar_subquery()
    )
    return select(t.orders, executions.label("execution_ids")).where(where)


# (dialect, key) -> statement; built on first use per dialect
QUERIES: dict[tuple[str, str], Any] = {}


@dataclass(frozen=True)
class _RawRead:
    """One compiled single-order read for SQLite, with SQLAlchemy's own result processors per column."""

    sql: str
    columns: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]


_RAW_READS: dict[str, _RawRead] = {}


def sqlite_read(conn: Connection, where: str, key: str) -> dict[str, Any] | None:
    # The single-order read is the hot path's one unavoidable query (a burst of events reads each order
    # once per transaction), and SQLAlchemy's execution machinery costs as much as SQLite itself there.
    # So on SQLite it runs on the same DBAPI connection (same transaction) with the SQL that SQLAlchemy
    # compiled and the result processors SQLAlchemy would apply: the same row, at about half the cost.
    raw = _RAW_READS.get(where)
    if raw is None:
        query = order_query("sqlite", WHERE[where])
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


WHERE = {
    "by_id": t.orders.c.client_order_id == bindparam("key"),
    "by_broker_id": t.orders.c.broker_order_id == bindparam("key"),
    "in_ids": t.orders.c.client_order_id.in_(bindparam("keys", expanding=True)),
}
