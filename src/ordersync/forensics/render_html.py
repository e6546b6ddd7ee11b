"""Render the incident report as one self-contained HTML page, with an SVG timeline per symbol.

No external asset of any kind (no script, stylesheet, font or image link): the page is mailed or attached
to a ticket and must render offline. CSS is inline in a `<style>` element, each timeline is inline SVG,
every text from the log is escaped. Each symbol's SVG has one lane per parent row: the span from the
submission to the last refusal, the exposure as a red bar, and marks for the submission, the fill and the
first and last refusal, each with a `<title>` tooltip. Tables list at most `max_rows` parents (those with
the most refusals) like the Markdown. Stdlib only.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from html import escape
from typing import Final

from ordersync.forensics.render_md_text import DEFAULT_MAX_ROWS, minutes, most_refused
from ordersync.forensics.report import IncidentReport, ParentIssue
from ordersync.forensics.verdict import CAUSE_LABELS

MAX_SYMBOL_CHARTS: Final = 60
_W: Final = 960
_LEFT: Final = 150
_LANE: Final = 22
_STYLE: Final = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em;color:#1b1f24;
max-width:1100px}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccd;padding:.25em .5em;text-align:left}
th{background:#eef}code,pre{font:12px ui-monospace,Menlo,Consolas,monospace}pre{background:#f6f8fa;
padding:.6em;overflow-x:auto;white-space:pre-wrap;word-break:break-all}.muted{color:#667}
.open{color:#b00;font-weight:600}svg{background:#fcfcfd;border:1px solid #dde}h3{margin-top:1.6em}
"""


def render_html(report: IncidentReport, *, max_rows: int | None = DEFAULT_MAX_ROWS) -> str:
    """Return the report as one HTML document."""
    return "".join(iter_html(report, max_rows=max_rows))


def iter_html(
    report: IncidentReport, *, max_rows: int | None = DEFAULT_MAX_ROWS, extra: Iterable[str] = ()
) -> Iterator[str]:
    """The page in pieces (one table row or one chart at a time); `extra` pieces go before the end."""
    s = report.summary
    yield '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
    yield "<title>ordersync analyze: incident report</title><style>" + _STYLE + "</style></head><body>\n"
    yield "<h1>Order Status Synchronization Issues Analysis</h1>\n"
    yield f'<p class="muted">From {_e(report.source)}. All times UTC.</p>\n'
    yield "<h2>Executive Summary</h2><ul>"
    yield f"<li><b>Total issues</b>: {s.issues} <code>40310000</code> refusals; {s.rejections} of all codes"
    yield f"</li><li><b>Parents</b>: {s.parents} ({s.unlinked_issues} not linked); {s.symbols} symbols</li>"
    yield f"<li><b>Root cause</b>: {_e(report.verdict.headline)}</li>"
    yield f"<li><b>Merged</b>: {s.duplicates_merged} records repeating a refusal already counted</li></ul>\n"
    yield f"<p>{_e(report.verdict.text).replace('**', '')}</p>\n"
    yield from _distribution(report)
    shown = _shown(report.parents, max_rows)
    yield from _parents(shown, len(report.parents))
    yield from _exposure(report)
    yield from _charts(report, shown)
    yield "<h2>Next Steps</h2><ol>" + "".join(f"<li>{_e(x)}</li>" for x in report.next_steps) + "</ol>\n"
    if report.merges:
        yield "<h2>What Was Merged, and Why</h2><ul>"
        yield "".join(f"<li>{m.count} &times; {_e(m.reason)}</li>" for m in report.merges) + "</ul>\n"
    if report.notes:
        yield "<h2>Notes</h2><ul>" + "".join(f"<li>{_e(n)}</li>" for n in report.notes) + "</ul>\n"
    if report.stats is not None:
        st = report.stats
        yield (
            f"<h2>Parse Statistics</h2><p>{st.lines_read} lines read; {st.recognised} parsed; "
            f"{st.unparseable} unparseable; {st.repaired_bodies} repaired bodies; "
            f"{st.duplicate_inputs} duplicate inputs skipped.</p>\n"
        )
    yield from extra
    yield "</body></html>\n"


def _distribution(report: IncidentReport) -> Iterator[str]:
    yield "<h2>Cause Distribution (across parents)</h2>"
    yield "<table><tr><th>Cause</th><th>Parents</th><th>Refusals</th></tr>"
    for c in report.causes:
        yield f"<tr><td>{_e(CAUSE_LABELS[c.cause])}</td><td>{c.parents}</td><td>{c.refusals}</td></tr>"
    yield "</table>\n"


def _shown(parents: Sequence[ParentIssue], max_rows: int | None) -> list[ParentIssue]:
    if max_rows is None or len(parents) <= max_rows:
        return list(parents)
    return most_refused(parents, max_rows)


def _parents(shown: Sequence[ParentIssue], total: int) -> Iterator[str]:
    yield "<h2>Per Parent</h2>"
    if len(shown) < total:
        yield f'<p class="muted">{len(shown)} of {total} orders shown (most refusals); JSON lists all.</p>'
    yield (
        "<table><tr><th>Order</th><th>Symbol</th><th>Is</th><th>Errors</th><th>Delay</th><th>Cause</th>"
        "<th>Competing order</th><th>Body</th></tr>"
    )
    for p in shown:
        competing = "<br>".join(
            f"{_e(c.broker_order_id)}: {_e(c.side or 'side ?')} {_num(c.qty)} {_e(c.status or '')} "
            f'<span class="muted">({_e(c.source)})</span>'
            for c in p.competing
        )
        body = "".join(f"<pre>{_e(raw)}</pre>" for _, raw in p.quotes[:1])
        note = f'<br><span class="muted">{_e(p.listed_note)}</span>' if p.listed_note else ""
        yield (
            f"<tr><td><code>{_e(p.broker_order_id or '(not linked)')}</code></td>"
            f"<td>{_e(p.symbol or '?')}</td>"
            f"<td>{_e(p.listed_role)}{note}</td><td>{p.errors}</td><td>{_e(minutes(p.delay))}</td>"
            f"<td>{_e(CAUSE_LABELS[p.cause])}</td><td>{competing or '&mdash;'}</td><td>{body}</td></tr>"
        )
    yield "</table>\n"


def _exposure(report: IncidentReport) -> Iterator[str]:
    yield "<h2>Exposure per Symbol</h2>"
    if not report.exposures:
        yield "<p>None measurable from this evidence.</p>\n"
        return
    yield (
        "<table><tr><th>Symbol</th><th>Parents</th><th>Max unprotected qty</th><th>From</th><th>To</th>"
        "<th>Share-hours</th><th>Open at end</th></tr>"
    )
    for e in report.exposures:
        open_cell = '<span class="open">yes</span>' if e.open_at_end else "no"
        yield (
            f"<tr><td>{_e(e.symbol)}</td><td>{e.parents}</td><td>{_num(e.max_qty)}</td><td>{_t(e.first_start)}</td>"
            f"<td>{_t(e.last_end)}</td><td>{_num(e.share_hours.quantize(Decimal('0.01')))}</td><td>{open_cell}</td></tr>"
        )
    yield "</table>\n"


def _charts(report: IncidentReport, shown: Sequence[ParentIssue]) -> Iterator[str]:
    yield "<h2>Timeline</h2>"
    by_symbol: dict[str, list[ParentIssue]] = {}
    for p in shown:
        by_symbol.setdefault(p.symbol or "?", []).append(p)
    symbols = sorted(by_symbol, key=lambda k: (-sum(p.errors for p in by_symbol[k]), k))
    if len(symbols) > MAX_SYMBOL_CHARTS:
        yield f'<p class="muted">{MAX_SYMBOL_CHARTS} of {len(symbols)} symbols charted (most refusals).</p>'
    for symbol in symbols[:MAX_SYMBOL_CHARTS]:
        yield f"<h3>{_e(symbol)}</h3>\n" + _svg(by_symbol[symbol])
    if not symbols:
        yield "<p>No event to chart.</p>"


def _times(p: ParentIssue) -> list[datetime]:
    stamps = [p.submitted_at, p.filled_at, p.first_error_at, p.last_error_at]
    if p.exposure is not None:
        stamps += [p.exposure.start, p.exposure.end]
    return [t for t in stamps if t is not None]


def _svg(parents: Sequence[ParentIssue]) -> str:
    stamps = [t for p in parents for t in _times(p)]
    height = 30 + _LANE * len(parents)
    if not stamps:
        return f'<p class="muted">No timestamps for {len(parents)} order(s).</p>\n'
    lo, hi = min(stamps), max(stamps)
    span = max((hi - lo).total_seconds(), 1.0)

    def x(at: datetime) -> float:
        return round(_LEFT + (at - lo).total_seconds() / span * (_W - _LEFT - 20), 1)

    out = [
        f'<svg width="{_W}" height="{height}" viewBox="0 0 {_W} {height}" role="img"><title>timeline</title>',
        f'<text x="{_LEFT}" y="14" font-size="11" fill="#667">{_t(lo)}</text>',
        f'<text x="{_W - 20}" y="14" font-size="11" fill="#667" text-anchor="end">{_t(hi)}</text>',
    ]
    for i, p in enumerate(parents):
        y = 30 + _LANE * i
        label = (p.broker_order_id or "(not linked)")[:18]
        out.append(f'<text x="4" y="{y + 4}" font-size="11">{_e(label)}</text>')
        times = _times(p)
        if p.exposure is not None:
            e = p.exposure
            w = max(x(e.end) - x(e.start), 2)
            tip = f"{_num(e.qty)} shares unprotected {_t(e.start)} to {_t(e.end)}" + (
                " (open)" if e.open_at_end else ""
            )
            out.append(
                f'<rect x="{x(e.start)}" y="{y - 6}" width="{w}" height="12" fill="#e5484d" opacity="0.35">'
                f"<title>{_e(tip)}</title></rect>"
            )
        if len(times) > 1:
            out.append(f'<line x1="{x(min(times))}" y1="{y}" x2="{x(max(times))}" y2="{y}" stroke="#99a"/>')
        if p.submitted_at:
            out.append(_mark("circle", x(p.submitted_at), y, "#3b82f6", f"submitted {_t(p.submitted_at)}"))
        if p.filled_at:
            out.append(_mark("fill", x(p.filled_at), y, "#16a34a", f"filled {_t(p.filled_at)}"))
        if p.first_error_at:
            out.append(_mark("x", x(p.first_error_at), y, "#b91c1c", f"first refusal {_t(p.first_error_at)}"))
        if p.last_error_at and p.last_error_at != p.first_error_at:
            tip = f"last of {p.errors} refusals {_t(p.last_error_at)}"
            out.append(_mark("x", x(p.last_error_at), y, "#b91c1c", tip))
    out.append("</svg>\n")
    return "".join(out)


def _mark(kind: str, cx: float, cy: int, color: str, tip: str) -> str:
    title = f"<title>{_e(tip)}</title>"
    if kind == "circle":
        return f'<circle cx="{cx}" cy="{cy}" r="5" fill="{color}">{title}</circle>'
    if kind == "fill":
        return f'<rect x="{cx - 5}" y="{cy - 5}" width="10" height="10" fill="{color}">{title}</rect>'
    return (
        f'<path d="M{cx - 5},{cy - 5}L{cx + 5},{cy + 5}M{cx - 5},{cy + 5}L{cx + 5},{cy - 5}" '
        f'stroke="{color}" stroke-width="2">{title}</path>'
    )


def _e(text: str | None) -> str:
    return escape(text or "", quote=True)


def _t(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S")


def _num(value: Decimal | None) -> str:
    return "?" if value is None else format(value.normalize(), "f")
