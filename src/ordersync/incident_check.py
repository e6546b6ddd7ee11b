"""Check an incident report against the broker, read-only: the first part of `analyze --verify` (issue 19).

The report says what the logs and exports showed; the on-call engineer's next question is what the broker
shows *now*. `check_at_broker` reads, through the `Broker` port and never writing anything:

- every order the report names (each parent row, its parent from the export, its competing orders), first
  from pages of `GET /v2/orders?status=all&after=...` (one request per 500 orders, from the earliest time
  the report mentions) and only then one by one for ids the pages did not hold;
- every position (one request), and, from the orders read, the open sells of each affected symbol: the
  shares they hold and the shares left unprotected now (position qty minus the open sells' remaining qty);
- a verdict per parent that confirms or corrects the log-based cause.

Reads are counted against `max_requests` (a stated share of the 200/min budget); an order the broker does
not know is reported, not an error. Kept outside `forensics` (which never imports a broker adapter) and
outside `brokers` (which knows nothing of reports); the CLI flag and the report section are still to come.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from uuid import UUID

from ordersync.domain.events import BrokerOrderView
from ordersync.domain.ids import BrokerOrderId, Symbol
from ordersync.forensics import IncidentReport
from ordersync.forensics.report import Cause
from ordersync.ports import Broker, PositionView

OPEN_STATUSES = frozenset(
    {"new", "accepted", "pending_new", "partially_filled", "held", "pending_replace", "pending_cancel"}
)
PAGE = 500


@dataclass(frozen=True, slots=True)
class SymbolAtBroker:
    """One affected symbol now: the position, the open sells holding shares, the shares left unprotected."""

    symbol: str
    qty: Decimal
    qty_available: Decimal | None
    holders: tuple[BrokerOrderView, ...]
    unprotected: Decimal


@dataclass(frozen=True, slots=True)
class ParentCheck:
    """A parent row of the report, as the broker shows it now, with a verdict on the log's cause."""

    order_id: str
    symbol: str | None
    log_cause: Cause
    order: BrokerOrderView | None
    verdict: str


@dataclass(slots=True)
class ReadBudget:
    """At most `max_requests` reads; `spent` counts them; `on_read(spent, max_requests)` follows them."""

    max_requests: int
    spent: int = 0
    on_read: Callable[[int, int], None] | None = None

    def take(self) -> bool:
        if self.spent >= self.max_requests:
            return False
        self.spent += 1
        if self.on_read is not None:
            self.on_read(self.spent, self.max_requests)
        return True


@dataclass(frozen=True, slots=True)
class BrokerCheck:
    """The validation at the broker: per parent, per symbol, what was unknown, what it cost."""

    parents: tuple[ParentCheck, ...]
    symbols: tuple[SymbolAtBroker, ...]
    unknown_orders: tuple[str, ...]
    unread_orders: tuple[str, ...]  # not read: the request budget ran out first
    requests: int
    orders: dict[str, BrokerOrderView] = field(default_factory=dict)

    @property
    def unprotected_now(self) -> bool:
        """True while any affected symbol holds shares no open sell covers: `--verify` exits 1."""
        return any(s.unprotected > 0 for s in self.symbols)


async def check_at_broker(
    report: IncidentReport,
    broker: Broker,
    *,
    max_requests: int = 50,
    on_read: Callable[[int, int], None] | None = None,
) -> BrokerCheck:
    """Read the broker's view of every order and symbol the report names; never place, cancel or edit.

    `on_read(spent, max_requests)` is called before each read (the CLI draws a progress bar with it).
    """
    budget = ReadBudget(max_requests, on_read=on_read)
    wanted = _named_orders(report)
    symbols = sorted({p.symbol for p in report.parents if p.symbol})
    orders = await _read_pages(broker, _earliest(report), budget)
    unknown: list[str] = []
    unread: list[str] = []
    for order_id in wanted:
        if order_id in orders:
            continue
        if not _is_uuid(order_id):  # not an id Alpaca issues: unknown without asking
            unknown.append(order_id)
            continue
        if not budget.take():
            unread.append(order_id)
            continue
        found = await broker.get_order(BrokerOrderId(order_id))
        if found is None:
            unknown.append(order_id)
        else:
            orders[order_id] = found
    positions = await broker.positions() if budget.take() else {}
    return BrokerCheck(
        parents=tuple(_parent_checks(report, orders)),
        symbols=tuple(_symbol(s, positions.get(Symbol(s)), orders.values()) for s in symbols),
        unknown_orders=tuple(unknown),
        unread_orders=tuple(unread),
        requests=budget.spent,
        orders=orders,
    )


def _is_uuid(text: str) -> bool:
    try:
        UUID(text)
    except ValueError:
        return False
    return True


def _named_orders(report: IncidentReport) -> list[str]:
    ids: dict[str, None] = {}
    for p in report.parents:
        for order_id in (p.broker_order_id, p.parent_order_id, *(c.broker_order_id for c in p.competing)):
            if order_id:
                ids[order_id] = None
    return list(ids)


def _earliest(report: IncidentReport) -> datetime | None:
    stamps = [t for p in report.parents for t in (p.submitted_at, p.first_error_at) if t is not None]
    return min(stamps) - timedelta(minutes=1) if stamps else None


async def _read_pages(
    broker: Broker, after: datetime | None, budget: ReadBudget
) -> dict[str, BrokerOrderView]:
    orders: dict[str, BrokerOrderView] = {}
    if after is None:
        return orders
    while budget.take():
        page: Sequence[BrokerOrderView] = await broker.list_orders("all", after=after, limit=PAGE)
        for order in page:
            orders[order.broker_order_id] = order
        stamps = [o.submitted_at for o in page if o.submitted_at is not None]
        if len(page) < PAGE or not stamps or max(stamps) <= after:
            break
        after = max(stamps)
    return orders


def _symbol(symbol: str, position: PositionView | None, orders: Iterable[BrokerOrderView]) -> SymbolAtBroker:
    holders = tuple(
        o for o in orders if o.symbol == symbol and o.side == "sell" and str(o.status) in OPEN_STATUSES
    )
    qty = position.qty if position is not None else Decimal(0)
    held = sum(((o.qty or Decimal(0)) - o.filled_qty for o in holders), Decimal(0))
    unprotected = max(Decimal(0), qty - held) if qty > 0 else Decimal(0)
    return SymbolAtBroker(symbol, qty, position.qty_available if position else None, holders, unprotected)


def _parent_checks(report: IncidentReport, orders: dict[str, BrokerOrderView]) -> list[ParentCheck]:
    checks = []
    for p in report.parents:
        if p.broker_order_id is None:
            continue
        target = p.parent_order_id or p.broker_order_id
        order = orders.get(target)
        checks.append(ParentCheck(target, p.symbol, p.cause, order, _verdict(p.cause, order, orders)))
    return checks


def _verdict(cause: Cause, order: BrokerOrderView | None, orders: dict[str, BrokerOrderView]) -> str:
    if order is None:
        return "the broker does not know this order (or it was not read): the log's reading stands unchecked"
    status = str(order.status)
    holders = [
        o
        for o in orders.values()
        if o.symbol == order.symbol and o.side == "sell" and str(o.status) in OPEN_STATUSES
    ]
    held = ", ".join(
        f"{o.broker_order_id} ({o.client_order_id}, {o.qty} {o.order_type or ''})" for o in holders
    )
    now = f"holding the shares now: {held}" if held else "nothing holds the shares now"
    if order.side == "sell":
        return f"this order is a {status} sell at the broker (the competing order); {now}"
    if cause is Cause.SELL_BEFORE_FILL and status == "filled":
        return (
            f"the log says the sell came before the fill; the broker shows the parent filled "
            f"({order.filled_qty} shares, last update {order.updated_at:%Y-%m-%d %H:%M:%S}) since; {now}"
        )
    if cause is Cause.SELL_BEFORE_FILL and status in OPEN_STATUSES:
        return f"confirmed: the parent is still {status} at the broker ({order.filled_qty} filled); {now}"
    if cause is Cause.RESERVED_BY_OPEN_ORDER:
        return f"the parent is {status} ({order.filled_qty} filled); {now}"
    return f"the parent is {status} at the broker ({order.filled_qty} filled); {now}"


def check_to_dict(check: BrokerCheck) -> dict[str, object]:
    """The validation as JSON-ready data (the report's `validation` key under `--verify`)."""
    return {
        "requests": check.requests,
        "unprotected_now": check.unprotected_now,
        "parents": [
            {
                "order_id": c.order_id,
                "symbol": c.symbol,
                "log_cause": c.log_cause.value,
                "status": str(c.order.status) if c.order else None,
                "filled_qty": str(c.order.filled_qty) if c.order else None,
                "updated_at": c.order.updated_at.isoformat() if c.order else None,
                "verdict": c.verdict,
            }
            for c in check.parents
        ],
        "symbols": [
            {
                "symbol": s.symbol,
                "qty": str(s.qty),
                "qty_available": None if s.qty_available is None else str(s.qty_available),
                "held_by": [
                    {"order_id": o.broker_order_id, "client_order_id": o.client_order_id, "qty": str(o.qty)}
                    for o in s.holders
                ],
                "unprotected": str(s.unprotected),
            }
            for s in check.symbols
        ],
        "unknown_orders": list(check.unknown_orders),
        "unread_orders": list(check.unread_orders),
    }


def render_check_markdown(check: BrokerCheck) -> str:
    """The "Validation at the broker" section."""
    lines = [
        "## Validation at the broker",
        f"_Read-only: {check.requests} requests. Anything unprotected now: "
        f"{'**yes**' if check.unprotected_now else 'no'}._",
        "",
        "| Parent | Symbol | Status now | Filled | Verdict |",
        "|--------|--------|------------|--------|---------|",
    ]
    for c in check.parents:
        status = str(c.order.status) if c.order else "unknown"
        filled = str(c.order.filled_qty) if c.order else "—"
        lines.append(f"| {c.order_id} | {c.symbol or '?'} | {status} | {filled} | {_cell(c.verdict)} |")
    lines += ["", "| Symbol | Shares held | Available | Held by open sells | Unprotected now |"]
    lines.append("|--------|-------------|-----------|--------------------|-----------------|")
    for s in check.symbols:
        holders = ", ".join(f"{o.broker_order_id} ({o.qty})" for o in s.holders) or "none"
        available = "—" if s.qty_available is None else str(s.qty_available)
        lines.append(f"| {s.symbol} | {s.qty} | {available} | {holders} | {s.unprotected} |")
    if check.unknown_orders:
        lines.append(f"\nOrders the broker does not know: {', '.join(check.unknown_orders)}.")
    if check.unread_orders:
        lines.append(f"\nNot read (request budget spent): {', '.join(check.unread_orders)}.")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")
