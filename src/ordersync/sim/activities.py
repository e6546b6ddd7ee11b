"""GET /v2/account/activities[/FILL]: one FILL row per execution of every order, paged as Alpaca pages them.

This is the cheapest way for a client to notice fills without the stream: one request lists the executions
of every order (legs included), newest first. The rows are built from the executions the venue records on
each order (`SimOrder.executions`), so they can never disagree with the orders' `filled_qty`.

Shape (Alpaca's TradeActivity; docs/simulator.md, "Account activities"): `id` is
"<transaction time in ET as YYYYMMDDHHMMSSmmm>::<uuid>", `activity_type` "FILL", `type` fill | partial_fill,
numbers as strings, plus `account_id` (the Broker API form; alpaca-py's `TradeActivity` model requires it).
`cum_qty`, `leaves_qty` and `order_status` are the order's as of that execution, so a row never changes once
written. The uuid is derived from (order id, execution index) because the venue keeps no per-execution id:
the same execution has the same id on every read, which `page_token` relies on.

Query: `activity_types` (comma list) or the type in the path, or `category` (trade_activity |
non_trade_activity); `direction` asc|desc (default desc); `after` / `until` (exclusive; RFC 3339 or a date,
read as midnight ET); `date` (one ET day); `page_size` (default and max 100, except with `date`: all rows
and no maximum, as Alpaca documents); `page_token` = the id of the last row of the previous page. Only FILL
activities exist in the simulator; every other valid type lists nothing; an unknown type is refused 422
"invalid activity type: X" as Alpaca answers it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal

from .book import Book
from .calendar import EASTERN
from .model import SimOrder
from .serialize import ACCOUNT_ID
from .wire import ApiError, JsonDict, fmt_decimal, fmt_time

__all__ = [
    "ACTIVITY_TYPES",
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "ActivityQuery",
    "activity_id",
    "execution_uuid",
    "fill_activities",
    "list_activities",
    "parse_activity_query",
]

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 100
MAX_TOKEN_LENGTH = 200  # an activity id is 17 + 2 + 36 characters; anything much longer is not one

# The activity types Alpaca's Trading API knows (alpaca-py 0.44 `ActivityType`); only FILL ever has rows here.
ACTIVITY_TYPES = frozenset(
    {
        "FILL", "ACATC", "ACATS", "CFEE", "CIL", "CSD", "CSW", "DIV", "DIVCGL", "DIVCGS", "DIVNRA",
        "DIVROC", "DIVTXEX", "DIVWH", "EXTRD", "FEE", "FXTRD", "INT", "INTPNL", "JNLC", "JNLS", "MA",
        "MEM", "NC", "OCT", "OPASN", "OPCA", "OPCSH", "OPEXC", "OPEXP", "OPTRD", "PTC", "REORG", "SPIN",
        "SPLIT", "SWP", "TRANS", "MISC", "VOF", "WH",
    }
)  # fmt: skip

_EXECUTION_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "ordersync-sim/execution")


@dataclass(frozen=True)
class ActivityQuery:
    """A parsed activities query; `types` None = every type, `page_size` None = no limit."""

    types: frozenset[str] | None = None
    direction: str = "desc"
    after: datetime | None = None
    until: datetime | None = None
    day: date | None = None
    page_size: int | None = DEFAULT_PAGE_SIZE
    page_token: str | None = None


def execution_uuid(order_id: str, index: int) -> str:
    """The stable uuid of an order's `index`-th execution (0-based): the same on every read."""
    return str(uuid.uuid5(_EXECUTION_NAMESPACE, f"{order_id}/{index}"))


def activity_id(at: datetime, order_id: str, index: int) -> str:
    """Alpaca's activity id: ET wall time to the millisecond, "::", the execution's uuid."""
    local = at.astimezone(EASTERN)
    return (
        f"{local.strftime('%Y%m%d%H%M%S')}{local.microsecond // 1000:03d}::{execution_uuid(order_id, index)}"
    )


def parse_activity_query(params: Mapping[str, str], path_type: str | None = None) -> ActivityQuery:
    """Parse the query string (and the type in the path, if any).

    Raises:
        ApiError: 422 40010001 naming the bad parameter.
    """
    types = _types(params, path_type)
    direction = params.get("direction", "desc")
    if direction not in ("asc", "desc"):
        raise ApiError.unprocessable(f"invalid direction: {direction!r}"[:200])
    day = _date(params.get("date"), "date")
    token = params.get("page_token") or None
    if token is not None and (len(token) > MAX_TOKEN_LENGTH or "::" not in token):
        raise ApiError.unprocessable("invalid page_token")
    return ActivityQuery(
        types=types,
        direction=direction,
        after=_instant(params.get("after"), "after"),
        until=_instant(params.get("until"), "until"),
        day=day,
        page_size=_page_size(params.get("page_size"), unlimited=day is not None),
        page_token=token,
    )


def fill_activities(book: Book) -> list[tuple[datetime, JsonDict]]:
    """Every execution of every order as (time, row), oldest first (ties by id, so the order is stable)."""
    rows = [row for order in book.orders.values() for row in _order_rows(order)]
    rows.sort(key=lambda r: (r[0], r[1]["id"]))
    return rows


def list_activities(book: Book, query: ActivityQuery) -> list[JsonDict]:
    """The rows `query` selects, in its direction, one page of them.

    Raises:
        ApiError: 422 when `page_token` names no activity.
    """
    if query.types is not None and "FILL" not in query.types:
        return []
    rows = fill_activities(book)
    if query.page_token is not None:
        rows = _after_token(rows, query.page_token, query.direction)
    chosen = [body for at, body in rows if _in_window(at, query)]
    if query.direction == "desc":
        chosen.reverse()
    return chosen if query.page_size is None else chosen[: query.page_size]


def _order_rows(order: SimOrder) -> list[tuple[datetime, JsonDict]]:
    rows: list[tuple[datetime, JsonDict]] = []
    cumulative = Decimal(0)
    for index, (at, qty, price) in enumerate(order.executions):
        cumulative += qty
        complete = cumulative >= order.qty
        rows.append(
            (
                at,
                {
                    "id": activity_id(at, order.id, index),
                    "account_id": ACCOUNT_ID,
                    "activity_type": "FILL",
                    "transaction_time": fmt_time(at),
                    "type": "fill" if complete else "partial_fill",
                    "price": fmt_decimal(price),
                    "qty": fmt_decimal(qty),
                    "side": order.side,
                    "symbol": order.symbol,
                    "leaves_qty": fmt_decimal(max(order.qty - cumulative, Decimal(0))),
                    "order_id": order.id,
                    "cum_qty": fmt_decimal(cumulative),
                    "order_status": "filled" if complete else "partially_filled",
                },
            )
        )
    return rows


def _after_token(
    rows: list[tuple[datetime, JsonDict]], token: str, direction: str
) -> list[tuple[datetime, JsonDict]]:
    # asc: the rows after the token's row; desc: the rows before it (the next page going back in time).
    for position, (_, body) in enumerate(rows):
        if body["id"] == token:
            return rows[position + 1 :] if direction == "asc" else rows[:position]
    raise ApiError.unprocessable("invalid page_token")


def _in_window(at: datetime, query: ActivityQuery) -> bool:
    if query.after is not None and not at > query.after:
        return False
    if query.until is not None and not at < query.until:
        return False
    return query.day is None or at.astimezone(EASTERN).date() == query.day


def _types(params: Mapping[str, str], path_type: str | None) -> frozenset[str] | None:
    listed = params.get("activity_types")
    category = params.get("category")
    if category is not None and (listed is not None or path_type is not None):
        raise ApiError.unprocessable("category cannot be combined with activity types")
    if category is not None:
        if category not in ("trade_activity", "non_trade_activity"):
            raise ApiError.unprocessable(f"invalid category: {category!r}"[:200])
        return frozenset({"FILL"}) if category == "trade_activity" else frozenset()
    names: list[str] = []
    if path_type is not None:
        names.append(path_type)
    if listed is not None:
        names.extend(n.strip() for n in listed.split(",") if n.strip())
    if not names:
        return None
    for name in names:
        if name not in ACTIVITY_TYPES:
            raise ApiError.unprocessable(f"invalid activity type: {name}"[:200])
    return frozenset(names)


def _page_size(raw: str | None, unlimited: bool) -> int | None:
    if raw is None:
        return None if unlimited else DEFAULT_PAGE_SIZE
    try:
        value = int(raw) if len(raw) <= 12 else 0
    except ValueError:
        value = 0
    if value <= 0:
        raise ApiError.unprocessable(f"invalid page_size: {raw!r}"[:200])
    return value if unlimited else min(value, MAX_PAGE_SIZE)


def _date(raw: str | None, field: str) -> date | None:
    if raw is None or not raw.strip():
        return None
    try:
        return date.fromisoformat(raw.strip()[:10])  # "YYYY-MM-DD" or the date part of a timestamp
    except ValueError:
        raise ApiError.unprocessable(f"invalid {field}: {raw!r}"[:200]) from None


def _instant(raw: str | None, field: str) -> datetime | None:
    """RFC 3339 (an unencoded "+" arrives as a space) or YYYY-MM-DD, read as midnight ET."""
    if raw is None or not raw.strip():
        return None
    text = raw.strip()
    if len(text) <= 40:
        if len(text) == 10:
            try:
                return datetime.combine(date.fromisoformat(text), time(0), tzinfo=EASTERN).astimezone(UTC)
            except ValueError:
                pass
        for candidate in (text, text.replace(" ", "+")):
            try:
                parsed = datetime.fromisoformat(candidate)
            except ValueError:
                continue
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed
    raise ApiError.unprocessable(f"invalid {field}: {raw!r}"[:200])
