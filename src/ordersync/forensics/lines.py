"""Parse one log line of the three shapes the platform writes into a normalized record.

Shapes (docs/forensics.md and the seed incident):

1. ``<ts> - AlpacaAccount - INFO - Successfully submitted order to Alpaca: broker_order_id=<id>``, optionally
   followed by ``client_order_id=.. symbol=.. side=.. qty=..`` tokens;
2. ``<ts> - AlpacaAccount - ERROR - Error submitting order to Alpaca: [key=value ...] {json body}``;
3. a DB-log row inside a SQLAlchemy echo line, ``... 'TP for order 131 | Error: {json body}' ...``, with or
   without a leading timestamp (without one the record has no time).

Every line is first tested against cheap literal markers (`shape_of`); only lines carrying one are decoded
and parsed, so the common "other" line costs a few substring searches. A line that carries a marker but
cannot be read becomes `Unparseable` with a reason, never an exception. Timestamps are read as written;
a naive one (the seed's ``2025-10-10 15:59:16,078``) is taken to be UTC. Stdlib only.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import Enum
from functools import lru_cache
from typing import Final

from ordersync.forensics.body import parse_error_body
from ordersync.forensics.formats import Envelope
from ordersync.forensics.records import LogRecord, Origin, Rejection, Submission


class Shape(Enum):
    """Which of the platform's line shapes a line claims to be."""

    SUBMISSION = "submission"
    ALPACA_ERROR = "alpaca_error"
    DB_ERROR = "db_error"


@dataclass(frozen=True, slots=True)
class Unparseable:
    """A line that looks like one of ours but could not be read; `reason` says why."""

    reason: str


SUBMIT_MARK: Final = "Successfully submitted order"
ERROR_MARK: Final = "Error submitting order"
DB_MARK: Final = "| Error:"
DB_ORDER_MARK: Final = " for order "
# the same markers as bytes, for the reader's pre-filter on undecoded lines
SUBMIT_MARK_B: Final = SUBMIT_MARK.encode()
ERROR_MARK_B: Final = ERROR_MARK.encode()
DB_MARK_B: Final = DB_MARK.encode()
DB_ORDER_MARK_B: Final = DB_ORDER_MARK.encode()

_TS_RE: Final = re.compile(
    r"\s{0,8}+\[?+(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d{1,9})?(?:Z|[+-]\d{2}:?\d{2})?)"
)
_MAX_ID_CHARS: Final = 128
RAW_BODY_CHARS: Final = 400
_KINDS_RE: Final = re.compile(r"([A-Za-z][A-Za-z0-9_-]{0,31})$")


def shape_of(line: str) -> Shape | None:
    """Return the shape a line claims by its marker, or `None` for any other line."""
    if SUBMIT_MARK in line:
        return Shape.SUBMISSION
    if ERROR_MARK in line:
        return Shape.ALPACA_ERROR
    if DB_MARK in line and DB_ORDER_MARK in line:
        return Shape.DB_ERROR
    return None


def parse_line(line: str) -> LogRecord | Unparseable | None:
    """Parse one line; `None` means the line is not one of the platform's shapes ("other")."""
    shape = shape_of(line)
    return None if shape is None else parse_shape(shape, line)


def parse_shape(shape: Shape, line: str) -> LogRecord | Unparseable:
    """Parse a line already known to carry the marker of `shape`."""
    if shape is Shape.SUBMISSION:
        return _submission(line)
    if shape is Shape.ALPACA_ERROR:
        return _alpaca_error(line)
    return _db_error(line)


def leading_timestamp(line: str) -> datetime | None:
    """Read the timestamp a line starts with (naive means UTC), or `None` if it has none."""
    if line[19:20] == "," and line[23:24] == " " and line[4:5] == "-":  # the seed's format: skip the regex
        minute = _MINUTES.get(line[:16])
        if minute is None:
            minute = _minute(line[:16])
        rest = line[17:19] + line[20:23]
        if minute is not None and line[16:17] == ":" and rest.isdigit() and rest < "60":
            return minute + _SECONDS[int(rest[:2])] + _MILLIS[int(rest[2:])]
        text = line[:23]
    elif (m := _TS_RE.match(line)) is not None:
        text = m.group(1)
    else:
        return None
    try:
        ts = datetime.fromisoformat(text)
        return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: an offset that pushes year 1 out of range
        return None


_MINUTES: dict[str, datetime] = {}
_SECONDS: Final = tuple(timedelta(seconds=i) for i in range(60))
_MILLIS: Final = tuple(timedelta(milliseconds=i) for i in range(1000))


def _minute(text: str) -> datetime | None:
    # `2025-10-10 15:59` repeats on every line logged within that minute: parse it once
    try:
        at = datetime.fromisoformat(text).replace(tzinfo=UTC)
    except ValueError:
        return None
    if len(_MINUTES) >= 4096:  # a small window: lines come roughly in time order
        _MINUTES.clear()
    _MINUTES[text] = at
    return at


def _submission(line: str) -> Submission | Unparseable:
    fields = submission_fields(line[line.index(SUBMIT_MARK) + len(SUBMIT_MARK) :])
    if isinstance(fields, Unparseable):
        return fields
    order_id, symbol, side, qty, client_order_id = fields
    return Submission(
        broker_order_id=order_id,
        at=leading_timestamp(line),
        symbol=symbol,
        side=side,
        qty=qty,
        client_order_id=client_order_id,
    )


SubmissionFields = tuple[str, str | None, str | None, Decimal | None, str | None]


def submission_fields(tail: str) -> SubmissionFields | Unparseable:
    """What a submission line says after its marker: (order id, symbol, side, qty, client order id)."""
    fields = _key_values(tail)
    order_id = fields.get("broker_order_id", "")
    if not order_id:
        return Unparseable("submission without broker_order_id")
    if len(order_id) > _MAX_ID_CHARS:
        return Unparseable("broker_order_id longer than 128 characters")
    return (
        sys.intern(order_id),
        _text(fields.get("symbol")),
        _side(fields.get("side")),
        _decimal(fields.get("qty")),
        fields.get("client_order_id") or None,
    )


def _alpaca_error(line: str) -> Rejection | Unparseable:
    tail = line[line.index(ERROR_MARK) + len(ERROR_MARK) :]
    parsed = parse_error_body(tail)
    if parsed is None:
        return Unparseable("error line without a readable JSON body")
    body, repaired = parsed
    start = tail.find("{")
    prefix = tail[:start]
    context = _key_values(prefix) if "=" in prefix else {}
    return Rejection(
        body=body,
        at=leading_timestamp(line),
        origin=Origin.ALPACA_LOG,
        symbol=_text(context.get("symbol")),
        client_order_id=context.get("client_order_id") or None,
        side=_side(context.get("side")),
        repaired=repaired,
        raw_body=_raw(tail, start) if repaired else None,
    )


def _db_error(line: str) -> Rejection | Unparseable:
    mark = line.index(DB_MARK)
    parsed = parse_error_body(line[mark + len(DB_MARK) :])
    if parsed is None:
        return Unparseable("DB-log row without a readable JSON body")
    body, repaired = parsed
    kind, number = child_ref(line[:mark])
    tail = line[mark + len(DB_MARK) :]
    return Rejection(
        body=body,
        at=leading_timestamp(line),
        origin=Origin.DB_LOG,
        child_kind=kind,
        platform_order=number,
        repaired=repaired,
        raw_body=_raw(tail, tail.find("{")) if repaired else None,
    )


def _raw(text: str, start: int) -> str | None:
    # the body as written, up to its closing brace when there is one, clipped for quoting
    if start < 0:
        return None
    end = text.rfind("}", start)
    raw = text[start : end + 1] if end > 0 else text[start:]
    return raw if len(raw) <= RAW_BODY_CHARS else raw[:RAW_BODY_CHARS] + "…"


def child_ref(head: str) -> tuple[str | None, int | None]:
    """The child kind and platform order number a DB-log row names before its `| Error:`."""
    # "...('ERROR', 'TP for order 131 " -> ("TP", 131); the word before "for order" names the child
    at = head.rfind(DB_ORDER_MARK)
    if at < 0:
        return None, None
    number = head[at + len(DB_ORDER_MARK) :].strip()
    kind = _KINDS_RE.search(head[max(0, at - 32) : at])
    order = int(number) if number.isdigit() and len(number) <= 18 else None
    return (kind.group(1) if kind else None), order


def _key_values(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for token in text.split():
        key, sep, value = token.partition("=")
        if sep and key not in fields:
            fields[key] = value.strip(",;'\"")
    return fields


def _side(value: str | None) -> str | None:
    return sys.intern(value.lower()) if value else None


def _text(value: str | None) -> str | None:
    # symbols and ids repeat on every line of an order: keep one copy of each
    return sys.intern(value) if value else None


@lru_cache(maxsize=4096)
def _decimal(value: str | None) -> Decimal | None:
    # cached: quantities repeat, and equal Decimals then share memory
    if not value or len(value) > 40:
        return None
    try:
        qty = Decimal(value)
    except ArithmeticError:
        return None
    return qty if qty.is_finite() else None


REFUSAL_CODE_MARK: Final = "40310000"


def parse_message(env: Envelope) -> LogRecord | Unparseable | None:
    """Parse the message an envelope carries, completing it with the envelope's time and fields.

    Besides the three shapes, a structured line (JSON) is a refusal when it carries an error body with a
    code (inline or as an object beside the message), and a submission when its message says it
    submitted an order and a field gives the `broker_order_id`.
    """
    message = env.message
    shape = shape_of(message)
    record: LogRecord | Unparseable | None
    if shape is not None:
        record = parse_shape(shape, message)
        if isinstance(record, Unparseable) and env.body is not None and shape is Shape.ALPACA_ERROR:
            record = _structured_refusal(env)
        elif isinstance(record, Unparseable) and shape is Shape.SUBMISSION and env.context:
            record = _structured_submission(env)
    elif env.fmt == "text":
        return None
    elif env.body is not None or REFUSAL_CODE_MARK in message:
        record = _structured_refusal(env)
    elif "ubmitted order" in message and ("broker_order_id" in env.context or "order_id" in env.context):
        record = _structured_submission(env)
    else:
        return None
    if record is None or isinstance(record, Unparseable) or env.fmt == "text":
        return record
    return _completed(record, env)


def _structured_refusal(env: Envelope) -> Rejection | Unparseable | None:
    text = env.body if env.body is not None else env.message
    parsed = parse_error_body(text)
    if parsed is None:
        return Unparseable("structured line without a readable error body") if env.body else None
    body, repaired = parsed
    raw = _raw(text, text.find("{")) if repaired else None
    return Rejection(body=body, at=None, repaired=repaired, raw_body=raw)


def _structured_submission(env: Envelope) -> Submission | Unparseable:
    order_id = env.context.get("broker_order_id") or env.context.get("order_id") or ""
    if not order_id or len(order_id) > _MAX_ID_CHARS:
        return Unparseable("submission without broker_order_id")
    return Submission(broker_order_id=sys.intern(order_id), at=None)


def _completed(record: LogRecord, env: Envelope) -> LogRecord:
    ctx = env.context
    at = record.at or env.at
    if isinstance(record, Submission):
        return replace(
            record,
            at=at,
            symbol=record.symbol or _text(ctx.get("symbol")),
            side=record.side or _side(ctx.get("side")),
            qty=record.qty if record.qty is not None else _decimal(ctx.get("qty")),
            client_order_id=record.client_order_id or ctx.get("client_order_id") or None,
        )
    return replace(
        record,
        at=at,
        symbol=record.symbol or _text(ctx.get("symbol")),
        side=record.side or _side(ctx.get("side")),
        client_order_id=record.client_order_id or ctx.get("client_order_id") or None,
    )
