"""GET /v2/orders: query-string parsing and selection, with Alpaca's defaults and alpaca-py's quirks.

Defaults are Alpaca's (docs/alpaca.md §4): status=open, limit=50 (max 500), direction=desc; `after` and
`until` filter on submission time and are both exclusive; `nested` arrives as Python's `True`/`False` from
alpaca-py and is parsed case-insensitively. Paging is done by moving `after`/`until` (there is no cursor).

Held bracket legs: the docs say every leg is listed, users report that held legs are missing from the flat
`status=open` list (docs/alpaca.md §6.2). The simulator hides `held` legs from the flat open list and
shows them under the parent's `legs` with nested=true. With nested=true a group is listed when its root or
any of its legs matches the status filter, so open exits of a filled entry are never invisible."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from .book import Book
from .model import SIDES, SimOrder
from .wire import ApiError

__all__ = ["OrderQuery", "parse_bool", "parse_order_query", "select_orders"]

MAX_LIMIT = 500


@dataclass(frozen=True)
class OrderQuery:
    status: str = "open"
    limit: int = 50
    after: datetime | None = None
    until: datetime | None = None
    direction: str = "desc"
    nested: bool = False
    symbols: frozenset[str] | None = None
    side: str | None = None


def parse_bool(value: str | None, field: str) -> bool:
    """Parse `true`/`True`/`false`/... as alpaca-py sends them.

    Raises:
        ApiError: 422 40010001 for anything else.
    """
    if value is None:
        return False
    lowered = value.strip().lower()
    if lowered not in ("true", "false", "1", "0"):
        raise ApiError.unprocessable(f"invalid {field}: {value!r}")
    return lowered in ("true", "1")


def parse_order_query(params: Mapping[str, str]) -> OrderQuery:
    """Parse GET /v2/orders parameters.

    Raises:
        ApiError: 422 40010001 naming the bad parameter.
    """
    status = params.get("status", "open")
    if status not in ("open", "closed", "all"):
        raise ApiError.unprocessable(f"invalid status: {status!r}")
    direction = params.get("direction", "desc")
    if direction not in ("asc", "desc"):
        raise ApiError.unprocessable(f"invalid direction: {direction!r}")
    side = params.get("side")
    if side is not None and side not in SIDES:
        raise ApiError.unprocessable(f"invalid side: {side!r}")
    symbols = params.get("symbols")
    return OrderQuery(
        status=status,
        limit=_limit(params.get("limit")),
        after=_time(params.get("after"), "after"),
        until=_time(params.get("until"), "until"),
        direction=direction,
        nested=parse_bool(params.get("nested"), "nested"),
        symbols=frozenset(s.strip().upper() for s in symbols.split(",") if s.strip()) if symbols else None,
        side=side,
    )


def select_orders(book: Book, query: OrderQuery) -> list[SimOrder]:
    """Return the orders (group roots when nested) the query selects, sorted and limited."""
    chosen = [o for o in book.orders.values() if _selected(book, o, query)]
    chosen.sort(key=lambda o: o.created_at, reverse=query.direction == "desc")
    return chosen[: query.limit]


def _selected(book: Book, order: SimOrder, query: OrderQuery) -> bool:
    if query.symbols is not None and order.symbol not in query.symbols:
        return False
    if query.side is not None and order.side != query.side:
        return False
    if query.after is not None and not order.created_at > query.after:
        return False
    if query.until is not None and not order.created_at < query.until:
        return False
    if query.nested:
        if order.is_leg:
            return False
        members = [order, *(book.orders[i] for i in order.leg_ids)]
        return any(_status_matches(m, query.status) for m in members)
    if query.status == "open" and order.status == "held":
        return False
    return _status_matches(order, query.status)


def _status_matches(order: SimOrder, status: str) -> bool:
    if status == "all":
        return True
    return order.is_open == (status == "open")


def _limit(raw: str | None) -> int:
    if raw is None:
        return 50
    try:
        value = int(raw)
    except ValueError:
        raise ApiError.unprocessable(f"invalid limit: {raw!r}") from None
    if value <= 0:
        raise ApiError.unprocessable(f"invalid limit: {raw!r}")
    return min(value, MAX_LIMIT)


def _time(raw: str | None, field: str) -> datetime | None:
    if raw is None or not raw.strip():
        return None
    text = raw.strip()
    # An unencoded "+00:00" offset arrives as a space; try the text as sent first.
    for candidate in (text, text.replace(" ", "+")):
        try:
            parsed = datetime.fromisoformat(candidate)
        except ValueError:
            continue
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed
    raise ApiError.unprocessable(f"invalid {field}: {raw!r}")
