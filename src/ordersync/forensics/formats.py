"""Recognise the envelope a log line was written in, per line, and take out the message it carries.

The platform's messages (the seed's `Successfully submitted order ...`, `Error submitting order ...`, DB-log
rows) reach us wrapped in whatever the deployment used (docs/forensics.md, "Formats"):

- plain text (Python logging, the seed's format): the message is the line;
- JSON lines: structlog (`event`, `timestamp`), loguru `serialize=True` (`text`, `record.message`,
  `record.time.timestamp`, `record.extra`), python-json-logger (`message`, `asctime` or `timestamp`), and
  any object with a `message`/`msg`/`event` key; fields beside the message (`symbol`, `client_order_id`,
  `side`, `qty`, `broker_order_id`) and an error body given as an object (`error`, `body`, ...) are kept;
- Docker json-file (`{"log": ..., "stream": ..., "time": ...}`) and Kubernetes CRI
  (`<RFC 3339 time> stdout|stderr P|F <line>`): the inner line is itself read by these rules;
- syslog: RFC 5424 (`<PRI>1 <RFC 3339 time> host app ...`) and RFC 3164 (`[<PRI>]Mon dd hh:mm:ss host
  tag: msg`), whose timestamp has no year: `Envelope.needs_year` says so and the reader supplies one.

A timestamp the inner message carries itself (the seed's `2025-10-10 15:59:16,078`) wins over the
envelope's. Nothing here raises on bad input: an unknown shape is plain text. Stdlib only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, Final

_CRI_RE: Final = re.compile(
    r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)) (?:stdout|stderr) ([PF]) "
)
_RFC5424_RE: Final = re.compile(
    r"<\d{1,3}>1 (\S+) \S+ \S+ \S+ \S+ (?:-|(?:\[(?:[^\]\\]|\\.)*\])+)(?: (.*))?$", re.DOTALL
)
_RFC3164_RE: Final = re.compile(
    r"(?:<\d{1,3}>)?(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) ([ \d]\d) (\d\d):(\d\d):(\d\d) "
    r"\S+ [^:\s]{1,64}: ?(.*)$",
    re.DOTALL,
)
_MONTHS: Final = {
    m: i
    for i, m in enumerate(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], 1
    )
}
_FRACTION_RE: Final = re.compile(r"([.,]\d{6})\d+")
NO_CONTEXT: Final[Mapping[str, str]] = MappingProxyType({})
MESSAGE_KEYS: Final = ("message", "msg", "event", "text", "log")
TIME_KEYS: Final = ("timestamp", "time", "ts", "@timestamp", "asctime", "datetime", "created")
BODY_KEYS: Final = ("error", "body", "response", "error_body", "alpaca_error", "detail")
CONTEXT_KEYS: Final = ("symbol", "client_order_id", "side", "qty", "broker_order_id", "order_id")


@dataclass(frozen=True, slots=True)
class YearlessTime:
    """An RFC 3164 timestamp: month, day and time of day, no year (the reader infers one)."""

    month: int
    day: int
    hour: int
    minute: int
    second: int

    def with_year(self, year: int) -> datetime | None:
        try:
            return datetime(year, self.month, self.day, self.hour, self.minute, self.second, tzinfo=UTC)
        except ValueError:  # Feb 29 in a year without it
            return None


@dataclass(slots=True)
class Envelope:
    """What one line says once unwrapped: the message, the envelope's time, fields beside the message."""

    message: str
    fmt: str
    at: datetime | None = None
    yearless: YearlessTime | None = None
    context: Mapping[str, str] = field(default_factory=lambda: NO_CONTEXT)  # shared: never mutated
    body: str | None = None  # an error body given as an object beside the message, as JSON text
    partial: bool = False  # a Kubernetes CRI `P` line: the next line continues it


def unwrap(line: str) -> Envelope:
    """Take the message out of one decoded line; plain text when no envelope is recognised."""
    head = line.lstrip()
    if head[10:11] == " " and head[4:5] == "-" and head[:1].isdigit():  # plain text: the common case
        return Envelope(message=line, fmt="text")
    if head.startswith("{"):
        env = _json_line(head)
        if env is not None:
            return env
    elif head[:1].isdigit() and (m := _CRI_RE.match(head)) is not None:
        inner = unwrap(head[m.end() :])
        inner.fmt = f"cri/{inner.fmt}" if inner.fmt != "text" else "cri"
        inner.partial = m.group(2) == "P"
        inner.at = inner.at or parse_time(m.group(1))
        return inner
    elif head.startswith("<") or head[:3] in _MONTHS:
        env = _syslog(head)
        if env is not None:
            return env
    return Envelope(message=line, fmt="text")


def _syslog(line: str) -> Envelope | None:
    if (m := _RFC5424_RE.match(line)) is not None:
        inner = unwrap(m.group(2) or "")
        return _rewrap(inner, "syslog5424", parse_time(m.group(1)), None)
    if (m := _RFC3164_RE.match(line)) is not None:
        month, day, hh, mm, ss, msg = m.groups()
        stamp = YearlessTime(_MONTHS[month], int(day), int(hh), int(mm), int(ss))
        return _rewrap(unwrap(msg), "syslog3164", None, stamp)
    return None


def _rewrap(inner: Envelope, fmt: str, at: datetime | None, yearless: YearlessTime | None) -> Envelope:
    inner.fmt = fmt if inner.fmt == "text" else f"{fmt}/{inner.fmt}"
    if inner.at is None and inner.yearless is None:
        inner.at, inner.yearless = at, yearless
    return inner


def _json_line(text: str) -> Envelope | None:
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(obj, dict):
        return None
    if isinstance(obj.get("log"), str) and "stream" in obj:  # Docker json-file
        inner = unwrap(obj["log"].rstrip("\n"))
        inner.fmt = "docker" if inner.fmt == "text" else f"docker/{inner.fmt}"
        inner.at = inner.at or parse_time(obj.get("time"))
        return inner
    record = obj.get("record")
    if isinstance(record, dict) and "text" in obj:  # loguru serialize=True
        return _from_fields(record, "loguru", _loguru_time(record), extra=record.get("extra"))
    fmt = "structlog" if "event" in obj else "json"
    return _from_fields(obj, fmt, _first_time(obj), extra=obj.get("extra"))


def _from_fields(obj: dict[str, Any], fmt: str, at: datetime | None, *, extra: object) -> Envelope:
    message = next((v for k in MESSAGE_KEYS if isinstance(v := obj.get(k), str)), "")
    context: dict[str, str] = {}
    for source in (extra, obj):
        if isinstance(source, dict):
            for key in CONTEXT_KEYS:
                value = source.get(key)
                if isinstance(value, str | int) and not isinstance(value, bool) and key not in context:
                    context[key] = str(value)
    body = None
    for source in (obj, extra):
        if isinstance(source, dict) and body is None:
            body = next(
                (json.dumps(v) for k in BODY_KEYS if isinstance(v := source.get(k), dict) and "code" in v),
                None,
            )
            if body is None and isinstance(source.get("code"), int | str) and "message" in source:
                body = json.dumps({k: v for k, v in source.items() if k not in MESSAGE_KEYS[1:]})
    return Envelope(message=message, fmt=fmt, at=at, context=context, body=body)


def _loguru_time(record: dict[str, Any]) -> datetime | None:
    stamp = record.get("time")
    if isinstance(stamp, dict):
        return parse_time(stamp.get("timestamp")) or parse_time(stamp.get("repr"))
    return parse_time(stamp)


def _first_time(obj: dict[str, Any]) -> datetime | None:
    for key in TIME_KEYS:
        if key in obj and (at := parse_time(obj[key])) is not None:
            return at
    return None


def parse_time(value: object) -> datetime | None:
    """An ISO 8601 / RFC 3339 string (naive means UTC; digits past microseconds dropped) or epoch seconds."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return _epoch(str(value))
    if not isinstance(value, str) or len(value) > 64:
        return None
    text = _FRACTION_RE.sub(r"\1", value.strip())
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        return _epoch(text) if text[:1].isdigit() and len(text) <= 20 else None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _epoch(text: str) -> datetime | None:
    try:
        seconds = Decimal(text)
        if not seconds.is_finite() or not 0 <= seconds < 10**11:
            return None
        micro = int(seconds * 1_000_000)
    except (InvalidOperation, ValueError):
        return None
    return datetime.fromtimestamp(micro // 1_000_000, tz=UTC).replace(microsecond=micro % 1_000_000)
