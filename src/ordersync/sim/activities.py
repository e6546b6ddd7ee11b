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

import bisect
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
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
    "FillLog",
    "activity_id",
    "execution_uuid",
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


class FillLog:
    """Every execution of every order as a FILL row, oldest first, kept up to date incrementally.

    Rows never change once written (an execution is history), so each `refresh` only renders the executions
    recorded since the last one and inserts them in (time, id) order; a page is then found by bisection, not
    by scanning every row. Not thread-safe on its own: use it under the exchange's lock, as the books are.
    """

    def __init__(self) -> None:
        self._rows: list[tuple[datetime, str, JsonDict]] = []  # (time, id, row), sorted by (time, id)
        self._seen: dict[str, int] = {}  # order id -> executions already rendered
        self._time_of: dict[str, datetime] = {}  # row id -> its time, to find a page_token's place

    def refresh(self, book: Book) -> None:
        """Render the executions recorded since the last refresh."""
        for order in book.orders.values():
            done = self._seen.get(order.id, 0)
            if done == len(order.executions):
                continue
            for at, body in _order_rows(order)[done:]:
                bisect.insort(self._rows, (at, body["id"], body), key=lambda r: (r[0], r[1]))
                self._time_of[body["id"]] = at
            self._seen[order.id] = len(order.executions)

    def rows(self) -> list[JsonDict]:
        """Every row, oldest first."""
        return [body for _, _, body in self._rows]

    def select(self, query: ActivityQuery) -> list[JsonDict]:
        """The rows `query` selects, in its direction, one page of them.

        Raises:
            ApiError: 422 when `page_token` names no activity.
        """
        if query.types is not None and "FILL" not in query.types:
            return []
        lo, hi = self._window(query)
        if query.page_token is not None:
            at = self._time_of.get(query.page_token)
            if at is None:
                raise ApiError.unprocessable("invalid page_token")
            position = bisect.bisect_left(self._rows, (at, query.page_token), key=lambda r: (r[0], r[1]))
            # asc: the rows after the token's row; desc: the rows before it (the next page back in time)
            lo, hi = (max(lo, position + 1), hi) if query.direction == "asc" else (lo, min(hi, position))
        if hi <= lo:
            return []
        size = hi - lo if query.page_size is None else query.page_size
        if query.direction == "asc":
            return [body for _, _, body in self._rows[lo : min(hi, lo + size)]]
        return [body for _, _, body in reversed(self._rows[max(lo, hi - size) : hi])]

    def _window(self, query: ActivityQuery) -> tuple[int, int]:
        """The index range of the rows inside `after`/`until` (both exclusive) and `date` (one ET day)."""
        lo, hi = 0, len(self._rows)
        if query.after is not None:
            lo = max(lo, bisect.bisect_right(self._rows, query.after, key=lambda r: r[0]))
        if query.until is not None:
            hi = min(hi, bisect.bisect_left(self._rows, query.until, key=lambda r: r[0]))
        if query.day is not None:
            start = datetime.combine(query.day, time(0), tzinfo=EASTERN)
            end = datetime.combine(query.day + timedelta(days=1), time(0), tzinfo=EASTERN)
            lo = max(lo, bisect.bisect_left(self._rows, start, key=lambda r: r[0]))
            hi = min(hi, bisect.bisect_left(self._rows, end, key=lambda r: r[0]))
        return lo, hi


def list_activities(book: Book, query: ActivityQuery) -> list[JsonDict]:
    """One page of `query` over the books, from a fresh `FillLog` (servers keep one and refresh it).

    Raises:
        ApiError: 422 when `page_token` names no activity.
    """
    log = FillLog()
    log.refresh(book)
    return log.select(query)


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
