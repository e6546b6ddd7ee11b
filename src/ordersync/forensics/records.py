"""Normalized records: what one log line (or one journal row) says happened at the broker.

These are the only types the analysis consumes, so anything that can produce them can be analyzed: the
log parser (`lines.py`), or the CLI converting ordersync's own journal rows (forensics must not import the
store). A `Submission` is an order the broker accepted; a `Rejection` is an Alpaca error body with where
it came from. Quantities are `Decimal`; times are timezone-aware UTC or `None` when the source gave no
time (a DB-log row without a timestamp prefix): no time is ever invented. Submissions and refusals are
plain (not frozen) slotted dataclasses on purpose: a frozen dataclass sets each field through
`object.__setattr__`, which tripled the cost of building one per log line; treat them as immutable all
the same. Stdlib only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

# Alpaca's 403 business-refusal code: insufficient qty, short sell while a buy is open, wash trade.
INSUFFICIENT_QTY_CODE = 40310000


class Origin(StrEnum):
    """Where a record was read; a DB-log row may repeat an Alpaca log line for the same event."""

    ALPACA_LOG = "alpaca_log"
    DB_LOG = "db_log"
    JOURNAL = "journal"


@dataclass(slots=True, eq=True)
class Submission:
    """An order the broker accepted (`Successfully submitted order to Alpaca: broker_order_id=...`)."""

    broker_order_id: str
    at: datetime | None
    symbol: str | None = None
    side: str | None = None
    qty: Decimal | None = None
    client_order_id: str | None = None
    origin: Origin = Origin.ALPACA_LOG


@dataclass(frozen=True, slots=True)
class ErrorBody:
    """The fields of an Alpaca error body (docs/alpaca.md §4); absent fields are `None`.

    Hashable on purpose: identical bodies are the unit of deduplication and aggregation.
    """

    code: int | None
    message: str
    symbol: str | None = None
    available: Decimal | None = None
    existing_qty: Decimal | None = None
    held_for_orders: Decimal | None = None
    related_orders: tuple[str, ...] = ()

    @property
    def is_40310000(self) -> bool:
        return self.code == INSUFFICIENT_QTY_CODE


@dataclass(slots=True, eq=True)
class Rejection:
    """A broker refusal: an error body, when it was logged, and the context the line carried.

    `child_kind` and `platform_order` come from DB-log rows (`TP for order 131 | Error: ...`);
    `symbol`, `client_order_id` and `side` from `key=value` tokens before the body, or from a journal row.
    `repaired` marks a body that was not valid JSON and was read by the tolerant field extractor.
    `raw_body` is the body as the line wrote it (clipped), kept for a repaired body only (a well-formed one
    is quoted from its fields), to quote in the report. `anchor_us` is set on a
    record without a time of its own: the time of the record on the nearest line before it in the same
    input, when that line is at most a few lines up (one handler writing both; see `dedupe.py`).
    """

    body: ErrorBody
    at: datetime | None
    origin: Origin = Origin.ALPACA_LOG
    child_kind: str | None = None
    platform_order: int | None = None
    symbol: str | None = None
    client_order_id: str | None = None
    side: str | None = None
    repaired: bool = False
    raw_body: str | None = None
    anchor_us: int | None = None


LogRecord = Submission | Rejection
