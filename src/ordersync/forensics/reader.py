"""Stream every input into records: logs line by line, broker exports whole, duplicates skipped.

Inputs are opened by `inputs.py` (stdin as `-`, gzip by magic bytes, byte-order marks honoured). An input
that is a broker export goes to `exports.py`; an input whose content was already given (the same file
twice, or a copy) is skipped with a note, so nothing is counted twice.

Logs are read in 1 MiB blocks cut at newlines, so memory stays flat whatever the size. Within a block,
only the lines that carry one of a few literal markers (`MARKERS`: every shape the parser understands
contains one) are cut out and decoded, found with `bytes.find`, which runs at memory speed; every other
line costs nothing but its share of a newline count. A line longer than 1 MiB is cut to its first 1 MiB
(counted as oversized). Each marked line is unwrapped from its envelope (`formats.py`) and parsed
(`lines.py`). A record without a time of its own gets the time of the record a few lines above it as an
*anchor* (`dedupe.py` uses it to recognise the DB-log copy of an error line written by the same handler).
RFC 3164 syslog timestamps have no year: `YearGuess` infers it and the file's notes say from what.

An input with nothing readable (empty, binary, UTF-16 without a byte-order mark) raises `LogInputError`
when not one line of it could be read. Imports rich only when a progress bar is shown.
"""

from __future__ import annotations

import re
import zlib
from array import array
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Protocol

from ordersync.forensics.errors import LogInputError
from ordersync.forensics.exports import MAX_EXPORT_BYTES, BrokerBook, load_export
from ordersync.forensics.formats import YearlessTime, unwrap
from ordersync.forensics.inputs import Opened, looks_like_export, open_input, sniff_problem
from ordersync.forensics.lines import Unparseable, parse_line, parse_message
from ordersync.forensics.records import LogRecord, Origin, Rejection, Submission
from ordersync.forensics.stats import FileStats, StatsCounter
from ordersync.forensics.timeutil import to_us

BLOCK_BYTES: Final = 1 << 20
MAX_LINE_BYTES: Final = 1 << 20
PROGRESS_MIN_BYTES: Final = 32 << 20
ADJACENT_LINES: Final = 8
TEMPLATE_CACHE: Final = 4096
# every line the parser can use carries one of these: "Successfully submitted order", "Error submitting
# order", "| Error:" (DB-log rows), or the refusal code itself (structured logs with a body object)
MARKERS: Final = (b"ubmitt", b"| Error:", b"40310000")
_READ_ERRORS: Final = (OSError, EOFError, zlib.error)
_CRI_TAG_RE: Final = re.compile(rb"\d{4}-\d\d-\d\dT\S+ (?:stdout|stderr) ([PF]) ")
_DATED_RE: Final = re.compile(rb"(?<!\d)(20\d\d)-([01]\d)-([0-3]\d)[T ]([0-2]\d):([0-5]\d):([0-5]\d)")

Sink = Callable[[LogRecord], None]


class FastSink(Protocol):
    """Where seed-format refusals go without a record per line (the `Correlator`)."""

    def body_slot(self, r: Rejection) -> tuple[int, int]:
        """Register the refusal's body; its index and the column (origin slot) its times go to."""

    def add_context(self, b: int, r: Rejection) -> None:
        """Count what the line said besides the body (DB-log child kind, order number, client id)."""

    def timed_columns(self) -> tuple[list[array[int]], list[array[int]]]:
        """Per origin slot, the body index and the time (µs) of every timed refusal, appended to."""


Advance = Callable[[int], None]  # called with the bytes consumed so far


def scan_inputs(
    paths: Sequence[Path],
    sink: Sink,
    stats: StatsCounter,
    book: BrokerBook,
    *,
    progress: bool,
    today: datetime | None = None,
    fast: FastSink | None = None,
) -> None:
    """Read every input: exports into `book`, log records into `sink`, counts into `stats`.

    `today` is the fallback for the year of RFC 3164 timestamps read from stdin with no other evidence.
    `fast`, when given, takes the refusals of seed-format lines as a body registered once and a time in
    microseconds appended to its columns per line: no record or datetime per line.

    Raises:
        LogInputError: an input is missing, not a regular file, unreadable, or has nothing readable in it.
    """
    with ExitStack() as stack:
        logs: list[tuple[int, Opened]] = []
        files: list[FileStats | None] = []  # in input order, whatever is read first
        seen: dict[object, str] = {}
        for path in paths:
            inp = open_input(path)
            stack.callback(inp.close)
            if (dup := _duplicate(inp, seen, stats)) is not None:
                files.append(dup)
            elif looks_like_export(inp.head):
                files.append(_load_export(inp, book))
            else:
                logs.append((len(files), inp))
                files.append(None)
        evidence = _dated_evidence([inp for _, inp in logs], book)
        with _progress_bar(sum(i.size for _, i in logs), enabled=progress) as advance:
            offset = 0
            for index, inp in logs:
                years = YearGuess(_own_evidence(inp) or evidence, inp.mtime, today)
                handler = _LineHandler(inp.name, sink, stats, years, fast)
                files[index] = _scan_log(inp, handler, _shifted(advance, offset))
                offset += inp.size
        stats.files.extend(f for f in files if f is not None)


def _duplicate(inp: Opened, seen: dict[object, str], stats: StatsCounter) -> FileStats | None:
    content = ("content", hash(inp.head), len(inp.head), inp.size)
    first = seen.get(inp.fingerprint) or (seen.get(content) if inp.head else None)
    if first is None:
        seen[inp.fingerprint] = seen[content] = inp.name
        return None
    stats.duplicate_inputs += 1
    note = f"same content as {first}: counted once"
    return FileStats(inp.name, inp.gzip, inp.size, 0, kind="duplicate", notes=(note,))


def _load_export(inp: Opened, book: BrokerBook) -> FileStats:
    chunks, total = [inp.head], len(inp.head)
    while total <= MAX_EXPORT_BYTES and (block := inp.read(BLOCK_BYTES)):
        chunks.append(block)
        total += len(block)
    if total > MAX_EXPORT_BYTES:
        raise LogInputError(inp.path, f"broker export larger than {MAX_EXPORT_BYTES >> 20} MiB")
    loaded = load_export(b"".join(chunks), book)
    if isinstance(loaded, str):
        raise LogInputError(inp.path, loaded)
    kind, rows = loaded
    return FileStats(inp.name, inp.gzip, inp.size, 0, kind=kind.value, encoding=inp.encoding, rows=rows)


def _dated_evidence(logs: Sequence[Opened], book: BrokerBook) -> tuple[datetime, str] | None:
    for inp in logs:
        found = _first_date(inp.head)
        if found is not None:
            return found, f"a dated line in {inp.name}"
    stamps = book.times()
    return (min(stamps), "the broker export") if stamps else None


def _own_evidence(inp: Opened) -> tuple[datetime, str] | None:
    found = _first_date(inp.head)
    return (found, "a dated line in the same input") if found is not None else None


def _first_date(head: bytes) -> datetime | None:
    for m in _DATED_RE.finditer(head, 0, 1 << 16):
        try:
            year, month, day, hour, minute, second = (int(g) for g in m.groups())
            return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
        except ValueError:
            continue
    return None


class YearGuess:
    """Give RFC 3164 timestamps a year: the one nearest the latest evidence, starting from the best hint.

    The first reference is a dated line in the same input, else in another input or the broker export,
    else the file's modification time, else `today` (stdin). Each resolved time becomes the reference,
    so a log that crosses New Year moves on to the next year.
    """

    def __init__(
        self, evidence: tuple[datetime, str] | None, mtime: datetime | None, today: datetime | None
    ) -> None:
        if evidence is not None:
            self._ref, self.source = evidence
        elif mtime is not None:
            self._ref, self.source = mtime, f"the file's modification time ({mtime:%Y-%m-%d})"
        else:
            self._ref = today or datetime(1970, 1, 1, tzinfo=UTC)
            self.source = "today's date (no other evidence)" if today else "no evidence (1970 assumed)"
        self.years: set[int] = set()

    def resolve(self, stamp: YearlessTime) -> datetime | None:
        ref = self._ref
        options = [t for y in (ref.year - 1, ref.year, ref.year + 1) if (t := stamp.with_year(y))]
        if not options:
            return None
        best = min(options, key=lambda t: abs(t - ref))
        self._ref = best
        self.years.add(best.year)
        return best

    def note(self) -> str | None:
        if not self.years:
            return None
        years = ", ".join(str(y) for y in sorted(self.years))
        return f"syslog (RFC 3164) timestamps carry no year: {years} inferred from {self.source}"


def _shifted(advance: Advance, base: int) -> Advance:
    return lambda position: advance(base + position)


def _scan_log(inp: Opened, handler: _LineHandler, advance: Advance) -> FileStats:
    problem = sniff_problem(inp.head)
    if problem is not None and not inp.head.strip():
        raise LogInputError(inp.path, problem)
    note = None
    try:
        for chunk, oversized in _chunks(inp):
            handler.chunk(chunk, oversized)
            advance(inp.tell())
    except _READ_ERRORS as e:
        if handler.line_no == 0:
            raise LogInputError(inp.path, f"cannot read: {e}") from e
        note = f"read stopped after line {handler.line_no}: {e}"
    if handler.recognised == 0 and problem is not None:
        raise LogInputError(inp.path, problem)
    notes = tuple(n for n in (note, handler.years.note()) if n)
    return FileStats(
        path=inp.name,
        gzip=inp.gzip,
        size_bytes=inp.size,
        lines=handler.line_no,
        note=note,
        encoding=inp.encoding,
        formats=tuple(sorted(handler.formats.items())),
        notes=notes,
    )


def _chunks(inp: Opened) -> Iterator[tuple[bytes, bool]]:
    """Blocks that end at a newline (the last may not); a line over 1 MiB comes alone, cut, flagged."""
    carry = b""
    skipping = False  # inside an oversized line, discarding until its newline
    data = inp.head
    while data:
        if skipping:
            newline = data.find(b"\n")
            if newline < 0:
                data = inp.read(BLOCK_BYTES)
                continue
            data, skipping = data[newline + 1 :], False
        cut = data.rfind(b"\n")  # the carry has no newline: the block's last one is the buffer's
        if cut < 0:
            carry = carry + data if carry else data
        else:
            # one copy of the block at most (each large copy is a fresh mapping, see `analyze`)
            if carry:
                block = b"".join((carry, memoryview(data)[: cut + 1]))
            else:
                block = data if cut + 1 == len(data) else data[: cut + 1]
            carry = data[cut + 1 :]
            yield block, False
        if len(carry) > MAX_LINE_BYTES:
            yield carry[:MAX_LINE_BYTES], True
            carry, skipping = b"", True
        data = inp.read(BLOCK_BYTES)
    if carry:
        yield carry, False


class _LineHandler:
    """Find the marked lines of a block, parse them, and count."""

    __slots__ = (
        "fast",
        "formats",
        "last_line",
        "last_us",
        "line_no",
        "minutes",
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
        self.line_no = self.recognised = 0
        self.last_line, self.last_us = -(10**9), 0
        self.formats: Counter[str] = Counter()
        # seed-format lines: the refusal each distinct text after the timestamp parsed to (time `None`),
        # and each minute's `2025-10-10 16:02` as µs; both bounded (retries of a child come close together)
        # (body index, origin slot, the template when its line context must be counted, repaired 0/1)
        self.templates: dict[bytes, tuple[int, int, Rejection | None, int] | None] = {}
        self.minutes: dict[bytes, int] = {}

    def chunk(self, chunk: bytes, oversized: bool) -> None:
        if oversized:
            self.stats.oversized_lines += 1
            self.line(chunk, self.line_no + 1)
            self._advance(1)
            return
        spans = _marked_spans(chunk)
        pos, no = 0, self.line_no + 1
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
                line = _cri_joined(chunk, start, end, tag.group(1))
            self.line(line, no)
        if spans:
            self._count_templates(hits, repaired)
        lines = no - self.line_no - 1 + count(b"\n", pos) + (0 if chunk.endswith(b"\n") else 1)
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
            record = self._parse(raw)
            entry = None
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


def _marked_spans(chunk: bytes) -> list[tuple[int, int]]:
    found: dict[int, int] = {}
    find, rfind = chunk.find, chunk.rfind
    for marker in MARKERS:
        i = find(marker)
        while i >= 0:
            start = rfind(b"\n", 0, i) + 1
            end = find(b"\n", i)
            if end < 0:
                end = len(chunk)
            found[start] = end
            i = find(marker, end)
    return sorted(found.items()) if len(found) > 1 else list(found.items())


def _cri_joined(chunk: bytes, start: int, end: int, tag: bytes) -> bytes:
    # Kubernetes splits a long line into `P` parts ending with an `F` part: rejoin them
    while start > 0:  # earlier parts of the same line
        prev_start = chunk.rfind(b"\n", 0, start - 1) + 1
        m = _CRI_TAG_RE.match(chunk, prev_start)
        if m is None or m.group(1) != b"P":
            break
        start = prev_start
    parts = []
    pos = start
    while True:
        line_end = chunk.find(b"\n", pos)
        line_end = len(chunk) if line_end < 0 else line_end
        m = _CRI_TAG_RE.match(chunk, pos)
        if m is None:
            break
        parts.append((chunk[pos : m.end()], chunk[m.end() : line_end].rstrip(b"\r")))
        if m.group(1) == b"F" or line_end >= len(chunk):
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


@contextmanager
def _progress_bar(total: int, *, enabled: bool) -> Iterator[Advance]:
    if not enabled or total < PROGRESS_MIN_BYTES:
        yield lambda _done: None
        return
    # rich costs import time: load it only when a bar is shown
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    columns = (BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("analyze", total=total)
        yield lambda completed: bar.update(task, completed=min(total, completed))
