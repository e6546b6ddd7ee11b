"""The two entry points: analyze log files, or analyze records from any other source.

`analyze_paths` streams files through the parser into the correlator; `analyze_records` takes records the
caller built itself (the CLI converts ordersync's own journal rows, since forensics must not import the
store). Both return the same `IncidentReport`. Stdlib only (rich, lazily, for the progress bar).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from ordersync.forensics.analysis import build_report
from ordersync.forensics.body import parse_error_body
from ordersync.forensics.correlate import Correlator
from ordersync.forensics.errors import LogInputError
from ordersync.forensics.exports import BrokerBook
from ordersync.forensics.reader import scan_inputs
from ordersync.forensics.records import LogRecord
from ordersync.forensics.report import IncidentReport, ParentIssue
from ordersync.forensics.stats import StatsCounter

DEFAULT_STILL_FAILING_HOURS = 1.0


def analyze_paths(
    paths: Sequence[Path],
    *,
    progress: bool = False,
    still_failing_hours: float = DEFAULT_STILL_FAILING_HOURS,
    today: datetime | None = None,
    on_row: Callable[[ParentIssue], None] | None = None,
) -> IncidentReport:
    """Read logs (any format of docs/forensics.md, plain or gzip, `-` for stdin) and broker exports.

    With `progress`, a rich progress bar is drawn on stderr when the inputs total 32 MiB or more. `today`
    is the last resort for the year of syslog timestamps read from stdin (the caller's clock). `on_row`
    sees every parent row once, as the report is built (see `build_report`).

    Raises:
        LogInputError: no paths, or an input is missing, not a file, unreadable, or has nothing readable.
    """
    if not paths:
        raise LogInputError(Path("."), "no log files given")
    _map_large_blocks()
    correlator = Correlator()
    stats = StatsCounter()
    book = BrokerBook()
    with _cyclic_gc_paused():
        scan_inputs(paths, correlator.add, stats, book, progress=progress, today=today, fast=correlator)
    parse_error_body.cache_clear()  # its keys are whole line tails: ~2 MB nothing reads again
    source = ", ".join(str(p) for p in paths)
    return build_report(
        correlator.finish(),
        stats=stats.freeze(),
        source=source,
        still_failing_hours=still_failing_hours,
        book=book,
        on_row=on_row,
    )


_MMAP_THRESHOLD_BYTES = 256 << 10


def _map_large_blocks() -> None:
    """With glibc, give every allocation of 256 KiB or more its own mapping, for the rest of the process.

    The state grows as a few dozen large arrays and dicts resized side by side. By default glibc raises
    its mmap threshold each time such a block is freed, after which the next generations of every
    column come from the heap, where each resize leaves a hole behind: ~10 MiB of the 1 GiB log's peak
    RSS was such holes. A fixed threshold keeps large blocks mapped (resized with `mremap`, returned to
    the OS when freed). Elsewhere (no `mallopt`, e.g. macOS) this does nothing.
    """
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(-3, _MMAP_THRESHOLD_BYTES)  # M_MMAP_THRESHOLD (also stops glibc's dynamic adjustment)


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    # The scan allocates millions of small acyclic objects while the per-order state grows, so the cyclic
    # collector keeps rescanning that state for nothing (about 15% of the time on a 1 GB log). Nothing
    # here forms reference cycles; plain reference counting still frees everything.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def analyze_records(
    records: Iterable[LogRecord],
    *,
    source: str = "records",
    still_failing_hours: float = DEFAULT_STILL_FAILING_HOURS,
) -> IncidentReport:
    """Build the report from records produced elsewhere (e.g. ordersync's journal); no parse statistics."""
    correlator = Correlator()
    for record in records:
        correlator.add(record)
    return build_report(
        correlator.finish(), stats=None, source=source, still_failing_hours=still_failing_hours
    )
