"""Stream every input into records: logs line by line, broker exports whole, duplicates skipped.

Inputs are opened by `inputs.py` (stdin as `-`, gzip by magic bytes, byte-order marks honoured). An input
that is a broker export goes to `exports.py`; an input whose content was already given (the same file
twice, or a copy) is skipped with a note, so nothing is counted twice.

Logs are read in 192 KiB blocks, each scanned where it lies up to its last newline (no block is copied),
so memory stays flat whatever the size; a line longer than 1 MiB is cut to its first 1 MiB (counted as
oversized). `handler.py` finds and parses the lines that matter in each span. RFC 3164 syslog timestamps
have no year: `years.py` infers it and the file's notes say from what.

An input with nothing readable (empty, binary, UTF-16 without a byte-order mark) raises `LogInputError`
when not one line of it could be read. Imports rich only when a progress bar is shown.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Final

from ordersync.forensics.errors import LogInputError
from ordersync.forensics.exports import MAX_EXPORT_BYTES, BrokerBook, load_export
from ordersync.forensics.handler import MAX_LINE_BYTES, FastSink, LineHandler, Sink, is_cri_part
from ordersync.forensics.inputs import Opened, looks_like_export, open_input, sniff_problem
from ordersync.forensics.stats import FileStats, StatsCounter
from ordersync.forensics.years import YearGuess, dated_evidence, own_evidence

# under the 256 KiB from which every allocation is its own mapping (`analyze._map_large_blocks`): each
# block reuses the heap memory the previous one freed, where a 1 MiB block was a fresh mapping per read,
# its pages faulted in and unmapped again (a quarter of the reading time of the file itself)
BLOCK_BYTES: Final = 192 << 10
PROGRESS_MIN_BYTES: Final = 32 << 20
_CRI_HEAD: Final = 128  # a CRI tag (RFC 3339 time, stream, P/F) is well within this
_READ_ERRORS: Final = (OSError, EOFError, zlib.error)

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
    `fast`, when given, takes the submissions of seed-format lines as fields and a time in µs, and their
    refusals as a body registered once and a time in microseconds appended to its columns per line: no
    record or datetime per line.

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
        evidence = dated_evidence([inp for _, inp in logs], book)
        with _progress_bar(sum(i.size for _, i in logs), enabled=progress) as advance:
            offset = 0
            for index, inp in logs:
                years = YearGuess(own_evidence(inp) or evidence, inp.mtime, today)
                handler = LineHandler(inp.name, sink, stats, years, fast)
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


def _shifted(advance: Advance, base: int) -> Advance:
    return lambda position: advance(base + position)


def _scan_log(inp: Opened, handler: LineHandler, advance: Advance) -> FileStats:
    problem = sniff_problem(inp.head)
    if problem is not None and not inp.head.strip():
        raise LogInputError(inp.path, problem)
    note = None
    try:
        for buffer, lo, hi, oversized in _chunks(inp):
            handler.chunk(buffer, lo, hi, oversized)
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


def _chunks(inp: Opened) -> Iterator[tuple[bytes, int, int, bool]]:
    """Spans `(buffer, lo, hi, oversized)` of whole lines; the last may lack its newline.

    Each read block is scanned where it lies, from its first line start to its last newline: no block
    is copied. The line cut by a block's end is completed by the next block's first line and comes
    alone, as a small buffer of its own. A line over 1 MiB comes alone, cut to 1 MiB, flagged.
    Kubernetes `P` parts at a block's end wait for the next block, so a split line is read whole.
    """
    carry = b""
    skipping = False  # inside an oversized line, discarding until its newline
    data = inp.head
    while data:
        lo = 0
        if skipping:
            newline = data.find(b"\n")
            if newline < 0:
                data = inp.read(BLOCK_BYTES)
                continue
            lo, skipping = newline + 1, False
        cut = data.rfind(b"\n", lo)
        if cut >= lo:
            cut = _before_parts(data, lo, cut, carry)
        if cut < lo:
            rest = data[lo:] if lo else data
            carry = carry + rest if carry else rest
        else:
            if carry:
                # a Kubernetes partial line (`P`) stays with the block that holds its next parts
                first = cut + 1 if is_cri_part(_joined_head(carry, data, lo)) else data.find(b"\n", lo) + 1
                yield carry + data[lo:first], 0, len(carry) + first - lo, False
                lo = first
            if cut + 1 > lo:
                yield data, lo, cut + 1, False
            carry = data[cut + 1 :]
        if len(carry) > MAX_LINE_BYTES:
            yield carry, 0, MAX_LINE_BYTES, True
            carry, skipping = b"", True
        data = inp.read(BLOCK_BYTES)
    if carry:
        yield carry, 0, len(carry), False


def _before_parts(data: bytes, lo: int, cut: int, carry: bytes) -> int:
    """Move a block's cut (its last newline) before a trailing run of Kubernetes `P` parts.

    Those parts continue on the next lines: they go to the carry and come with the next block, where
    the handler rejoins them (`handler._cri_joined`). A run longer than half a maximal line is left
    where it is (the carry must stay one line's worth). Returns `lo - 1` when nothing is left.
    """
    end = len(data)
    while cut >= lo:
        start = data.rfind(b"\n", lo, cut) + 1 or lo
        if start == lo and carry:  # the line began in the carry
            whole = len(carry) + end - lo <= MAX_LINE_BYTES // 2
            return lo - 1 if whole and is_cri_part(_joined_head(carry, data, lo)) else cut
        if end - start > MAX_LINE_BYTES // 2 or not is_cri_part(data, start):
            return cut
        cut = start - 1
    return cut


def _joined_head(carry: bytes, data: bytes, lo: int) -> bytes:
    # enough of the line that starts in the carry to read a CRI tag (a cut may fall inside the tag)
    return carry[:_CRI_HEAD] if len(carry) >= _CRI_HEAD else carry + data[lo : lo + _CRI_HEAD]


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
