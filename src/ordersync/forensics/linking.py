"""Find a refusal's parent among the submissions, and name a refusal by its message.

`SubmissionIndex` answers "which buy is this child's parent" and "which buy of this symbol came last
before this time" from per-symbol sorted columns (bisect, no tuple per submission). The message helpers
give the quantity a refusal asked for, a numbers-free pattern to count by, and the kind of a `40310000`
refusal. Split from `correlate.py`, which uses them while linking. Stdlib only.
"""

from __future__ import annotations

import re
from array import array
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from decimal import Decimal
from functools import lru_cache

from ordersync.forensics.records import ErrorBody, Submission
from ordersync.forensics.submissions import brief, side_symbol, submitted_us


class SubmissionIndex:
    """Submissions by symbol and time, to find the parent buy of a child or of a refusal."""

    def __init__(self, submissions: Mapping[str, Submission]) -> None:
        self._submissions = submissions
        self._buys = _by_symbol(s for s in brief(submissions) if s[3] == "buy")
        self._candidates = _by_symbol(s for s in brief(submissions) if s[3] in ("buy", None))

    def submission(self, order_id: str | None) -> Submission | None:
        return self._submissions.get(order_id) if order_id else None

    def submitted_us(self, order_id: str | None) -> int | None:
        return submitted_us(self._submissions, order_id)

    def parent_of(self, related: str, symbol: str | None) -> str:
        """The parent buy of `related` if the log shows it is a sell; otherwise `related` itself."""
        child = side_symbol(self._submissions, related)
        if child is None or child[0] != "sell":
            return related
        at_us = submitted_us(self._submissions, related)  # only for a sell, as its datetime was
        if at_us is None:
            return related
        parent = _latest(self._buys, child[1] or symbol, at_us)
        return parent or related

    def latest_parent(self, symbol: str | None, at_us: int) -> str | None:
        """The latest buy (or side unknown) submission of `symbol` at or before `at_us`."""
        return _latest(self._candidates, symbol, at_us)


def _by_symbol(
    submissions: Iterable[tuple[str, int | None, str | None, str | None]],
) -> dict[str, tuple[array[int], list[str]]]:
    # columns per symbol, sorted by (time, id) one symbol at a time: a (time, id) tuple per submission
    # for all symbols at once was the peak of a 150 000-parent report
    times: dict[str, array[int]] = {}
    ids: dict[str, list[str]] = {}
    for order_id, at_us, symbol, _side in submissions:
        if symbol and at_us is not None:
            times.setdefault(symbol, array("q")).append(at_us)
            ids.setdefault(symbol, []).append(order_id)
    out: dict[str, tuple[array[int], list[str]]] = {}
    for sym, t in times.items():
        i = ids[sym]
        order = sorted(range(len(t)), key=lambda k: (t[k], i[k]))
        out[sym] = (array("q", (t[k] for k in order)), [i[k] for k in order])
    return out


def _latest(index: Mapping[str, tuple[array[int], list[str]]], symbol: str | None, at_us: int) -> str | None:
    if symbol is None or symbol not in index:
        return None
    times, ids = index[symbol]
    at = bisect_right(times, at_us)
    return ids[at - 1] if at else None


_REQUESTED_RE = re.compile(r"requested:\s*([0-9]+(?:\.[0-9]+)?)")


@lru_cache(maxsize=4096)
def _requested(message: str) -> Decimal | None:
    m = _REQUESTED_RE.search(message)
    return Decimal(m.group(1)) if m else None


def requested_qty(body: ErrorBody) -> Decimal | None:
    """The quantity the refused order asked for, from Alpaca's message ("requested: 9, available: 0").

    Cached by message: equal quantities share one `Decimal` across every parent.
    """
    return _requested(body.message)


@lru_cache(maxsize=4096)
def message_pattern(message: str) -> str:
    """The message with every number replaced by N, so refusals group by kind rather than quantity."""
    return re.sub(r"\d+(?:\.\d+)?", "N", message) or "(no message)"


def issue_kind(body: ErrorBody) -> str:
    """Name the kind of a `40310000` refusal from its message."""
    message = body.message
    if "insufficient qty" in message or (not message and body.existing_qty is not None):
        return "insufficient_qty"
    if "cannot open a short sell" in message:
        return "short_sell_while_buy_open"
    if "wash trade" in message:
        return "wash_trade"
    return "other"
