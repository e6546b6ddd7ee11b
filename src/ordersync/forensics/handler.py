"""Cut the lines that matter out of a block of log bytes, parse them, and hand them on.

Within a block, only the lines that carry one of a few literal markers (`markers.py`: every shape the parser
understands contains one) are cut out and decoded, found with `bytes.find`, which runs at memory speed;
every other line costs nothing but its share of a newline count. Each marked line is unwrapped from its
envelope (`formats.py`) and parsed (`lines.py`); the seed's plain-text refusals, the bulk of a dense log,
are parsed once per distinct text and then only their time is read (`LineHandler._seed`). A record
without a time of its own gets the time of the record a few lines above it as an *anchor* (`dedupe.py`
uses it to recognise the DB-log copy of an error line written by the same handler). Split from
`reader.py`, which reads the inputs into blocks. Stdlib only.
"""

from __future__ import annotations

import re
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final, Protocol

from ordersync.forensics.formats import unwrap
from ordersync.forensics.lines import (
    SUBMIT_MARK_B,
    Unparseable,
    parse_line,
    parse_message,
    submission_fields,
)
from ordersync.forensics.markers import marked_spans
from ordersync.forensics.records import LogRecord, Origin, Rejection, Submission
from ordersync.forensics.seedlines import SeedBodies
from ordersync.forensics.stats import StatsCounter
from ordersync.forensics.timeutil import to_us
from ordersync.forensics.years import YearGuess

MAX_LINE_BYTES: Final = 1 << 20
ADJACENT_LINES: Final = 8
TEMPLATE_CACHE: Final = 4096
_CRI_TAG_RE: Final = re.compile(rb"\d{4}-\d\d-\d\dT\S+ (?:stdout|stderr) ([PF]) ")

Sink = Callable[[LogRecord], None]


class FastSink(Protocol):
    """Where seed-format refusals and submissions go without a record per line (the `Correlator`)."""

    def body_slot(self, r: Rejection) -> tuple[int, int]:
        """Register the refusal's body; its index and the column (origin slot) its times go to."""

    def add_context(self, b: int, r: Rejection) -> None:
        """Count what the line said besides the body (DB-log child kind, order number, client id)."""

    def submitted(
        self,
        order_id: str,
        symbol: str | None,
        side: str | None,
        qty: Decimal | None,
        client_order_id: str | None,
        at_us: int,
    ) -> None:
        """Take a submission read from a seed-format line, its time in µs (UTC)."""

    def timed_columns(self) -> tuple[list[array[int]], list[array[int]]]:
        """Per origin slot, the body index and the time (µs) of every timed refusal, appended to."""


class LineHandler:
    """Find the marked lines of a block, parse them, and count."""

    __slots__ = (
        "fast",
        "formats",
        "last_line",
        "last_us",
        "line_no",
        "minutes",
        "quick",
        "recognised",
        "sink",
        "source",
        "stats",
        "templates",
        "timed_b",
        "timed_t",
        "years",
    )

    def __init__(
        self,
        source: str,
        sink: Sink,
        stats: StatsCounter,
        years: YearGuess,
        fast: FastSink | None = None,
    ) -> None:
        self.source, self.sink, self.stats, self.years = source, sink, stats, years
        self.fast = fast
        self.timed_b, self.timed_t = fast.timed_columns() if fast is not None else ([], [])
        self.quick = SeedBodies(fast.body_slot) if fast is not None else None
        self.line_no = self.recognised = 0
        self.last_line, self.last_us = -(10**9), 0
        self.formats: Counter[str] = Counter()
        # seed-format lines: the refusal each distinct text after the timestamp parsed to (time `None`),
        # and each minute's `2025-10-10 16:02` as µs; both bounded (retries of a child come close together)
        # (body index, origin slot, the template when its line context must be counted, repaired 0/1)
        self.templates: dict[bytes, tuple[int, int, Rejection | None, int] | None] = {}
        self.minutes: dict[bytes, int] = {}

    def chunk(self, chunk: bytes, lo: int, hi: int, oversized: bool) -> None:
        """Read the whole lines in `chunk[lo:hi]` (the last may lack its newline)."""
        if oversized:
            self.stats.oversized_lines += 1
            self.line(chunk[lo:hi], self.line_no + 1)
            self._advance(1)
            return
        spans = marked_spans(chunk, lo, hi)
        pos, no = lo, self.line_no + 1
        count = chunk.count
        fast, templates, minutes = self.fast, self.templates, self.minutes
        hits = [0, 0, 0]  # template lines per origin slot
        repaired = 0
        for start, end in spans:
            no += count(b"\n", pos, start)
            pos = start
            line = chunk[start:end]
            # a seed-format line whose text after the timestamp was seen before: only its time is read
            if (
                fast is not None
                and line[19:20] == b","
                and line[23:26] == b" - "
                and line[10:11] != b"T"
                and (entry := templates.get(line[23:])) is not None
                and (minute := minutes.get(line[:16])) is not None
                and (rest := line[17:19] + line[20:23]).isdigit()
                and rest < b"60"
                and len(line) <= MAX_LINE_BYTES
            ):
                b, slot, context, bad = entry
                at = minute + int(rest) * 1000  # (ss * 1000 + mmm) * 1000 µs
                self.timed_b[slot].append(b)
                self.timed_t[slot].append(at)
                if context is not None:
                    fast.add_context(b, context)
                self.last_line, self.last_us = no, at
                hits[slot] += 1
                repaired += bad
                continue
            if len(line) > MAX_LINE_BYTES:
                self.stats.oversized_lines += 1
                line = line[:MAX_LINE_BYTES]
            elif line[10:11] == b"T" and (tag := _CRI_TAG_RE.match(line)) is not None:
                line = _cri_joined(chunk, start, end, tag.group(1), lo, hi)
            self.line(line, no)
        if spans:
            self._count_templates(hits, repaired)
        last = 0 if chunk.endswith(b"\n", lo, hi) else 1
        lines = no - self.line_no - 1 + count(b"\n", pos, hi) + last
        self._advance(lines)

    def _count_templates(self, hits: list[int], repaired: int) -> None:
        total = hits[0] + hits[1] + hits[2]
        if total:
            self.recognised += total
            self.formats["text"] += total
            self.stats.alpaca_errors += hits[0] + hits[2]
            self.stats.db_errors += hits[1]
            self.stats.repaired_bodies += repaired

    def _advance(self, lines: int) -> None:
        self.line_no += lines
        self.stats.lines_read += lines

    def line(self, raw: bytes, line_no: int) -> None:
        seed_format = raw[19:20] == b"," and raw[23:26] == b" - "
        if not (seed_format and self.fast is not None and self._seed(raw, line_no)):
            self._line(raw, line_no)

    def _seed(self, raw: bytes, line_no: int) -> bool:
        """The seed's plain-text refusal lines, the bulk of a dense log: parse each distinct text once.

        A plain line's record is its leading timestamp plus what the text after it says, so the refusal
        parsed from `raw[23:]` is kept as a template (its body registered once with the correlator) and
        only the time is read per line (as integer µs; `chunk` does that inline for texts seen before).
        Returns False for anything else (submissions, other timestamps): the general path reads it.
        """
        at_us = self._seed_time(raw)
        fast = self.fast
        if at_us is None or fast is None:
            return False
        key = raw[23:]
        templates = self.templates
        entry = templates.get(key, _UNSEEN)
        if entry is _UNSEEN:
            if b"ubmitted order" in key:  # unique per line: nothing to share, parsed directly
                return self._seed_submission(raw, line_no, at_us)
            entry = self.quick.entry(raw) if self.quick is not None else None
            record = self._parse(raw) if entry is None else None
            if isinstance(record, Rejection) and record.at is not None:
                record.at = None  # a fresh record: shared from here on as the template, without its time
                b, slot = fast.body_slot(record)
                has_context = (
                    record.child_kind is not None
                    or record.platform_order is not None
                    or record.client_order_id is not None
                )
                entry = (b, slot, record if has_context else None, int(record.repaired))
            if len(templates) >= TEMPLATE_CACHE:
                templates.clear()
            templates[key] = entry
        if not isinstance(entry, tuple):
            return False
        b, slot, context, bad = entry
        self.timed_b[slot].append(b)
        self.timed_t[slot].append(at_us)
        if context is not None:
            fast.add_context(b, context)
        self.last_line, self.last_us = line_no, at_us
        hits = [0, 0, 0]
        hits[slot] = 1
        self._count_templates(hits, bad)
        return True

    def _seed_time(self, raw: bytes) -> int | None:
        # `2025-10-10 16:02:40,272`: the minute parsed once, seconds and milliseconds as integers
        minute = self.minutes.get(raw[:16])
        if minute is None:
            if raw[4:5] != b"-" or raw[16:17] != b":":
                return None
            at = _seed_minute(raw[:16])
            if at is None:
                return None
            if len(self.minutes) >= 4096:
                self.minutes.clear()
            minute = self.minutes[raw[:16]] = at
        rest = raw[17:19] + raw[20:23]
        if not rest.isdigit() or rest >= b"60":
            return None
        return minute + int(rest[:2]) * 1_000_000 + int(rest[2:]) * 1000

    def _seed_submission(self, raw: bytes, line_no: int, at_us: int) -> bool:
        mark = raw.find(SUBMIT_MARK_B)
        if self.fast is not None and mark >= 0 and raw[16:17] == b":":  # the parser finds a time too
            # read as `lines._submission` reads it, handed over without a record or a datetime
            tail = raw[mark + len(SUBMIT_MARK_B) :].decode("utf-8", "replace").rstrip("\r\n")
            fields = submission_fields(tail)
            if isinstance(fields, Unparseable):
                return False  # the general path reads it again and says why
            self.fast.submitted(*fields, at_us)
            self.last_line, self.last_us = line_no, at_us
            self.recognised += 1
            self.formats["text"] += 1
            self.stats.submissions += 1
            return True
        record = self._parse(raw)
        if not isinstance(record, Submission) or record.at is None:
            return False  # unparseable or odd: the general path reads it and says why
        self.last_line, self.last_us = line_no, at_us
        self.recognised += 1
        self.formats["text"] += 1
        _count(self.stats, record)
        self.sink(record)
        return True

    def _parse(self, raw: bytes) -> LogRecord | Unparseable | None:
        # a line of the seed's plain format is its own message (`unwrap` would say "text"): parse it as such
        text = raw.decode("utf-8", "replace").rstrip("\r\n")
        try:
            return parse_line(text)
        except (ValueError, TypeError, ArithmeticError, RecursionError):
            return None

    def _line(self, raw: bytes, line_no: int) -> None:
        text = raw.decode("utf-8", "replace").rstrip("\r\n")
        try:
            env = unwrap(text)
            result = parse_message(env)
        except (ValueError, TypeError, ArithmeticError, RecursionError) as e:  # safety net: never crash
            result, env = Unparseable(f"parser error {type(e).__name__}"), None
        if result is None:
            return
        if isinstance(result, Unparseable):
            self.stats.add_unparseable(self.source, line_no, result.reason, text)
            return
        if result.at is None and env is not None and env.yearless is not None:
            result = replace(result, at=self.years.resolve(env.yearless))
        if result.at is not None:
            self.last_line, self.last_us = line_no, to_us(result.at)
        elif isinstance(result, Rejection) and line_no - self.last_line <= ADJACENT_LINES:
            result = replace(result, anchor_us=self.last_us)
        self.recognised += 1
        if env is not None:
            self.formats[env.fmt] += 1
        _count(self.stats, result)
        self.sink(result)


_UNSEEN: Final = (-1, -1, None, 0)  # a sentinel for the template cache


def _seed_minute(text: bytes) -> int | None:
    try:
        at = datetime.fromisoformat(text.decode("ascii")).replace(tzinfo=UTC)
    except (ValueError, UnicodeDecodeError):
        return None
    return to_us(at)


def is_cri_part(data: bytes, start: int = 0) -> bool:
    """True when the line at `start` is a Kubernetes CRI part (`P`) of a longer line continued below."""
    if data[start + 10 : start + 11] != b"T":
        return False
    m = _CRI_TAG_RE.match(data, start)
    return m is not None and m.group(1) == b"P"


def _cri_joined(chunk: bytes, start: int, end: int, tag: bytes, lo: int, hi: int) -> bytes:
    # Kubernetes splits a long line into `P` parts ending with an `F` part: rejoin them (within the span)
    while start > lo:  # earlier parts of the same line
        prev_start = chunk.rfind(b"\n", lo, start - 1) + 1 or lo
        m = _CRI_TAG_RE.match(chunk, prev_start, hi)
        if m is None or m.group(1) != b"P":
            break
        start = prev_start
    parts = []
    pos = start
    while True:
        line_end = chunk.find(b"\n", pos, hi)
        line_end = hi if line_end < 0 else line_end
        m = _CRI_TAG_RE.match(chunk, pos, hi)
        if m is None:
            break
        parts.append((chunk[pos : m.end()], chunk[m.end() : line_end].rstrip(b"\r")))
        if m.group(1) == b"F" or line_end >= hi:
            break
        pos = line_end + 1
    if not parts:
        return chunk[start:end]
    head = parts[-1][0] if parts[-1][0].endswith(b" F ") else parts[0][0]
    return head + b"".join(p for _, p in parts)


def _count(stats: StatsCounter, record: LogRecord) -> None:
    if isinstance(record, Submission):
        stats.submissions += 1
    elif record.origin is Origin.DB_LOG:
        stats.db_errors += 1
    else:
        stats.alpaca_errors += 1
    if getattr(record, "repaired", False):
        stats.repaired_bodies += 1
