"""Parse statistics: how much of the input was read, recognised, repaired or rejected.

An analysis is only as credible as its coverage, so the report always says how many lines it read, how
many it recognised per shape, and shows a few of the lines it could not read. `StatsCounter` is the
mutable tally the reader updates line by line; `ParseStats` is its frozen result. Stdlib only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

MAX_EXAMPLES: Final = 5
_EXAMPLE_CHARS: Final = 200


@dataclass(frozen=True, slots=True)
class UnparseableExample:
    """One line that looked like ours but could not be read, truncated for display."""

    source: str
    line_no: int
    reason: str
    text: str


@dataclass(frozen=True, slots=True)
class FileStats:
    """One input: gzip or not, its size on disk, its lines, any read problem, what it turned out to be.

    `kind` is "log", "orders_export", "fills_export" or "duplicate" (skipped, see `notes`); `formats`
    counts the recognised lines per envelope (`text`, `structlog`, `docker/json`, `syslog3164`, ...);
    `rows` counts an export's orders or fills; `notes` say what the reader inferred or skipped.
    """

    path: str
    gzip: bool
    size_bytes: int
    lines: int
    note: str | None = None
    kind: str = "log"
    encoding: str = "utf-8"
    formats: tuple[tuple[str, int], ...] = ()
    rows: int = 0
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ParseStats:
    """What the parser saw across all inputs."""

    files: tuple[FileStats, ...]
    lines_read: int
    submissions: int
    alpaca_errors: int
    db_errors: int
    unparseable: int
    repaired_bodies: int
    oversized_lines: int
    unparseable_examples: tuple[UnparseableExample, ...]
    duplicate_inputs: int = 0

    @property
    def recognised(self) -> int:
        return self.submissions + self.alpaca_errors + self.db_errors

    @property
    def other_lines(self) -> int:
        return self.lines_read - self.recognised - self.unparseable


@dataclass(slots=True)
class StatsCounter:
    """The reader's running tally; `freeze` returns the `ParseStats`."""

    files: list[FileStats] = field(default_factory=list)
    lines_read: int = 0
    submissions: int = 0
    alpaca_errors: int = 0
    db_errors: int = 0
    unparseable: int = 0
    repaired_bodies: int = 0
    oversized_lines: int = 0
    duplicate_inputs: int = 0
    examples: list[UnparseableExample] = field(default_factory=list)

    def add_unparseable(self, source: str, line_no: int, reason: str, text: str) -> None:
        self.unparseable += 1
        if len(self.examples) < MAX_EXAMPLES:
            clipped = text if len(text) <= _EXAMPLE_CHARS else text[:_EXAMPLE_CHARS] + "…"
            self.examples.append(UnparseableExample(source, line_no, reason, clipped))

    def freeze(self) -> ParseStats:
        return ParseStats(
            files=tuple(self.files),
            lines_read=self.lines_read,
            submissions=self.submissions,
            alpaca_errors=self.alpaca_errors,
            db_errors=self.db_errors,
            unparseable=self.unparseable,
            repaired_bodies=self.repaired_bodies,
            oversized_lines=self.oversized_lines,
            unparseable_examples=tuple(self.examples),
            duplicate_inputs=self.duplicate_inputs,
        )
