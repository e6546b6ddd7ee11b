"""Stream log files line by line into records, with gzip detection and an optional progress bar.

Files are read in 1 MiB blocks and split on newlines, so memory stays flat whatever the file size; a
line longer than 1 MiB is cut to its first 1 MiB (counted as oversized; the rest is skipped). Each
undecoded line is tested against the literal markers of `lines.py` first, and only matching lines are
decoded (UTF-8, invalid bytes replaced) and parsed: the common "other" line costs three substring tests.
Gzip is detected by its magic bytes, not the file name. A path that cannot be opened, or a gzip stream
that is corrupt before its first line, raises `LogInputError`; a stream that breaks later is reported as a
note on that file and the lines read so far still count. Imports rich only when a progress bar is shown.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from ordersync.forensics.errors import LogInputError
from ordersync.forensics.lines import (
    DB_MARK_B,
    DB_ORDER_MARK_B,
    ERROR_MARK_B,
    SUBMIT_MARK_B,
    Shape,
    Unparseable,
    parse_shape,
)
from ordersync.forensics.records import LogRecord
from ordersync.forensics.stats import FileStats, StatsCounter

BLOCK_BYTES: Final = 1 << 20
MAX_LINE_BYTES: Final = 1 << 20
PROGRESS_MIN_BYTES: Final = 32 << 20
_GZIP_MAGIC: Final = b"\x1f\x8b"
_READ_ERRORS: Final = (OSError, EOFError, zlib.error)

Sink = Callable[[LogRecord], None]
Advance = Callable[[int], None]  # called with the bytes consumed so far
_Read = Callable[[int], bytes]


def scan_paths(paths: Sequence[Path], sink: Sink, stats: StatsCounter, *, progress: bool) -> None:
    """Parse every line of every path, passing records to `sink` and counting into `stats`.

    Raises:
        LogInputError: a path is missing, not a regular file, unreadable, or not a readable gzip stream.
    """
    sizes = [_size(path) for path in paths]
    with _progress_bar(sum(sizes), enabled=progress) as advance:
        offset = 0
        for path, size in zip(paths, sizes, strict=True):
            handler = _LineHandler(str(path), sink, stats)
            stats.files.append(_scan_file(path, size, handler, _shifted(advance, offset)))
            offset += size


def _shifted(advance: Advance, base: int) -> Advance:
    return lambda position: advance(base + position)


def _size(path: Path) -> int:
    try:
        if not path.is_file():
            raise LogInputError(path, "no such file" if not path.exists() else "not a regular file")
        return path.stat().st_size
    except OSError as e:
        raise LogInputError(path, e.strerror or type(e).__name__) from e


def _scan_file(path: Path, size: int, handler: _LineHandler, advance: Advance) -> FileStats:
    try:
        raw = path.open("rb")
    except OSError as e:
        raise LogInputError(path, e.strerror or type(e).__name__) from e
    with raw:
        is_gzip = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        # read1 on gzip: a stream cut short loses only the last chunk, not everything in a 1 MiB read
        read = gzip.GzipFile(fileobj=raw, mode="rb").read1 if is_gzip else raw.read
        note = _scan_stream(read, handler, lambda: advance(raw.tell()), path)
    return FileStats(path=str(path), gzip=is_gzip, size_bytes=size, lines=handler.line_no, note=note)


def _scan_stream(read: _Read, handler: _LineHandler, tick: Callable[[], None], path: Path) -> str | None:
    try:
        for lines in _blocks_of_lines(read, handler):
            handler.lines(lines)
            tick()
    except _READ_ERRORS as e:
        if handler.line_no == 0:
            raise LogInputError(path, f"cannot read: {e}") from e
        return f"read stopped after line {handler.line_no}: {e}"
    return None


def _blocks_of_lines(read: _Read, handler: _LineHandler) -> Iterator[list[bytes]]:
    # one list per block read, so the per-line loop stays in one function (no call per line)
    carry = b""
    skipping = False  # inside an oversized line, discarding until its newline
    while block := read(BLOCK_BYTES):
        if skipping:
            newline = block.find(b"\n")
            if newline < 0:
                continue
            block, skipping = block[newline + 1 :], False
        lines = block.split(b"\n")
        lines[0] = carry + lines[0]
        carry = lines.pop()
        if lines and len(lines[0]) > MAX_LINE_BYTES:
            lines[0] = handler.oversized(lines[0])
        if len(carry) > MAX_LINE_BYTES:
            lines.append(handler.oversized(carry))
            carry, skipping = b"", True
        yield lines
    if carry:
        yield [carry]


class _LineHandler:
    """Classify undecoded lines by marker; parse and count only the lines that carry one."""

    __slots__ = ("line_no", "sink", "source", "stats")

    def __init__(self, source: str, sink: Sink, stats: StatsCounter) -> None:
        self.source, self.sink, self.stats, self.line_no = source, sink, stats, 0

    def oversized(self, line: bytes) -> bytes:
        self.stats.oversized_lines += 1
        return line[:MAX_LINE_BYTES]

    def lines(self, lines: list[bytes]) -> None:
        parse = self._parse
        for line_no, line in enumerate(lines, self.line_no + 1):
            if SUBMIT_MARK_B in line:
                parse(Shape.SUBMISSION, line, line_no)
            elif ERROR_MARK_B in line:
                parse(Shape.ALPACA_ERROR, line, line_no)
            elif DB_MARK_B in line and DB_ORDER_MARK_B in line:
                parse(Shape.DB_ERROR, line, line_no)
        self.line_no += len(lines)
        self.stats.lines_read += len(lines)

    def _parse(self, shape: Shape, line: bytes, line_no: int) -> None:
        text = line.decode("utf-8", "replace").rstrip("\r")
        try:
            result = parse_shape(shape, text)
        except (ValueError, TypeError, ArithmeticError, RecursionError) as e:  # safety net: never crash
            result = Unparseable(f"parser error {type(e).__name__}")
        if isinstance(result, Unparseable):
            self.stats.add_unparseable(self.source, line_no, result.reason, text)
            return
        _count(self.stats, shape, result)
        self.sink(result)


def _count(stats: StatsCounter, shape: Shape, record: LogRecord) -> None:
    if shape is Shape.SUBMISSION:
        stats.submissions += 1
    elif shape is Shape.ALPACA_ERROR:
        stats.alpaca_errors += 1
    else:
        stats.db_errors += 1
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
