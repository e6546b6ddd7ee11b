"""What the CLI shows: status tables from the store, and the journal as forensic records.

Kept out of ``ordersync.cli`` so the CLI only parses, calls and renders; kept out of ``forensics`` because
that package must not depend on the store (it analyzes any source of records).
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from rich.table import Table
from rich.text import Text

from ordersync.domain.kinds import JournalKind
from ordersync.domain.order import Order
from ordersync.domain.protection import coverage, target_qty
from ordersync.forensics import ErrorBody, LogRecord, Origin, Rejection, Submission
from ordersync.ports import Alert, PlanState, Store


def journal_records(store: Store, batch: int = 10_000) -> Iterator[LogRecord]:
    """Yield the journal's accepted submits and broker refusals as forensic records."""
    after = 0
    while entries := store.read_journal(after_seq=after, limit=batch):
        for entry in entries:
            record = _record(entry.kind, entry.payload, entry.client_order_id, entry.ts)
            if record is not None:
                yield record
        after = entries[-1].seq or after + len(entries)


def _record(kind: str, payload: dict[str, Any], coid: str | None, ts: Any) -> LogRecord | None:
    if kind == JournalKind.SUBMIT_ACCEPTED:
        return Submission(
            str(payload.get("broker_order_id")),
            ts,
            symbol=payload.get("symbol"),
            side=payload.get("side"),
            qty=_dec(payload.get("qty")),
            client_order_id=coid,
            origin=Origin.JOURNAL,
        )
    if kind == JournalKind.SUBMIT_REFUSED and isinstance(payload.get("body"), dict):
        body = payload["body"]
        related = body.get("related_orders") or []
        error = ErrorBody(
            code=body.get("code") if isinstance(body.get("code"), int) else None,
            message=str(body.get("message", "")),
            symbol=body.get("symbol"),
            available=_dec(body.get("available")),
            existing_qty=_dec(body.get("existing_qty")),
            held_for_orders=_dec(body.get("held_for_orders")),
            related_orders=tuple(str(r) for r in related),
        )
        return Rejection(error, ts, origin=Origin.JOURNAL, client_order_id=coid)
    return None


def _dec(value: object) -> Decimal | None:
    return None if value in (None, "") else Decimal(str(value))


def status_tables(orders: list[Order], plans: list[PlanState], alerts: list[Alert]) -> list[Table]:
    """Return the parents-with-children table and the open-alerts table."""
    by_parent: dict[str, list[Order]] = {}
    for order in orders:
        if order.parent_id:
            by_parent.setdefault(order.parent_id, []).append(order)
    plan_of = {p.parent_id: p for p in plans}
    parents = Table(title="Parents and their protection", show_lines=False)
    for column in ("parent", "symbol", "status", "filled", "protected", "children"):
        parents.add_column(column)
    for order in orders:
        if order.parent_id is not None:
            continue
        kids = by_parent.get(order.client_order_id, [])
        state = plan_of.get(order.client_order_id)
        target = target_qty(order, state.plan) if state else Decimal(0)
        covered = coverage(kids, order)
        children = ", ".join(f"{k.role.value}:{k.status.value}:{k.qty}" for k in kids if k.group_id is None)
        # cells are data, never rich markup: "oco:new:9" must not render the ":new:" emoji
        parents.add_row(
            *(
                Text(cell)
                for cell in (
                    order.client_order_id,
                    order.symbol,
                    order.status.value,
                    f"{order.filled_qty}/{order.qty}",
                    _protection_cell(state is not None, covered, target),
                    children or "-",
                )
            )
        )
    alert_table = Table(title="Open alerts")
    for column in ("kind", "key", "since", "message"):
        alert_table.add_column(column)
    for alert in alerts:
        since = alert.raised_at.isoformat(timespec="seconds")
        alert_table.add_row(*(Text(cell) for cell in (alert.kind, alert.key, since, alert.message)))
    return [parents, alert_table]


def _protection_cell(has_plan: bool, covered: Decimal, target: Decimal) -> str:
    # one shape for every row: "covered/target ok", "covered/target SHORT n" (or OVER n), "no plan"
    if not has_plan:
        return "no plan"
    if covered == target:
        return f"{covered}/{target} ok"
    word = "SHORT" if covered < target else "OVER"
    return f"{covered}/{target} {word} {abs(target - covered)}"
