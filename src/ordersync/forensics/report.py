"""The incident report as data: what `render_markdown` and `render_json` print.

Everything the seed report states by hand is a field here, computed from the records: the summary
figures, one row per parent order, delay buckets, parents still failing after N hours, the most affected
symbols, refusals by code, the evidence behind the root cause and the verdict, and the parse statistics.
Frozen dataclasses over stdlib types (`Decimal`, aware UTC `datetime`, `timedelta`). Stdlib only.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from ordersync.forensics.stats import ParseStats


class Cause(StrEnum):
    """Why a `40310000` happened, as far as the error bodies show."""

    SELL_BEFORE_FILL = "sell_before_fill"
    RESERVED_BY_OPEN_ORDER = "reserved_by_open_order"
    OVERSIZED_SELL = "oversized_sell"
    MIXED = "mixed"
    UNDETERMINED = "undetermined"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Evidence:
    """Counts of `40310000` bodies by what they show (docs/alpaca.md §4, §6.3).

    - `no_position`: `existing_qty` 0, the sell came before the buy filled;
    - `short_sell_refusals`: "cannot open a short sell while a long buy order is open", same cause;
    - `wash_trade_refusals`: "potential wash trade detected", a sell against the still-open buy (a stop
      beside a working limit entry), same cause;
    - `all_reserved`: `existing_qty` > 0 and `held_for_orders` = `existing_qty`, the shares existed and
      another open order already reserved all of them;
    - `partly_reserved`: shares existed but fewer were free than the sell asked for (typically a partly
      filled parent with a child sized to the whole order);
    - `no_qty_fields`: the body does not say.

    `related_to_listed` / `related_to_other` / `related_absent` say whether `related_orders` names the
    order the report lists for the row, a different order (e.g. a sibling child), or nothing.
    """

    bodies: int = 0
    no_position: int = 0
    short_sell_refusals: int = 0
    wash_trade_refusals: int = 0
    all_reserved: int = 0
    partly_reserved: int = 0
    no_qty_fields: int = 0
    related_to_listed: int = 0
    related_to_other: int = 0
    related_absent: int = 0

    @property
    def sell_before_fill(self) -> int:
        return self.no_position + self.short_sell_refusals + self.wash_trade_refusals


@dataclass(frozen=True, slots=True)
class OrderRef:
    """An order the evidence names (the competing order, the parent), with what is known about it.

    `source` says where the facts came from: "broker export", "log", or "inferred from the bodies" (a
    `related_orders` entry with every share held is an open sell, whatever the log calls it).
    """

    broker_order_id: str
    client_order_id: str | None
    side: str | None
    qty: Decimal | None
    status: str | None
    type: str | None
    parent_id: str | None
    source: str
    refusals: int


@dataclass(frozen=True, slots=True)
class Exposure:
    """Shares of one parent left without the protection a refused child was meant to give.

    From `start` (the parent's fill, or the first refusal showing the shares existed) to `end` (the first
    sell of the symbol accepted after the last refusal, or the last refusal itself: then `open_at_end`,
    as nothing in the evidence shows the position protected afterwards, and the figure is a lower bound).
    """

    qty: Decimal
    start: datetime
    end: datetime
    open_at_end: bool
    ended_by: str | None

    @property
    def share_hours(self) -> Decimal:
        seconds = Decimal((self.end - self.start) // timedelta(microseconds=1)) / Decimal(1_000_000)
        return self.qty * seconds / Decimal(3600)


@dataclass(frozen=True, slots=True)
class SymbolExposure:
    """Exposure summed over the parents of one symbol."""

    symbol: str
    parents: int
    max_qty: Decimal
    share_hours: Decimal
    first_start: datetime
    last_end: datetime
    open_at_end: bool


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    """One thing that happened to an order, for the timeline table and the SVG."""

    at: datetime
    symbol: str
    kind: str  # submitted, filled, refused, refusals_end, competing, exposure_start, exposure_end
    order: str | None
    detail: str


@dataclass(frozen=True, slots=True)
class CauseShare:
    """How many parents (and their refusals) one cause explains."""

    cause: Cause
    parents: int
    refusals: int


@dataclass(frozen=True, slots=True)
class MergeNote:
    """Records counted once because the evidence says they are the same refusal, and why."""

    reason: str
    count: int


@dataclass(frozen=True, slots=True)
class ParentIssue:
    """One order the refusals point at (via `related_orders`, or by symbol when a body names none).

    `broker_order_id` is `None` for refusals that could not be linked to any order (one row per symbol).
    `submitted_at` is `None` when the log has no submission line for the order.
    """

    broker_order_id: str | None
    symbol: str | None
    side: str | None
    client_order_id: str | None
    submitted_at: datetime | None
    first_error_at: datetime | None
    last_error_at: datetime | None
    errors: int
    untimed_errors: int
    linked_by_symbol: int
    child_kinds: tuple[tuple[str, int], ...]
    platform_orders: tuple[int, ...]
    evidence: Evidence
    cause: Cause
    listed_role: str = "unknown"  # what the row's order is: "parent", "competing order" or "unknown"
    listed_note: str | None = None
    parent_order_id: str | None = None  # the true parent, when an export shows the row's order is a leg
    competing: tuple[OrderRef, ...] = ()
    quotes: tuple[tuple[str, str], ...] = ()  # (body class, the body as logged), one per class
    requested_qty: Decimal | None = None
    qty: Decimal | None = None
    filled_qty: Decimal | None = None
    filled_at: datetime | None = None
    child_ids: tuple[str, ...] = ()
    exposure: Exposure | None = None

    @property
    def delay(self) -> timedelta | None:
        """Time from the submission to the first refusal."""
        if self.submitted_at is None or self.first_error_at is None:
            return None
        return self.first_error_at - self.submitted_at

    @property
    def failing_for(self) -> timedelta | None:
        """Time from the submission (or the first refusal, without one) to the last refusal."""
        start = self.submitted_at or self.first_error_at
        if start is None or self.last_error_at is None:
            return None
        return self.last_error_at - start


@dataclass(frozen=True, slots=True)
class DelayBuckets:
    """Refusals by delay since their parent's submission: < 5 min, 5-20 min, > 20 min, unknown."""

    short: int
    medium: int
    long: int
    unknown: int


@dataclass(frozen=True, slots=True)
class SymbolCount:
    symbol: str
    errors: int
    parents: int


@dataclass(frozen=True, slots=True)
class CodeCount:
    """Refusals with one code and message pattern (digits replaced by N)."""

    code: int | None
    message: str
    count: int


@dataclass(frozen=True, slots=True)
class Verdict:
    """The overall root cause and the paragraph that argues it from the counts."""

    cause: Cause
    headline: str
    text: str
    contradicts_pending_reading: bool


@dataclass(frozen=True, slots=True)
class Summary:
    """The executive summary. `issues` counts every `40310000` refusal, after merging duplicates."""

    issues: int
    issues_by_kind: tuple[tuple[str, int], ...]
    rejections: int
    parents: int
    unlinked_issues: int
    symbols: int
    submissions: int
    first_error_at: datetime | None
    last_error_at: datetime | None
    min_delay: timedelta | None
    max_delay: timedelta | None
    mean_delay: timedelta | None
    duplicates_merged: int


@dataclass(frozen=True, slots=True)
class IncidentReport:
    """Everything `ordersync analyze` reports; `stats` is `None` when records did not come from logs."""

    source: str
    summary: Summary
    parents: Sequence[ParentIssue]  # built row by row from compact columns when read (analysis.py)
    buckets: DelayBuckets
    still_failing_hours: float
    still_failing: tuple[ParentIssue, ...]
    symbols: tuple[SymbolCount, ...]
    by_code: tuple[CodeCount, ...]
    evidence: Evidence
    verdict: Verdict
    stats: ParseStats | None
    causes: tuple[CauseShare, ...] = ()
    exposures: tuple[SymbolExposure, ...] = ()
    timeline: tuple[TimelineEvent, ...] = ()
    next_steps: tuple[str, ...] = ()
    merges: tuple[MergeNote, ...] = ()
    notes: tuple[str, ...] = ()
    broker_export: bool = False
    logged_orders: Collection[str] = ()  # every broker order id a submission line names (a view, no copy)

    @property
    def found_problems(self) -> bool:
        """True when the broker refused anything: the CLI's exit code 1 (docs/operations.md §6)."""
        return self.summary.rejections > 0
