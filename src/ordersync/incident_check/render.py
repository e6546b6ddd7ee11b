"""The validation as JSON, Markdown and HTML (each a section of the analyze report)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from html import escape

from ordersync.incident_check.model import BUDGET_PER_MINUTE, BrokerCheck
from ordersync.incident_check.verdict import hm, holder_text


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
        at = hm(o.updated_at) if o and o.filled_qty > 0 else "—"
        row = f"| {c.order_id} | {c.symbol or '?'} | {status} | {filled} | {at} | {c.outcome} |"
        lines.append(f"{row} {_cell(c.verdict)} |")
    lines += ["", "| Symbol | Shares held | Available | Held by open sells | Unprotected now |"]
    lines.append("|--------|-------------|-----------|--------------------|-----------------|")
    for s in check.symbols:
        holders = "; ".join(holder_text(h) for h in s.holders) or "none"
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
            hm(o.updated_at) if o and o.filled_qty > 0 else "—",
            c.outcome,
            c.verdict,
        )
        yield "<tr>" + "".join(f"<td>{escape(x)}</td>" for x in cells) + "</tr>"
    yield "</table>\n<table><tr><th>Symbol</th><th>Shares held</th><th>Available</th>"
    yield "<th>Held by open sells</th><th>Unprotected now</th></tr>"
    for s in check.symbols:
        holders = "; ".join(holder_text(h) for h in s.holders) or "none"
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
