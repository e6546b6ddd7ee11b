"""What a transaction knows of an order it read or wrote, and what it has yet to write.

A transaction answers repeated reads of an order from here and coalesces its saves into one UPDATE per
order at commit (the version check of the first read still guards the whole row).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC
from decimal import Decimal
from typing import Any

from ordersync.domain.ids import ExecutionId
from ordersync.domain.order import Order

_TIMES = ("created_at", "broker_updated_at")


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


def changed_columns(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
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


def as_stored(order: Order, version: int, execution_ids: frozenset[ExecutionId]) -> Order:
    # what a fresh read returns: datetimes in UTC (Decimals, enums and ids round-trip unchanged)
    times = {name: getattr(order, name) for name in _TIMES}
    utc = {k: v.astimezone(UTC) for k, v in times.items() if v is not None and v.tzinfo is not UTC}
    if not utc and version == order.version and execution_ids is order.execution_ids:
        return order
    return _copy(order, version=version, execution_ids=execution_ids, **utc)


_SLOTS = tuple(f.name for f in fields(Order))
_set = object.__setattr__


def _copy(order: Order, **changes: Any) -> Order:
    # ``dataclasses.replace`` without its per-call field walk and keyword ``__init__`` (a third of a
    # stream event's store cost): ``Order`` has no ``__post_init__``, so a slot-by-slot copy of values
    # that were valid in ``order`` is the same object ``replace`` would build
    copy = object.__new__(Order)
    for name in _SLOTS:
        _set(copy, name, changes[name] if name in changes else getattr(order, name))
    return copy
