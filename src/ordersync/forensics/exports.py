"""Evidence from the broker itself: an export of the orders and of the FILL activities.

Two JSON documents the on-call engineer can save from Alpaca's API (docs/forensics.md, "Broker exports"):

- `GET /v2/orders?status=all&nested=true`: an array of orders; with `nested=true` a bracket's take-profit
  and stop-loss appear under their parent's `legs`, which is how a leg's parent is known;
- `GET /v2/account/activities/FILL`: an array of fills (`activity_type` "FILL", `order_id`,
  `transaction_time`, `qty`, `price`, `side`, `symbol`, `type` fill or partial_fill).

Both are recognised by content (an array whose objects carry `activity_type`, or order fields), not by
file name. The `BrokerBook` they fill gives the report sides, quantities, statuses, fill times, and the
identity of the orders `related_orders` names. Quantities are `Decimal`. Stdlib only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, Final

from ordersync.forensics.formats import parse_time

MAX_EXPORT_BYTES: Final = 256 << 20
_ORDER_KEYS: Final = frozenset({"id", "symbol", "side", "status"})


class ExportKind(StrEnum):
    ORDERS = "orders_export"
    FILLS = "fills_export"


@dataclass(frozen=True, slots=True)
class BrokerOrder:
    """One order as the broker reported it."""

    id: str
    client_order_id: str | None
    symbol: str | None
    side: str | None
    qty: Decimal | None
    filled_qty: Decimal | None
    status: str | None
    type: str | None
    order_class: str | None
    created_at: datetime | None
    filled_at: datetime | None
    closed_at: datetime | None  # canceled, expired, replaced or rejected
    parent_id: str | None
    limit_price: Decimal | None
    stop_price: Decimal | None

    @property
    def is_open(self) -> bool:
        return self.status not in ("filled", "canceled", "expired", "replaced", "rejected", "done_for_day")

    def describe(self) -> str:
        """`sell 9 limit (take-profit leg), filled` style, from what is known."""
        parts = [self.side or "side unknown", _num(self.qty) or "qty unknown", self.type or "type unknown"]
        if self.parent_id:
            parts.append(f"leg of {self.parent_id}")
        return " ".join(parts) + f", {self.status or 'status unknown'}"


@dataclass(frozen=True, slots=True)
class Fill:
    order_id: str
    at: datetime | None
    qty: Decimal
    price: Decimal | None
    side: str | None
    symbol: str | None


@dataclass(slots=True)
class BrokerBook:
    """Every order and fill the exports gave, indexed for the report."""

    orders: dict[str, BrokerOrder] = field(default_factory=dict)
    by_client_id: dict[str, str] = field(default_factory=dict)
    fills: dict[str, list[Fill]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.orders or self.fills)

    def order(self, order_id: str | None) -> BrokerOrder | None:
        if order_id is None:
            return None
        return self.orders.get(order_id) or self.orders.get(self.by_client_id.get(order_id, ""))

    def add_orders(self, rows: Iterable[Mapping[str, Any]], parent_id: str | None = None) -> int:
        n = 0
        for row in rows:
            order = _order(row, parent_id)
            if order is None:
                continue
            self.orders[order.id] = order
            if order.client_order_id:
                self.by_client_id[order.client_order_id] = order.id
            legs = row.get("legs")
            n += 1 + (self.add_orders(legs, order.id) if isinstance(legs, list) else 0)
        return n

    def add_fills(self, rows: Iterable[Mapping[str, Any]]) -> int:
        n = 0
        for row in rows:
            order_id, qty = row.get("order_id"), _dec(row.get("qty"))
            if not isinstance(order_id, str) or qty is None:
                continue
            fill = Fill(
                order_id=order_id,
                at=parse_time(row.get("transaction_time")),
                qty=qty,
                price=_dec(row.get("price")),
                side=_text(row.get("side")),
                symbol=_text(row.get("symbol")),
            )
            self.fills.setdefault(order_id, []).append(fill)
            n += 1
        return n

    def filled(self, order_id: str) -> tuple[Decimal | None, datetime | None, datetime | None]:
        """Filled qty, first and last fill time of an order, from the fills or else the order export."""
        fills = self.fills.get(order_id)
        if fills:
            times = [f.at for f in fills if f.at is not None]
            return sum((f.qty for f in fills), Decimal(0)), min(times, default=None), max(times, default=None)
        order = self.orders.get(order_id)
        if order is None:
            return None, None, None
        return order.filled_qty, order.filled_at, order.filled_at

    def sells_of(self, symbol: str) -> list[BrokerOrder]:
        return [o for o in self.orders.values() if o.symbol == symbol and o.side == "sell"]

    def times(self) -> list[datetime]:
        stamps = [t for o in self.orders.values() for t in (o.created_at, o.filled_at, o.closed_at) if t]
        return stamps + [f.at for fs in self.fills.values() for f in fs if f.at is not None]


def export_kind(rows: list[Any]) -> ExportKind | None:
    """Which export a parsed JSON array is, from its objects' keys; `None` if neither."""
    objects = [r for r in rows[:50] if isinstance(r, dict)]
    if not objects:
        return ExportKind.ORDERS if not rows else None
    if all(r.get("activity_type") == "FILL" or "transaction_time" in r for r in objects):
        return ExportKind.FILLS
    if all(r.keys() >= _ORDER_KEYS for r in objects):
        return ExportKind.ORDERS
    return None


def load_export(data: bytes, book: BrokerBook) -> tuple[ExportKind, int] | str:
    """Add one export's rows to `book`; return its kind and row count, or why it cannot be read."""
    try:
        rows = json.loads(data)
    except (ValueError, RecursionError) as e:
        return f"starts like a JSON export but is not valid JSON ({type(e).__name__})"
    if not isinstance(rows, list):
        return "not a JSON array"
    kind = export_kind(rows)
    if kind is None:
        return "a JSON array of neither orders nor FILL activities"
    dicts = [r for r in rows if isinstance(r, dict)]
    return kind, (book.add_fills(dicts) if kind is ExportKind.FILLS else book.add_orders(dicts))


def _order(row: Mapping[str, Any], parent_id: str | None) -> BrokerOrder | None:
    order_id = row.get("id")
    if not isinstance(order_id, str) or not order_id:
        return None
    closed = next(
        (
            t
            for k in ("canceled_at", "expired_at", "replaced_at", "failed_at")
            if (t := parse_time(row.get(k)))
        ),
        None,
    )
    return BrokerOrder(
        id=order_id,
        client_order_id=_text(row.get("client_order_id")),
        symbol=_text(row.get("symbol")),
        side=_text(row.get("side")),
        qty=_dec(row.get("qty")),
        filled_qty=_dec(row.get("filled_qty")),
        status=_text(row.get("status")),
        type=_text(row.get("type") or row.get("order_type")),
        order_class=_text(row.get("order_class")),
        created_at=parse_time(row.get("created_at")) or parse_time(row.get("submitted_at")),
        filled_at=parse_time(row.get("filled_at")),
        closed_at=closed,
        parent_id=parent_id,
        limit_price=_dec(row.get("limit_price")),
        stop_price=_dec(row.get("stop_price")),
    )


def _dec(value: object) -> Decimal | None:
    if value is None or isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    try:
        out = Decimal(str(value))
    except InvalidOperation:
        return None
    return out if out.is_finite() else None


def _text(value: object) -> str | None:
    return (
        value.lower()
        if isinstance(value, str) and value and value.lower() in _LOWER
        else (value if isinstance(value, str) and value else None)
    )


_LOWER: Final = frozenset({"buy", "sell"})


def _num(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")
