"""Gap-free reads of the broker's orders: everything open, plus everything closed since our oldest open.

Alpaca's ``after`` filters on *submission* time (docs/alpaca.md, 4.2), so "everything since the last event"
cannot be read with ``after=<last event>``: an old order that filled during the gap would be missed.
Instead we read every open order and every order closed since the oldest order we still hold open;
together they contain the current state of every order that could have changed. Pages of 500, ascending,
advancing ``after`` and de-duplicating by id (equal submission times may straddle a page boundary).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from ordersync.domain.events import BrokerOrderView
from ordersync.ports import Broker

PAGE = 500
_EPSILON = timedelta(microseconds=1)


async def read_all(
    broker: Broker, status: str, after: datetime | None, on_page: Callable[[], None] | None = None
) -> list[BrokerOrderView]:
    """Return every order with ``status`` submitted after ``after``, across pages (each one request,
    reported to ``on_page`` when given: the poller's budget counts them)."""
    seen: dict[str, BrokerOrderView] = {}
    cursor = after
    while True:
        if on_page is not None:
            on_page()
        page = await broker.list_orders(status, after=cursor, limit=PAGE, direction="asc")
        fresh = [v for v in page if v.broker_order_id not in seen]
        seen.update((v.broker_order_id, v) for v in page)
        tops = [v for v in page if v.submitted_at is not None]
        if len(_tops(page)) < PAGE or not fresh or not tops:
            return list(seen.values())
        cursor = max(v.submitted_at for v in tops if v.submitted_at) - _EPSILON


def _tops(page: Sequence[BrokerOrderView]) -> list[BrokerOrderView]:
    # legs are flattened into pages; only top-level orders count toward the page size
    leg_ids = {leg for v in page for leg in v.leg_ids}
    return [v for v in page if v.broker_order_id not in leg_ids]


async def read_changed(
    broker: Broker, oldest_open: datetime | None, on_page: Callable[[], None] | None = None
) -> list[BrokerOrderView]:
    """Return all open orders, and closed ones submitted since ``oldest_open`` (None: no closed read)."""
    # open first, then closed, never both at once: an order that closes between the two reads is then in
    # the second (read the other way round, or side by side, it could be in neither)
    views = await read_all(broker, "open", None, on_page)
    if oldest_open is not None:
        # a margin for clock skew between our created_at and the broker's submitted_at
        views += await read_all(broker, "closed", oldest_open - timedelta(minutes=5), on_page)
    return views
