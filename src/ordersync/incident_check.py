"""Check an incident report against the broker, read-only: `ordersync analyze --verify` (issue 19).

The report says what the logs and exports showed; the on-call engineer's next question is what the broker
shows *now*. `check_at_broker` answers it through the `Broker` port, never placing, cancelling or editing
anything, in as few reads as the broker's API allows:

1. every position (one request);
2. per batch of up to 100 affected symbols, the pages of `GET /v2/orders?status=all&after=...&symbols=...`
   from a minute before the earliest time the report mentions (one request per 500 orders), and the
   open orders of those symbols (`status=open&symbols=...`: the sells holding shares, however old);
3. only then, one by one, the orders the report names that no page held (by id, or by client order id
   when that is all the log has). An id that is not an Alpaca order id is reported unknown without asking.

Reads are counted against `max_requests`, a stated share of Alpaca's 200 requests/minute (the default 50
is a quarter); what the budget did not cover is listed, never silently dropped, and an order the broker
does not know is reported, not an error. From what was read: per affected symbol the shares held, the
open sells holding them (ours, i.e. named in the log, or not) and the shares left unprotected now; per
parent row its status, filled quantity and fill time now, and a verdict that confirms or corrects the
log-based cause. Kept outside `forensics` (which never imports a broker adapter) and outside `brokers`
(which knows nothing of reports).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from html import escape
from typing import Final
from uuid import UUID

from ordersync.domain.events import BrokerOrderView
from ordersync.domain.ids import BrokerOrderId, ClientOrderId, Symbol
from ordersync.forensics import IncidentReport, ParentIssue
from ordersync.forensics.report import Cause
from ordersync.ports import Broker, PositionView

OPEN_STATUSES: Final = frozenset(
    {"new", "accepted", "pending_new", "partially_filled", "held", "pending_replace", "pending_cancel"}
)
PAGE: Final = 500
SYMBOLS_PER_READ: Final = 100  # keeps the query string well under any URL limit
BUDGET_PER_MINUTE: Final = 200  # Alpaca's documented request budget (docs/alpaca.md)
_LOG_SAYS: Final = {
    Cause.SELL_BEFORE_FILL: "sell-before-fill",
    Cause.RESERVED_BY_OPEN_ORDER: "shares reserved by another open order",
    Cause.OVERSIZED_SELL: "a sell larger than the free shares",
    Cause.MIXED: "mixed causes",
    Cause.UNDETERMINED: "an undetermined cause",
    Cause.NONE: "no refusal",
}


@dataclass(frozen=True, slots=True)
class Holder:
    """An open sell holding shares of a symbol now: `remaining` shares, `ours` when the log names it."""

    order: BrokerOrderView
    remaining: Decimal
    ours: bool


@dataclass(frozen=True, slots=True)
class SymbolAtBroker:
    """One affected symbol now: the position, the open sells holding shares, the shares left unprotected."""

    symbol: str
    qty: Decimal
    qty_available: Decimal | None
    holders: tuple[Holder, ...]
    held: Decimal
    unprotected: Decimal


@dataclass(frozen=True, slots=True)
class ParentCheck:
    """A parent row of the report, as the broker shows it now, with a verdict on the log's cause.

    `outcome` is "confirmed", "corrected" or "unchecked" (the broker does not know the order, or the
    budget did not cover it); `verdict` says it in words.
    """

    order_id: str
    symbol: str | None
    log_cause: Cause
    order: BrokerOrderView | None
    outcome: str
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
    max_requests: int = 50
    positions_read: bool = True
    orders: dict[str, BrokerOrderView] = field(default_factory=dict)

    @property
    def unprotected_now(self) -> bool:
        """True while any affected symbol holds shares no open sell covers: `--verify` exits 1."""
        return any(s.unprotected > 0 for s in self.symbols)

    @property
    def budget_share(self) -> str:
        """The stated share of the 200/min budget this check may spend, e.g. "25%"."""
        return f"{Decimal(100 * self.max_requests) / BUDGET_PER_MINUTE:.0f}%"


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
    found = {s: _symbol(s, positions, orders.values(), logged) for s in symbols}
    return BrokerCheck(
        parents=tuple(_parent_check(p, orders, found, logged) for p in rows),
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


def _remaining(order: BrokerOrderView) -> Decimal:
    return max(Decimal(0), (order.qty or Decimal(0)) - order.filled_qty)


def _symbol(
    symbol: str,
    positions: dict[Symbol, PositionView] | None,
    orders: Iterable[BrokerOrderView],
    logged: Collection[str],
) -> SymbolAtBroker:
    holders = tuple(
        sorted(
            (
                Holder(o, _remaining(o), o.broker_order_id in logged or o.client_order_id in logged)
                for o in orders
                if o.symbol == symbol and o.side == "sell" and str(o.status) in OPEN_STATUSES
            ),
            key=lambda h: (h.order.submitted_at or h.order.updated_at, h.order.broker_order_id),
        )
    )
    position = positions.get(Symbol(symbol)) if positions is not None else None
    qty = position.qty if position is not None else Decimal(0)
    held = sum((h.remaining for h in holders), Decimal(0))
    unprotected = max(Decimal(0), qty - held) if qty > 0 else Decimal(0)
    available = position.qty_available if position is not None else None
    return SymbolAtBroker(symbol, qty, available, holders, held, unprotected)


def _parent_check(
    p: ParentIssue,
    orders: dict[str, BrokerOrderView],
    symbols: dict[str, SymbolAtBroker],
    logged: Collection[str],
) -> ParentCheck:
    target = p.parent_order_id or p.broker_order_id or ""
    order = orders.get(target)
    now = symbols.get(p.symbol or "")
    outcome, verdict = _verdict(p, target, order, orders, now)
    return ParentCheck(target, p.symbol, p.cause, order, outcome, verdict)


def _verdict(
    p: ParentIssue,
    target: str,
    order: BrokerOrderView | None,
    orders: dict[str, BrokerOrderView],
    now: SymbolAtBroker | None,
) -> tuple[str, str]:
    says = f"the log says {_LOG_SAYS[p.cause]}"
    if order is None:
        return "unchecked", f"{says}; the broker does not know {target} (or it was not read): unchecked"
    holding = _holding(now)
    if order.side == "sell":  # the row is an order that competed for the shares
        outcome = "confirmed" if p.cause is Cause.RESERVED_BY_OPEN_ORDER else "corrected"
        shown = (
            f"the broker shows {target} is a {order.order_type or ''} sell of {order.qty} "
            f"({order.status}, submitted {_hm(order.submitted_at)}): the order holding the shares, "
            f"not a parent"
        )
        return outcome, f"{says}; {shown}; {holding}"
    first = p.first_error_at
    fill = _fill(order)
    filled_before = (
        order.filled_qty > 0
        and str(order.status) == "filled"
        and first is not None
        and order.updated_at < first
    )
    if p.cause is Cause.SELL_BEFORE_FILL:
        outcome = "corrected" if filled_before else "confirmed"
        why = (
            " (before the first refusal, so the shares existed when the sell was refused)"
            if filled_before
            else ""
        )
    elif p.cause in (Cause.RESERVED_BY_OPEN_ORDER, Cause.OVERSIZED_SELL):
        outcome = "confirmed" if order.filled_qty > 0 else "corrected"
        why = "" if order.filled_qty > 0 else " (no shares ever arrived: the sell came before any fill)"
    else:
        outcome, why = "confirmed", ""
    return outcome, f"{says}; the broker shows the parent {fill}{why}; {holding}"


def _fill(order: BrokerOrderView) -> str:
    status = str(order.status)
    if status == "filled":
        return f"filled at {_hm(order.updated_at)} ({order.filled_qty} shares)"
    if order.filled_qty > 0:
        return f"{status}, {order.filled_qty} of {order.qty} filled (last update {_hm(order.updated_at)})"
    return f"{status} with nothing filled"


def _holding(now: SymbolAtBroker | None) -> str:
    if now is None:
        return "the symbol was not read"
    if not now.holders:
        text = "nothing holds the shares now"
    else:
        text = " and ".join(_holder(h) for h in now.holders) + " holding the shares"
    return f"{text}; {now.unprotected} of {now.qty} shares unprotected now"


def _holder(h: Holder) -> str:
    o = h.order
    whose = "of ours" if h.ours else "the log never mentions"
    return f"{_kind(o)} {whose} ({o.broker_order_id}, {h.remaining} shares) since {_hm(o.submitted_at)}"


def _kind(order: BrokerOrderView) -> str:
    kind = (order.order_type or "").lower()
    if kind == "limit":
        return "a take-profit"
    if kind in ("stop", "stop_limit"):
        return "a stop-loss"
    if kind == "trailing_stop":
        return "a trailing stop"
    return f"a {kind or 'sell'} order"


def _hm(at: datetime | None) -> str:
    return "?" if at is None else f"{at:%Y-%m-%d %H:%M}"


def check_to_dict(check: BrokerCheck) -> dict[str, object]:
    """The validation as JSON-ready data (the report's `validation` key under `--verify`)."""
    return {
        "requests": check.requests,
        "max_requests": check.max_requests,
        "budget_share": check.budget_share,
        "unprotected_now": check.unprotected_now,
        "positions_read": check.positions_read,
        "parents": [
            {
                "order_id": c.order_id,
                "symbol": c.symbol,
                "log_cause": c.log_cause.value,
                "status": str(c.order.status) if c.order else None,
                "side": c.order.side if c.order else None,
                "qty": _dec(c.order.qty) if c.order else None,
                "filled_qty": str(c.order.filled_qty) if c.order else None,
                "filled_at": c.order.updated_at.isoformat() if c.order and c.order.filled_qty > 0 else None,
                "updated_at": c.order.updated_at.isoformat() if c.order else None,
                "outcome": c.outcome,
                "verdict": c.verdict,
            }
            for c in check.parents
        ],
        "symbols": [
            {
                "symbol": s.symbol,
                "qty": str(s.qty),
                "qty_available": _dec(s.qty_available),
                "held": str(s.held),
                "held_by": [
                    {
                        "order_id": h.order.broker_order_id,
                        "client_order_id": h.order.client_order_id,
                        "type": h.order.order_type,
                        "status": str(h.order.status),
                        "qty": _dec(h.order.qty),
                        "remaining": str(h.remaining),
                        "submitted_at": h.order.submitted_at.isoformat() if h.order.submitted_at else None,
                        "ours": h.ours,
                    }
                    for h in s.holders
                ],
                "unprotected": str(s.unprotected),
            }
            for s in check.symbols
        ],
        "unknown_orders": list(check.unknown_orders),
        "unread_orders": list(check.unread_orders),
    }


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def check_json(check: BrokerCheck) -> str:
    """The `validation` value as indented JSON text (two spaces deeper, as a top-level key's value)."""
    return json.dumps(check_to_dict(check), indent=2, ensure_ascii=False).replace("\n", "\n  ")


def _cost(check: BrokerCheck) -> str:
    return (
        f"Read-only: {check.requests} of at most {check.max_requests} requests ({check.budget_share} of "
        f"the {BUDGET_PER_MINUTE}/min budget). Anything unprotected now: "
        f"{'**yes**' if check.unprotected_now else 'no'}."
    )


def render_check_markdown(check: BrokerCheck) -> str:
    """The "Validation at the broker" section."""
    lines = [
        "## Validation at the broker",
        f"_{_cost(check)}_",
        "",
        "| Parent | Symbol | Status now | Filled | Filled at | Verdict | Why |",
        "|--------|--------|------------|--------|-----------|---------|-----|",
    ]
    for c in check.parents:
        o = c.order
        status = str(o.status) if o else "unknown"
        filled = f"{o.filled_qty} of {o.qty}" if o else "—"
        at = _hm(o.updated_at) if o and o.filled_qty > 0 else "—"
        row = f"| {c.order_id} | {c.symbol or '?'} | {status} | {filled} | {at} | {c.outcome} |"
        lines.append(f"{row} {_cell(c.verdict)} |")
    lines += ["", "| Symbol | Shares held | Available | Held by open sells | Unprotected now |"]
    lines.append("|--------|-------------|-----------|--------------------|-----------------|")
    for s in check.symbols:
        holders = "; ".join(_holder(h) for h in s.holders) or "none"
        available = "—" if s.qty_available is None else str(s.qty_available)
        lines.append(f"| {s.symbol} | {s.qty} | {available} | {_cell(holders)} | {s.unprotected} |")
    if not check.positions_read:
        lines.append("\nPositions not read (request budget spent): shares held are unknown.")
    if check.unknown_orders:
        lines.append(f"\nOrders the broker does not know: {', '.join(check.unknown_orders)}.")
    if check.unread_orders:
        lines.append(f"\nNot read (request budget spent): {', '.join(check.unread_orders)}.")
    return "\n".join(lines) + "\n"


def iter_check_html(check: BrokerCheck) -> Iterator[str]:
    """The same section as HTML tables (escaped, no external asset)."""
    yield f"<h2>Validation at the broker</h2><p>{escape(_cost(check).replace('**', ''))}</p>\n"
    yield (
        "<table><tr><th>Parent</th><th>Symbol</th><th>Status now</th><th>Filled</th><th>Filled at</th>"
        "<th>Verdict</th><th>Why</th></tr>"
    )
    for c in check.parents:
        o = c.order
        cells = (
            c.order_id,
            c.symbol or "?",
            str(o.status) if o else "unknown",
            f"{o.filled_qty} of {o.qty}" if o else "—",
            _hm(o.updated_at) if o and o.filled_qty > 0 else "—",
            c.outcome,
            c.verdict,
        )
        yield "<tr>" + "".join(f"<td>{escape(x)}</td>" for x in cells) + "</tr>"
    yield "</table>\n<table><tr><th>Symbol</th><th>Shares held</th><th>Available</th>"
    yield "<th>Held by open sells</th><th>Unprotected now</th></tr>"
    for s in check.symbols:
        holders = "; ".join(_holder(h) for h in s.holders) or "none"
        available = "—" if s.qty_available is None else str(s.qty_available)
        row = (s.symbol, str(s.qty), available, holders, str(s.unprotected))
        yield "<tr>" + "".join(f"<td>{escape(x)}</td>" for x in row) + "</tr>"
    yield "</table>\n"
    for label, ids in (
        ("Orders the broker does not know", check.unknown_orders),
        ("Not read (request budget spent)", check.unread_orders),
    ):
        if ids:
            yield f"<p>{escape(label)}: {escape(', '.join(ids))}.</p>\n"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")
