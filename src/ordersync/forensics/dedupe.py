"""Collect refusals per identical error body, and merge DB-log rows that repeat an Alpaca log line.

The platform logs one refusal twice: an `AlpacaAccount - ERROR` line and a DB-log row with the same body
(the seed shows both shapes). Counting both would double the figures, but retries of the same child
produce identical bodies too, so identity alone cannot merge. The rule, applied per identical body:

1. same time: a timestamped DB row and a timestamped Alpaca line within 2 s of each other are one event
   (greedy pairing over both lists sorted by time, each line used at most once, which maximises the
   pairs);
2. adjacent lines of one handler: a DB row without a timestamp that sits at most a few lines below a
   timestamped record of the same input (its *anchor*, set by the reader; the seed's traceback puts the
   `[parameters: ...]` row four lines under the error line) is one event with an Alpaca line of the same
   body that rule 1 left unpaired within 2 s of that anchor;
3. nothing else is merged: a DB row without a timestamp and without an anchor is its own event (with no
   time), however many identical bodies exist elsewhere (a retried child repeats its body exactly); two
   lines of the same origin are never merged, and journal records are never merged.

A body without a symbol (the wash-trade refusal) is kept apart per `symbol=` token of its Alpaca line,
so it can be linked by symbol; its DB rows, which carry no such token, are paired against the Alpaca
lines of all those variants together.

Only event times are kept (8 bytes per refusal, in an `array`), so memory grows with the number of
distinct bodies and refusals, not with the size of the log. Stdlib only.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from ordersync.forensics.records import Origin, Rejection

WINDOW_US: Final = 2_000_000
_ORIGINS: Final = (Origin.ALPACA_LOG, Origin.DB_LOG, Origin.JOURNAL)
_MAX_REFS: Final = 32


class BodyEvents:
    """All refusals seen with one error body: times (µs since the epoch, UTC) per origin, and context.

    Containers are created on first use: most bodies never see a DB row or a child kind, and there can
    be one instance per parent order in a large log.
    """

    __slots__ = ("anchored", "child_ids", "child_kinds", "first_raw", "platform_orders", "timed", "untimed")

    def __init__(self) -> None:
        # indexed like _ORIGINS; a list of three is smaller than a dict and most slots stay None
        self.timed: list[array[int] | None] = [None, None, None]
        self.untimed: dict[Origin, int] | None = None
        self.anchored: array[int] | None = None  # anchor times of untimed DB rows
        self.first_raw: str | None = None
        self.child_kinds: dict[str, int] | None = None
        self.platform_orders: set[int] | None = None
        self.child_ids: set[str] | None = None

    def add(self, rejection: Rejection, at_us: int | None) -> None:
        origin = rejection.origin
        if self.first_raw is None:
            self.first_raw = rejection.raw_body
        if at_us is None and rejection.anchor_us is not None and origin is Origin.DB_LOG:
            if self.anchored is None:
                self.anchored = array("q")
            self.anchored.append(rejection.anchor_us)
        elif at_us is None:
            untimed = self.untimed = self.untimed or {}
            untimed[origin] = untimed.get(origin, 0) + 1
        else:
            slot = _ORIGINS.index(origin)
            times = self.timed[slot]
            if times is None:
                times = self.timed[slot] = array("q")
            times.append(at_us)
        self._add_context(rejection)

    def times(self, origin: Origin) -> Sequence[int]:
        return self.timed[_ORIGINS.index(origin)] or ()

    def untimed_count(self, origin: Origin) -> int:
        return self.untimed.get(origin, 0) if self.untimed else 0

    def _add_context(self, rejection: Rejection) -> None:
        kind = rejection.child_kind
        if kind is not None:
            kinds = self.child_kinds = self.child_kinds or {}
            if kind in kinds or len(kinds) < _MAX_REFS:
                kinds[kind] = kinds.get(kind, 0) + 1
        if rejection.client_order_id is not None:
            ids = self.child_ids = self.child_ids or set()
            if len(ids) < _MAX_REFS:
                ids.add(rejection.client_order_id)
        if rejection.platform_order is not None:
            orders = self.platform_orders = self.platform_orders or set()
            if len(orders) < _MAX_REFS:
                orders.add(rejection.platform_order)


@dataclass(frozen=True, slots=True)
class Events:
    """The distinct events of one body after merging: their times, how many have none, how many merged."""

    times: array[int]
    untimed: int
    merged: int
    merged_adjacent: int = 0

    @property
    def merged_same_time(self) -> int:
        return self.merged - self.merged_adjacent


def distinct_events(events: BodyEvents, siblings: Sequence[BodyEvents] = ()) -> Events:
    """Apply the merging rule of this module's docstring to one body's events.

    `siblings` hold Alpaca lines with the same body but another context (the `symbol=` token an error
    line may carry when the body has no symbol): DB rows carry no context, so they may copy any of them.
    """
    return merge_events(
        alpaca=events.times(Origin.ALPACA_LOG),
        pool_extra=[t for s in siblings for t in s.times(Origin.ALPACA_LOG)],
        db=events.times(Origin.DB_LOG),
        anchored=events.anchored or (),
        journal=events.times(Origin.JOURNAL),
        untimed=tuple(events.untimed_count(o) for o in _ORIGINS),
    )


def merge_events(
    *,
    alpaca: Sequence[int],
    pool_extra: Sequence[int],
    db: Sequence[int],
    anchored: Sequence[int],
    journal: Sequence[int],
    untimed: Sequence[int],
) -> Events:
    """The merging rule on plain time lists: (Alpaca, DB, journal) times, DB anchors, untimed counts."""
    alpaca = sorted(alpaca)
    pool = sorted([*alpaca, *pool_extra]) if pool_extra else alpaca
    unpaired_pool, unpaired_db, paired = pair_within(pool, sorted(db), WINDOW_US)
    lone: Sequence[int] = ()
    adjacent = 0
    if anchored:
        _, lone, adjacent = pair_within(unpaired_pool, sorted(anchored), WINDOW_US)
    times = array("q", sorted((*alpaca, *unpaired_db, *journal)))
    untimed_alpaca, untimed_db, untimed_journal = untimed
    return Events(
        times=times,
        untimed=untimed_alpaca + untimed_db + len(lone) + untimed_journal,
        merged=paired + adjacent,
        merged_adjacent=adjacent,
    )


def pair_within(a: Sequence[int], b: Sequence[int], window: int) -> tuple[list[int], list[int], int]:
    """Pair sorted times of `a` and `b` that lie within `window`; return the unpaired of each and the count.

    Greedy earliest-first pairing is optimal for points on a line with a symmetric window. A pair is one
    event: the caller keeps the `a` time of each pair.
    """
    unpaired_a: list[int] = []
    unpaired_b: list[int] = []
    i = j = paired = 0
    while i < len(a) and j < len(b):
        if abs(a[i] - b[j]) <= window:
            i, j, paired = i + 1, j + 1, paired + 1
        elif a[i] < b[j]:
            unpaired_a.append(a[i])
            i += 1
        else:
            unpaired_b.append(b[j])
            j += 1
    return unpaired_a + list(a[i:]), unpaired_b + list(b[j:]), paired
