"""The contract of `ordersync analyze --format json` as pydantic models; docs/analyze.schema.json from them.

The renderer (`render_json.py`) writes plain dicts; these models state the same shape for consumers and
tests (`AnalyzeReport.model_validate_json` must accept every report, with no unknown key). Regenerate the
published schema after a change with ``python -m ordersync.forensics.schema > docs/analyze.schema.json``;
a test fails while the file is stale. Loaded only by the tests and this command (pydantic stays out of the
`analyze` path).
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

CauseValue = Literal[
    "sell_before_fill", "reserved_by_open_order", "oversized_sell", "mixed", "undetermined", "none"
]
DecimalText = str  # a decimal number as a string, never a float


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Delay(_Model):
    seconds: float
    minutes: float


class Summary(_Model):
    issues: int = Field(description="distinct 40310000 refusals after merging")
    issues_by_kind: dict[str, int]
    rejections: int = Field(description="distinct broker refusals of every code")
    parents: int
    unlinked_issues: int
    symbols: int
    submissions: int
    first_error_at: str | None
    last_error_at: str | None
    min_delay: Delay | None
    max_delay: Delay | None
    mean_delay: Delay | None
    duplicates_merged: int


class Evidence(_Model):
    bodies: int
    no_position: int
    short_sell_refusals: int
    wash_trade_refusals: int
    all_reserved: int
    partly_reserved: int
    no_qty_fields: int
    related_to_listed: int
    related_to_other: int
    related_absent: int


class OrderRef(_Model):
    broker_order_id: str
    client_order_id: str | None
    side: str | None
    qty: DecimalText | None
    status: str | None
    type: str | None
    parent_id: str | None
    source: str = Field(
        description='"broker export", "log", "inferred from the bodies" or "named by the broker only"'
    )
    refusals: int


class Exposure(_Model):
    qty: DecimalText
    from_: str = Field(alias="from")
    to: str
    open_at_end: bool
    ended_by: str | None
    share_hours: DecimalText


class Parent(_Model):
    broker_order_id: str | None = Field(description="the order the refusals point at; null: not linked")
    symbol: str | None
    side: str | None
    client_order_id: str | None
    submitted_at: str | None
    first_error_at: str | None
    last_error_at: str | None
    delay: Delay | None
    failing_for: Delay | None
    errors: int
    untimed_errors: int
    linked_by_symbol: int
    child_kinds: dict[str, int]
    platform_orders: list[int]
    evidence: Evidence
    cause: CauseValue
    listed_role: Literal["parent", "competing order", "unknown"]
    listed_note: str | None
    parent_order_id: str | None
    competing_orders: list[OrderRef]
    bodies: dict[str, str] = Field(description="one body as logged per body class")
    requested_qty: DecimalText | None
    qty: DecimalText | None
    filled_qty: DecimalText | None
    filled_at: str | None
    child_client_order_ids: list[str]
    exposure: Exposure | None


class DelayBuckets(_Model):
    short: int
    medium: int
    long: int
    unknown: int


class StillFailing(_Model):
    hours: float
    parents: list[str | None]


class SymbolCount(_Model):
    symbol: str
    errors: int
    parents: int


class CodeCount(_Model):
    code: int | None
    message: str
    count: int


class RootCause(_Model):
    evidence: Evidence
    cause: CauseValue
    headline: str
    text: str
    contradicts_pending_reading: bool


class FileStats(_Model):
    path: str
    gzip: bool
    size_bytes: int
    lines: int
    note: str | None
    kind: Literal["log", "orders_export", "fills_export", "duplicate"]
    encoding: str
    formats: dict[str, int]
    rows: int
    notes: list[str]


class ParsedCounts(_Model):
    submissions: int
    alpaca_errors: int
    db_errors: int


class UnparseableExample(_Model):
    source: str
    line_no: int
    reason: str
    text: str


class ParseStats(_Model):
    files: list[FileStats]
    lines_read: int
    parsed: ParsedCounts
    other_lines: int
    unparseable: int
    unparseable_examples: list[UnparseableExample]
    repaired_bodies: int
    oversized_lines: int
    duplicate_inputs: int


class CauseShare(_Model):
    cause: CauseValue
    parents: int
    refusals: int


class SymbolExposure(_Model):
    symbol: str
    parents: int
    max_qty: DecimalText
    share_hours: DecimalText
    from_: str = Field(alias="from")
    to: str
    open_at_end: bool


class TimelineEvent(_Model):
    at: str
    symbol: str
    kind: Literal[
        "submitted", "filled", "competing", "refused", "refusals_end", "exposure_start", "exposure_end"
    ]
    order: str | None
    detail: str


class MergeNote(_Model):
    reason: str
    count: int


class ValidationParent(_Model):
    order_id: str = Field(description="the row's parent (its export parent when the row is a leg)")
    symbol: str | None
    log_cause: CauseValue
    status: str | None = Field(description="the order's status at the broker now; null: not known/read")
    side: str | None
    qty: DecimalText | None
    filled_qty: DecimalText | None
    filled_at: str | None = Field(description="last update of an order with fills (its last fill)")
    updated_at: str | None
    outcome: Literal["confirmed", "corrected", "unchecked"]
    verdict: str


class Holder(_Model):
    order_id: str
    client_order_id: str
    type: str | None
    status: str
    qty: DecimalText | None
    remaining: DecimalText = Field(description="shares the open sell still holds")
    submitted_at: str | None
    ours: bool = Field(description="the log names the order (else an order the log never mentions)")


class ValidationSymbol(_Model):
    symbol: str
    qty: DecimalText = Field(description="the position now")
    qty_available: DecimalText | None
    held: DecimalText
    held_by: list[Holder]
    unprotected: DecimalText = Field(description="shares no open sell covers now (position - held)")


class Validation(_Model):
    """`analyze --verify`: the broker's books now, read-only."""

    requests: int
    max_requests: int
    budget_share: str = Field(description="max_requests as a share of the 200 requests/min budget")
    unprotected_now: bool = Field(description="true: --verify exits 1")
    positions_read: bool
    parents: list[ValidationParent]
    symbols: list[ValidationSymbol]
    unknown_orders: list[str]
    unread_orders: list[str]


class AnalyzeReport(_Model):
    """`ordersync analyze --format json`: the incident report."""

    source: str
    found_problems: bool
    summary: Summary
    parents: list[Parent]
    delay_buckets: DelayBuckets
    still_failing: StillFailing
    symbols: list[SymbolCount]
    by_code: list[CodeCount]
    root_cause: RootCause
    parse_stats: ParseStats | None
    cause_distribution: list[CauseShare]
    exposure: list[SymbolExposure]
    timeline: list[TimelineEvent]
    merged: list[MergeNote]
    next_steps: list[str]
    notes: list[str]
    broker_export: bool
    validation: Validation | None = Field(default=None, description="only with --verify")


def json_schema() -> str:
    """The published JSON Schema text (docs/analyze.schema.json)."""
    schema = AnalyzeReport.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://github.com/ordersync/ordersync/docs/analyze.schema.json"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    import sys

    sys.stdout.write(json_schema())
