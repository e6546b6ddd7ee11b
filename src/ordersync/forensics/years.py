"""Give RFC 3164 syslog timestamps a year, from the best evidence the inputs offer.

Such a timestamp (``Oct 10 16:02:40``) has no year. The first dated line of the same input is the best
hint, then a dated line of another input or a time in the broker export, then the file's modification
time, then the caller's `today` (stdin). Split from `reader.py`. Stdlib only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final

from ordersync.forensics.exports import BrokerBook
from ordersync.forensics.formats import YearlessTime
from ordersync.forensics.inputs import Opened

_DATED_RE: Final = re.compile(rb"(?<!\d)(20\d\d)-([01]\d)-([0-3]\d)[T ]([0-2]\d):([0-5]\d):([0-5]\d)")


def dated_evidence(logs: Sequence[Opened], book: BrokerBook) -> tuple[datetime, str] | None:
    for inp in logs:
        found = _first_date(inp.head)
        if found is not None:
            return found, f"a dated line in {inp.name}"
    stamps = book.times()
    return (min(stamps), "the broker export") if stamps else None


def own_evidence(inp: Opened) -> tuple[datetime, str] | None:
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
