"""The report's per-parent sections: cause distribution, each parent's evidence, exposure, timeline.

Also the merges the counting made and the next steps. Each section is one function returning Markdown;
`render_markdown.py` puts them in order. Split from it. Stdlib only.
"""

from __future__ import annotations

from decimal import Decimal

from ordersync.forensics.render_md_text import Clock, Shown, cell, dec, escape, longest_run, order_cell
from ordersync.forensics.report import IncidentReport, OrderRef
from ordersync.forensics.verdict import CAUSE_LABELS


def exposure_line(report: IncidentReport) -> str:
    """The one-line exposure summary of the executive section."""
    if not report.exposures:
        return "none measurable from this evidence"
    total = sum((e.share_hours for e in report.exposures), Decimal(0))
    still = [e.symbol for e in report.exposures if e.open_at_end]
    tail = f"; no protection seen after the last refusal for {', '.join(still[:10])}" if still else ""
    return f"{dec(total)} share-hours unprotected over {len(report.exposures)} symbol(s){tail}"


def distribution(report: IncidentReport) -> str:
    """The cause distribution across parents (not a vote over bodies)."""
    lines = [
        "### Cause Distribution (across parents)",
        "Each parent's cause is decided from its own bodies; this table counts parents, not bodies.",
        "",
        "| Cause | Parents | Refusals |",
        "|-------|---------|----------|",
    ]
    lines += [f"| {CAUSE_LABELS[c.cause]} | {c.parents} | {c.refusals} |" for c in report.causes]
    return "\n".join(lines if report.causes else [*lines, "| (none) | 0 | 0 |"])


def per_parent(shown: Shown) -> str:
    """Each shown parent's cause, evidence, competing order and quoted bodies."""
    lines = ["## Per Parent: Cause, Body, Competing Order"]
    for p in shown.rows:
        lines += ["", f"### {order_cell(p)} ({cell(p.symbol)})", f"- **Cause**: {CAUSE_LABELS[p.cause]}"]
        lines.append(
            f"- **This order is**: {p.listed_role}" + (f". {escape(p.listed_note)}" if p.listed_note else "")
        )
        if p.parent_order_id:
            lines.append(f"- **Parent (from the broker export)**: {cell(p.parent_order_id)}")
        facts = [
            f"side {p.side}" if p.side else None,
            f"qty {dec(p.qty)}" if p.qty is not None else None,
            f"filled {dec(p.filled_qty)}" if p.filled_qty is not None else None,
            f"first fill {p.filled_at:%Y-%m-%d %H:%M:%S}" if p.filled_at else None,
            f"refused child asked for {dec(p.requested_qty)}" if p.requested_qty is not None else None,
        ]
        known = ", ".join(f for f in facts if f)
        if known:
            lines.append(f"- **Known**: {known}")
        if p.child_ids:
            lines.append(f"- **Refused children**: {', '.join(cell(c) for c in p.child_ids)}")
        for c in p.competing:
            lines.append(f"- **Competing order** {_ref(c)}")
        for kind, raw in p.quotes:
            fence = "~" * max(3, longest_run(raw, "~") + 1)
            lines += [f"- **Body** ({kind.replace('_', ' ')}):", "", f"{fence}json", raw, fence]
    if not shown.rows:
        lines.append("No parent.")
    return "\n".join(lines + shown.note())


def _ref(c: OrderRef) -> str:
    bits = [
        c.side or "side unknown",
        dec(c.qty) if c.qty is not None else "qty unknown",
        c.type or "",
        f"status {c.status}" if c.status else "status unknown",
    ]
    who = cell(c.broker_order_id) + (
        f" (client_order_id {cell(c.client_order_id)})" if c.client_order_id else ""
    )
    parent = f", leg of {cell(c.parent_id)}" if c.parent_id else ""
    named = f"named in {c.refusals} refusal(s); source: {c.source}"
    return f"{who}: {' '.join(b for b in bits if b)}{parent}; {named}"


def exposure(report: IncidentReport, clock: Clock) -> str:
    """Unprotected quantity times duration, per symbol."""
    lines = [
        "## Exposure per Symbol",
        "Unprotected quantity × time: the refused child's quantity from the parent's fill (or the first "
        "refusal showing the shares existed) until a sell of the symbol was accepted after the last "
        "refusal; without one (marked open) until the end of the broker export, or with no export until "
        "the parent's last refusal (what the refusals prove: a lower bound).",
        "",
        "| Symbol | Parents | Max Unprotected Qty | From | To | Share-hours | Open at end |",
        "|--------|---------|---------------------|------|----|-------------|-------------|",
    ]
    lines += [
        f"| {cell(e.symbol)} | {e.parents} | {dec(e.max_qty)} | {clock(e.first_start)} "
        f"| {clock(e.last_end)} "
        f"| {dec(e.share_hours.quantize(Decimal('0.01')))} | {'yes' if e.open_at_end else 'no'} |"
        for e in report.exposures
    ]
    return "\n".join(lines if report.exposures else [*lines, "| (none) | 0 | 0 | | | 0 | |"])


def timeline(report: IncidentReport, clock: Clock, max_rows: int | None) -> str:
    """The timeline table of the parents shown."""
    events = report.timeline
    limit = len(events) if max_rows is None else max_rows * 3
    lines = [
        "## Timeline",
        "| Time | Symbol | Event | Order | Detail |",
        "|------|--------|-------|-------|--------|",
    ]
    lines += [
        f"| {clock(e.at)} | {cell(e.symbol)} | {e.kind.replace('_', ' ')} | {cell(e.order)} "
        f"| {cell(e.detail)} |"
        for e in events[:limit]
    ]
    if len(events) > limit:
        lines.append(f"\n_{limit} of {len(events)} events shown; JSON lists all._")
    return "\n".join(lines if events else [*lines, "| | | (no event) | | |"])


def merged(report: IncidentReport) -> str:
    """What the counting merged, and why."""
    lines = ["## What Was Merged, and Why"]
    if not report.merges:
        return "\n".join([*lines, "Nothing was merged: every record counts as its own refusal."])
    lines += [f"- {m.count} × {m.reason}" for m in report.merges]
    lines.append(
        "- Nothing else is merged: identical bodies elsewhere in the input (a retried child) count as "
        "refusals of their own."
    )
    return "\n".join(lines)


def next_steps(report: IncidentReport) -> str:
    """What to do next, from the verdict."""
    lines = ["## Next Steps"]
    lines += [f"{i}. {step}" for i, step in enumerate(report.next_steps, 1)]
    return "\n".join(lines if report.next_steps else [*lines, "Nothing to do: no refusal to act on."])
