"""The small text helpers every Markdown section shares: times, delays, cells, the rows shown.

Times are UTC, shown as ``HH:MM:SS`` when everything happened on one day, else with the date (`Clock`);
delays are minutes to one decimal, rounded half up; text from the log is escaped for table cells.
Split from `render_markdown.py`. Stdlib only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from ordersync.forensics.report import IncidentReport, ParentIssue

DEFAULT_MAX_ROWS = 200


@dataclass(frozen=True, slots=True)
class Shown:
    """The rows a table lists, and how many it leaves out (the note says so)."""

    rows: Sequence[ParentIssue]
    hidden: int

    def note(self) -> list[str]:
        if not self.hidden:
            return []
        total = len(self.rows) + self.hidden
        return [
            f"\n_{len(self.rows)} of {total} orders shown (those with the most refusals); JSON lists all._"
        ]


def rows_shown(parents: Sequence[ParentIssue], max_rows: int | None) -> Shown:
    """At most `max_rows` rows (those with the most refusals, in table order); `None` keeps all."""
    if max_rows is None or len(parents) <= max_rows:
        return Shown(list(parents), 0)
    return Shown(most_refused(parents, max_rows), len(parents) - max_rows)


def most_refused(parents: Sequence[ParentIssue], n: int) -> list[ParentIssue]:
    """The `n` rows with the most refusals, in table order (read from the columns when they are lazy)."""
    pick = getattr(parents, "most_refused", None)
    if pick is not None:
        return [parents[i] for i in pick(n)]
    errors = [p.errors for p in parents]
    ranked = sorted(range(len(errors)), key=lambda i: (-errors[i], i))[:n]
    return [parents[i] for i in sorted(ranked)]


class Clock:
    """Format times as HH:MM:SS when every row is on one UTC day, else with the date."""

    def __init__(self, report: IncidentReport) -> None:
        days = getattr(report.parents, "days", None)  # the rows' own columns: no row built for this
        if days is not None:
            self.one_day = days() <= 1
            return
        stamps = [t for p in report.parents for t in (p.submitted_at, p.first_error_at, p.last_error_at) if t]
        self.one_day = len({t.date() for t in stamps}) <= 1

    def __call__(self, at: datetime | None) -> str:
        if at is None:
            return "unknown"
        return at.strftime("%H:%M:%S" if self.one_day else "%Y-%m-%d %H:%M:%S")


def minutes(delta: timedelta | None) -> str:
    """Format a delay as minutes with one decimal, rounded half up ("3.4 min")."""
    if delta is None:
        return "unknown"
    value = Decimal(delta // timedelta(microseconds=1)) / Decimal(60_000_000)
    return f"{value.quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)} min"


def plural(n: int, noun: str) -> str:
    """`1 order`, `2 orders`."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def order_cell(p: ParentIssue) -> str:
    """The order id as a table cell, or `(not linked)`."""
    return cell(p.broker_order_id) if p.broker_order_id else "(not linked)"


def in_hours(delta: timedelta | None) -> str:
    """A duration in hours to one decimal, or `unknown`."""
    return "unknown" if delta is None else f"{delta / timedelta(hours=1):.1f} h"


def cell(text: str | None) -> str:
    """Log text made safe for a table cell (one line, pipes escaped), or `unknown`."""
    return escape(text).replace("|", "\\|") if text else "unknown"


def escape(text: str) -> str:
    """Log text on one line: whitespace runs (newlines included) become one space."""
    return " ".join(text.split())


def dec(value: Decimal | None) -> str:
    """A quantity as written, without exponent or trailing zeros, or `unknown`."""
    return "unknown" if value is None else format(value.normalize(), "f")


def longest_run(text: str, char: str) -> int:
    """The longest run of `char` in `text` (a fence must be longer than any run inside it)."""
    longest = run = 0
    for c in text:
        run = run + 1 if c == char else 0
        longest = max(longest, run)
    return longest
