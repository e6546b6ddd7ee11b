"""The reads of `analyze --verify`: positions, then pages of orders per symbol batch, then named orders."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timedelta
from uuid import UUID

from ordersync.domain.events import BrokerOrderView
from ordersync.domain.ids import BrokerOrderId, ClientOrderId
from ordersync.forensics import IncidentReport, ParentIssue
from ordersync.incident_check.model import PAGE, SYMBOLS_PER_READ, BrokerCheck, ReadBudget
from ordersync.incident_check.verdict import parent_check, symbol_at_broker
from ordersync.ports import Broker


async def check_at_broker(
    report: IncidentReport,
    broker: Broker,
    *,
    max_requests: int = 50,
    on_read: Callable[[int, int], None] | None = None,
) -> BrokerCheck:
    """Read the broker's view of every order and symbol the report names; never place, cancel or edit.

    `on_read(spent, max_requests)` is called before each read (the CLI draws its progress with it).
    """
    budget = ReadBudget(max_requests, on_read=on_read)
    rows = [p for p in report.parents if p.broker_order_id is not None]
    symbols = sorted({p.symbol for p in rows if p.symbol})
    positions = await broker.positions() if budget.take() else None
    orders: dict[str, BrokerOrderView] = {}
    after = _earliest(rows)
    for batch in _batches(symbols) if symbols else [()]:
        if after is not None:
            await _read_pages(broker, "all", after, batch, budget, orders)
        if batch:
            await _read_pages(broker, "open", None, batch, budget, orders)
    unknown, unread = await _read_named(rows, broker, budget, orders)
    logged = _logged(report)
    found = {s: symbol_at_broker(s, positions, orders.values(), logged) for s in symbols}
    return BrokerCheck(
        parents=tuple(parent_check(p, orders, found, logged) for p in rows),
        symbols=tuple(found.values()),
        unknown_orders=tuple(unknown),
        unread_orders=tuple(unread),
        requests=budget.spent,
        max_requests=max_requests,
        positions_read=positions is not None,
        orders=orders,
    )


def _batches(symbols: Sequence[str]) -> list[tuple[str, ...]]:
    return [tuple(symbols[i : i + SYMBOLS_PER_READ]) for i in range(0, len(symbols), SYMBOLS_PER_READ)]


async def _read_named(
    rows: Sequence[ParentIssue], broker: Broker, budget: ReadBudget, orders: dict[str, BrokerOrderView]
) -> tuple[list[str], list[str]]:
    """Read one by one what the batched pages did not hold; return (unknown, unread) ids."""
    unknown: list[str] = []
    unread: list[str] = []
    by_client = {o.client_order_id: o for o in orders.values()}
    for order_id, client_id in _named_orders(rows):
        if order_id in orders or (client_id and client_id in by_client):
            continue
        by_id = _is_uuid(order_id)
        if not by_id and not client_id:  # not an id Alpaca issues, and no client id: unknown unasked
            unknown.append(order_id)
            continue
        if not budget.take():
            unread.append(order_id)
            continue
        if by_id:
            found = await broker.get_order(BrokerOrderId(order_id))
        else:
            found = await broker.get_by_client_id(ClientOrderId(client_id or ""))
        if found is None:
            unknown.append(order_id)
        else:
            orders[order_id] = orders[found.broker_order_id] = found
    return unknown, unread


def _is_uuid(text: str) -> bool:
    try:
        UUID(text)
    except ValueError:
        return False
    return True


def _named_orders(rows: Sequence[ParentIssue]) -> list[tuple[str, str | None]]:
    """(id, client id when the log gave one) of each row, its parent and its competing orders, once each."""
    ids: dict[str, str | None] = {}
    for p in rows:
        if p.broker_order_id:
            ids.setdefault(p.broker_order_id, p.client_order_id)
        if p.parent_order_id:
            ids.setdefault(p.parent_order_id, None)
        for c in p.competing:
            ids.setdefault(c.broker_order_id, c.client_order_id)
    return list(ids.items())


def _logged(report: IncidentReport) -> Collection[str]:
    """Every broker order id or client order id the log (or the report) names: "ours"."""
    named: set[str] = set(report.logged_orders)
    for p in report.parents:
        for value in (p.broker_order_id, p.client_order_id, p.parent_order_id, *p.child_ids):
            if value:
                named.add(value)
        for c in p.competing:
            named.add(c.broker_order_id)
            if c.client_order_id:
                named.add(c.client_order_id)
    return named


def _earliest(rows: Sequence[ParentIssue]) -> datetime | None:
    stamps = [t for p in rows for t in (p.submitted_at, p.first_error_at) if t is not None]
    return min(stamps) - timedelta(minutes=1) if stamps else None


async def _read_pages(
    broker: Broker,
    status: str,
    after: datetime | None,
    symbols: Sequence[str],
    budget: ReadBudget,
    orders: dict[str, BrokerOrderView],
) -> None:
    """Page forward through `status=...&after=...&symbols=...` (500 orders a page) into `orders`."""
    while budget.take():
        page = await broker.list_orders(status, after=after, limit=PAGE, symbols=symbols or None)
        for order in page:
            orders[order.broker_order_id] = order
        stamps = [o.submitted_at for o in page if o.submitted_at is not None]
        if len(page) < PAGE or not stamps or (after is not None and max(stamps) <= after):
            return
        after = max(stamps)
