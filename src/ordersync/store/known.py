"""What a transaction knows of an order it read or wrote, and what it has yet to write.

A transaction answers repeated reads of an order from here and coalesces its saves into one UPDATE per
order at commit (the version check of the first read still guards the whole row).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC
from decimal import Decimal
from itertools import compress
from operator import attrgetter, is_not
from typing import Any

from ordersync.domain.ids import ExecutionId
from ordersync.domain.order import Order


@dataclass(slots=True)
class Known:
    """An order as this transaction sees it (its own writes included), built into an ``Order`` lazily."""

    base: Order  # right in every field but possibly version, execution_ids and the datetimes' zone
    version: int
    execution_ids: frozenset[ExecutionId]
    row: dict[str, Any]  # the row the database holds (or will, once pending writes are flushed)
    order: Order | None = None

    def get(self) -> Order:
        if self.order is None:
            self.order = as_stored(self.base, self.version, self.execution_ids)
        return self.order


@dataclass(slots=True)
class Pending:
    """A coalesced UPDATE not yet sent: the version the database has, and the columns to set."""

    version: int
    columns: set[str]


# Order fields -> their column in ``mapping.order_to_row`` (the same name), and how the value is stored
_ENUMS = frozenset({"role", "side", "type", "time_in_force", "status"})
_COLUMN_FIELDS = tuple(f.name for f in fields(Order) if f.name not in ("execution_ids", "version"))
_fields_of = attrgetter(*_COLUMN_FIELDS)


def changed_row(known: Known, order: Order) -> tuple[dict[str, Any], list[str]]:
    """Return ``known``'s row updated to ``order`` (version aside), and its changed columns with the version.

    What comparing the whole ``order_to_row(order)`` with ``known.row`` column by column finds, without
    building it: ``known.row`` is the row of ``known.base`` (built from it, or it was built from the
    row), so a field holding the very object ``known.base`` holds keeps its column, and only the other
    fields (found without a Python loop: ``map(is_not)``) are mapped and compared.
    """
    row = dict(known.row)  # ``known.row`` may be shared with the store's kept copy: never edited
    changed = ["version"]
    after = _fields_of(order)
    moved = compress(zip(_COLUMN_FIELDS, after, strict=True), map(is_not, after, _fields_of(known.base)))
    for name, value in moved:
        if name in _ENUMS:
            value = value._value_  # the enum's plain attribute (``.value`` is a property)
            if name == "status":
                _set_column(row, changed, "is_open", order.is_open)
        elif name == "leg_ids":
            value = list(value)
        _set_column(row, changed, name, value)
    return row, changed


def _set_column(row: dict[str, Any], changed: list[str], column: str, value: Any) -> None:
    # a column changes when its stored value differs: Decimals by digits and exponent (the text column
    # keeps "12.50" and "12.5" apart), datetimes by instant (stored as UTC)
    old: Any = row.get(column)
    if value is old or (
        type(value) is type(old)
        and value == old
        and (type(value) is not Decimal or value.as_tuple() == old.as_tuple())
    ):
        return
    row[column] = value
    changed.append(column)


def as_stored(order: Order, version: int, execution_ids: frozenset[ExecutionId]) -> Order:
    # what a fresh read returns: datetimes in UTC (Decimals, enums and ids round-trip unchanged)
    created_at, updated_at = order.created_at, order.broker_updated_at
    if created_at.tzinfo is not UTC:
        created_at = created_at.astimezone(UTC)
    if updated_at is not None and updated_at.tzinfo is not UTC:
        updated_at = updated_at.astimezone(UTC)
    if (
        created_at is order.created_at
        and updated_at is order.broker_updated_at
        and version == order.version
        and execution_ids is order.execution_ids
    ):
        return order
    # field by field, not ``dataclasses.replace`` (which walks the fields and parses keywords on every
    # call): a stream event's order is copied here once, for its new version
    return Order(
        client_order_id=order.client_order_id,
        symbol=order.symbol,
        side=order.side,
        type=order.type,
        qty=order.qty,
        time_in_force=order.time_in_force,
        created_at=created_at,
        role=order.role,
        parent_id=order.parent_id,
        group_id=order.group_id,
        limit_price=order.limit_price,
        stop_price=order.stop_price,
        stop_limit_price=order.stop_limit_price,
        trail_price=order.trail_price,
        trail_percent=order.trail_percent,
        status=order.status,
        broker_order_id=order.broker_order_id,
        leg_ids=order.leg_ids,
        filled_qty=order.filled_qty,
        filled_avg_price=order.filled_avg_price,
        broker_updated_at=updated_at,
        execution_ids=execution_ids,
        version=version,
    )
