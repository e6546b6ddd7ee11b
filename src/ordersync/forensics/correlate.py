"""Link every broker refusal to the order it concerns, and aggregate per order, in compact columns.

The `Correlator` takes records in any order (several files, a DB log read after the app log) and keeps
only what the report needs: the submissions by broker order id, each distinct error body once, and one
(body, time) pair per refusal in flat arrays (12 bytes each). `finish` sorts those by body, merges
duplicates (`dedupe.merge_events`), and links each `40310000` body to a parent:

- by `related_orders` (the order Alpaca says holds the shares). When the log gives that order's side as
  ``sell`` (the naive demo's extended submission lines), it is a child, and the refusal is filed under the
  latest ``buy`` submission of the same symbol before it, so the row is the true parent and the evidence
  records that `related_orders` named another order;
- without `related_orders` (the short-sell and wash-trade forms may name none), by symbol (the body's, or
  the `symbol=` token of its line): the latest buy (or side unknown) submission of that symbol at or
  before the refusal; failing that, an unlinked row per symbol.

Per parent only counters are kept (`GroupTable`, one slot per parent in arrays), and the delay statistics
are accumulated while linking, so memory grows with the number of parents and distinct bodies, never with
the number of refusals' objects (a 1 GB log has ~150 000 parents). Other codes are only counted by code
and message pattern. The per-parent table lives in `groups.py`, the parent lookups in `linking.py`.
Stdlib only.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

from ordersync.forensics.dedupe import Events, merge_events
from ordersync.forensics.groups import (
    BodyKey,
    DelayStats,
    GroupTable,
    added,
    counted,
    share,
)
from ordersync.forensics.linking import SubmissionIndex, issue_kind, message_pattern
from ordersync.forensics.records import ErrorBody, LogRecord, Origin, Rejection, Submission
from ordersync.forensics.submissions import SubmissionTable
from ordersync.forensics.timeutil import to_us
from ordersync.forensics.verdict import BodyClass, Relation, classify

MAX_RAW_QUOTES: Final = 2000  # malformed bodies quoted as logged; beyond, quoted from their fields
_ORIGINS: Final = (Origin.ALPACA_LOG, Origin.DB_LOG, Origin.JOURNAL)
_NONE: Final = (0, 0, 0)


@dataclass(slots=True)
class Correlation:
    """What `finish` hands to the report builder."""

    submissions: Mapping[str, Submission]
    groups: GroupTable
    bodies: list[ErrorBody]
    raw: dict[int, str]
    by_code: Counter[tuple[int | None, str]]
    issues_by_kind: Counter[str]
    rejections: int
    merged: int
    merged_adjacent: int = 0
    delays: DelayStats = field(default_factory=DelayStats)


class Correlator:
    """Accumulate records; `finish` links and aggregates them."""

    def __init__(self) -> None:
        self._submissions = SubmissionTable()
        self._body_index: dict[ErrorBody | BodyKey, int] = {}
        self._keys: list[ErrorBody | BodyKey] = []
        self._raw: dict[int, str] = {}  # the body as logged, kept for malformed (repaired) bodies only
        self._timed_b = [array("i") for _ in _ORIGINS]
        self._timed_t = [array("q") for _ in _ORIGINS]
        self._anchored_b: array[int] = array("i")
        self._anchored_t: array[int] = array("q")
        self._untimed: Counter[tuple[int, int]] = Counter()
        # DB-log and line context per body, as small tuples (most bodies have one value or none)
        self._child_kinds: dict[int, tuple[tuple[str, int], ...]] = {}
        self._platform_orders: dict[int, tuple[int, ...]] = {}
        self._child_ids: dict[int, tuple[str, ...]] = {}

    def add(self, record: LogRecord) -> None:
        """Take one record; the order of records does not matter."""
        if isinstance(record, Submission):
            self._submissions.add(record)
        else:
            self._add_rejection(record)

    def submitted(
        self,
        order_id: str,
        symbol: str | None,
        side: str | None,
        qty: Decimal | None,
        client_order_id: str | None,
        at_us: int,
    ) -> None:
        """Take a log submission given as its fields and a UTC time in µs: `add` without the record."""
        self._submissions.add_us(order_id, at_us, symbol, side, qty, client_order_id)

    def add_at(self, r: Rejection, at_us: int) -> None:
        """Take a refusal whose time is given apart, in µs (`r.at` is ignored): no datetime per line."""
        key: ErrorBody | BodyKey = r.body if r.body.symbol else (r.body, r.symbol)
        b = self._body_index.get(key)
        if b is None:
            b = self._new_body(key, r)
        slot = _ORIGINS.index(r.origin)
        self._timed_b[slot].append(b)
        self._timed_t[slot].append(at_us)
        self._add_context(b, r)

    def body_slot(self, r: Rejection) -> tuple[int, int]:
        """Register `r`'s body (the reader's templates): its index and the origin slot of its columns."""
        key: ErrorBody | BodyKey = r.body if r.body.symbol else (r.body, r.symbol)
        b = self._body_index.get(key)
        if b is None:
            b = self._new_body(key, r)
        return b, _ORIGINS.index(r.origin)

    def timed_columns(self) -> tuple[list[array[int]], list[array[int]]]:
        """Per origin, the body indices and times (µs) of timed refusals; the reader appends to them."""
        return self._timed_b, self._timed_t

    def add_context(self, b: int, r: Rejection) -> None:
        """Count the line context of one refusal of body `b` (see `_add_context`)."""
        self._add_context(b, r)

    def _new_body(self, key: ErrorBody | BodyKey, r: Rejection) -> int:
        b = self._body_index[key] = len(self._keys)
        self._keys.append(key)
        if r.repaired and r.raw_body and len(self._raw) < MAX_RAW_QUOTES:
            self._raw[b] = r.raw_body
        return b

    def _add_context(self, b: int, r: Rejection) -> None:
        if r.child_kind is not None:
            self._child_kinds[b] = counted(self._child_kinds.get(b, ()), r.child_kind)
        if r.platform_order is not None:
            self._platform_orders[b] = added(self._platform_orders.get(b, ()), r.platform_order)
        if r.client_order_id is not None:
            self._child_ids[b] = added(self._child_ids.get(b, ()), r.client_order_id)

    def _add_rejection(self, r: Rejection) -> None:
        # the body alone is the key when it names its symbol (nearly always): no tuple per distinct body
        key: ErrorBody | BodyKey = r.body if r.body.symbol else (r.body, r.symbol)
        b = self._body_index.get(key)
        if b is None:
            b = self._new_body(key, r)
        slot = _ORIGINS.index(r.origin)
        if r.at is not None:
            self._timed_b[slot].append(b)
            self._timed_t[slot].append(to_us(r.at))
        elif r.anchor_us is not None and r.origin is Origin.DB_LOG:
            self._anchored_b.append(b)
            self._anchored_t.append(r.anchor_us)
        else:
            self._untimed[b, slot] += 1
        self._add_context(b, r)

    def finish(self) -> Correlation:
        """Merge duplicates, link `40310000` refusals to parents, count everything else. Call it once."""
        n_bodies = len(self._keys)
        timed = []
        for _ in _ORIGINS:  # one origin at a time, each unsorted pair freed once its sorted copy exists
            timed.append(_by_body(self._timed_b.pop(0), self._timed_t.pop(0), n_bodies))
        anchored = _by_body(self._anchored_b, self._anchored_t, n_bodies)
        self._anchored_b, self._anchored_t = array("i"), array("q")
        variants = _variants(self._keys)
        self._body_index = {}  # not needed any more: free it before the parent columns grow
        index = SubmissionIndex(self._submissions)
        groups = GroupTable(self._submissions)
        delays = DelayStats()
        by_code: Counter[tuple[int | None, str]] = Counter()
        kinds: Counter[str] = Counter()
        rejections = merged = adjacent = 0
        for b, key in enumerate(self._keys):
            body, line_symbol = key if isinstance(key, tuple) else (key, None)
            siblings = [s for s in variants.get(body, ()) if s != b]
            counts = self._untimed
            untimed = (counts[b, 0], counts[b, 1], counts[b, 2]) if counts else _NONE
            db, lone, journal = timed[1].slice(b), anchored.slice(b), timed[2].slice(b)
            if db or lone or journal or siblings or untimed != _NONE:
                events = merge_events(
                    alpaca=timed[0].slice(b),
                    pool_extra=[t for s in siblings for t in timed[0].slice(s)],
                    db=db,
                    anchored=lone,
                    journal=journal,
                    untimed=untimed,
                )
            else:  # Alpaca lines only (most bodies): nothing to merge, their times are sorted already
                events = Events(array("q", timed[0].slice(b)), 0, 0)
            n = len(events.times) + events.untimed
            merged += events.merged
            adjacent += events.merged_adjacent
            if n == 0:  # only DB-log copies of lines filed under a sibling variant
                continue
            rejections += n
            by_code[body.code, message_pattern(body.message)] += n
            if body.is_40310000:
                kinds[issue_kind(body)] += n
                self._link(b, body, line_symbol, events, index, groups, delays)
        groups.release()  # rows are addressed by number from here on
        bodies = [k[0] if isinstance(k, tuple) else k for k in self._keys]
        raw = self._raw
        # the correlator may outlive this call (a caller's local): drop everything the report does not use
        self._keys, self._raw, self._untimed = [], {}, Counter()
        groups.context = (self._child_kinds, self._platform_orders, self._child_ids)  # handed over
        self._child_kinds, self._platform_orders, self._child_ids = {}, {}, {}
        return Correlation(
            submissions=self._submissions,
            groups=groups,
            bodies=bodies,
            raw=raw,
            by_code=by_code,
            issues_by_kind=kinds,
            rejections=rejections,
            merged=merged,
            merged_adjacent=adjacent,
            delays=delays,
        )

    def _link(
        self,
        b: int,
        body: ErrorBody,
        line_symbol: str | None,
        events: Events,
        index: SubmissionIndex,
        groups: GroupTable,
        delays: DelayStats,
    ) -> None:
        symbol = body.symbol or line_symbol
        body_class = classify(body)
        if body.related_orders:
            related = body.related_orders[0]
            parent = index.parent_of(related, symbol)
            relation = Relation.LISTED if parent == related else Relation.OTHER
            self._file(
                groups,
                groups.group((parent, None)),
                b,
                body,
                body_class,
                relation,
                events.times,
                events.untimed,
                symbol,
                related,
                delays,
                index,
            )
            return
        by_parent: dict[str | None, list[int]] = {}
        for t in events.times:
            by_parent.setdefault(index.latest_parent(symbol, t), []).append(t)
        if events.untimed:
            by_parent.setdefault(None, [])
        for order_id, times in by_parent.items():
            g = groups.group((order_id, None) if order_id else (None, symbol))
            untimed = events.untimed if order_id is None else 0
            n = self._file(
                groups, g, b, body, body_class, Relation.ABSENT, times, untimed, symbol, None, delays, index
            )
            groups.linked_by_symbol[g] += n if order_id else 0

    def _file(
        self,
        groups: GroupTable,
        g: int,
        b: int,
        body: ErrorBody,
        body_class: BodyClass,
        relation: Relation,
        times: Sequence[int],
        untimed: int,
        symbol: str | None,
        related: str | None,
        delays: DelayStats,
        index: SubmissionIndex,
    ) -> int:
        n = groups.add(g, times, untimed, body_class, relation)
        groups.add_symbol(g, symbol, n)
        groups.add_body(g, b, body, body_class, related, n)
        order_id = groups.order_ids[g]
        delays.add(times, untimed, index.submitted_us(order_id))
        if b in self._child_kinds or b in self._platform_orders or b in self._child_ids:
            # a parent whose context comes from one body refers to that body's tuples (most parents:
            # no dict entry per parent); a second body with context gets the parent its own entries
            first = groups.context_body[g]
            if first < 0 and not groups.has_own_context(g):
                groups.context_body[g] = b
            else:
                if first >= 0:
                    groups.context_body[g] = -1
                    self._merge_context(groups, first, g)
                self._merge_context(groups, b, g)
        return n

    def _merge_context(self, groups: GroupTable, b: int, g: int) -> None:
        # the first body's tuples are shared, not copied
        if (kinds := self._child_kinds.get(b)) is not None:
            if g not in groups.child_kinds:
                groups.child_kinds[g] = kinds
            else:
                for kind, count in kinds:
                    groups.child_kinds[g] = counted(groups.child_kinds[g], kind, count)
        share(self._platform_orders, groups.platform_orders, b, g)
        share(self._child_ids, groups.child_ids, b, g)


class _ByBody:
    """Times sorted by body index (counting sort), then by time within a body."""

    __slots__ = ("starts", "times")

    def __init__(self, starts: array[int], times: array[int]) -> None:
        self.starts, self.times = starts, times

    def slice(self, b: int) -> Sequence[int]:
        lo, hi = self.starts[b], self.starts[b + 1]
        return self.times[lo:hi] if hi > lo else ()


def _by_body(bodies: array[int], times: array[int], n: int) -> _ByBody:
    counts = array("q", [0]) * (n + 1)  # no zeroed bytes copied in first
    for b in bodies:
        counts[b + 1] += 1
    for i in range(n):
        counts[i + 1] += counts[i]
    starts = array("q", counts)
    out = array("q", [0]) * len(times)
    for b, t in zip(bodies, times, strict=True):
        out[counts[b]] = t
        counts[b] += 1
    for b in range(n):  # records of one body are few and mostly in order already
        lo, hi = starts[b], starts[b + 1]
        if hi - lo > 1:
            chunk = out[lo:hi]
            if any(chunk[i] > chunk[i + 1] for i in range(len(chunk) - 1)):
                out[lo:hi] = array("q", sorted(chunk))
    return _ByBody(starts, out)


def _variants(keys: Sequence[ErrorBody | BodyKey]) -> dict[ErrorBody, list[int]]:
    # a body without a symbol is kept apart per `symbol=` token of its line; its DB rows may copy any
    out: dict[ErrorBody, list[int]] = {}
    for b, key in enumerate(keys):
        if isinstance(key, tuple):
            out.setdefault(key[0], []).append(b)
    return {k: v for k, v in out.items() if len(v) > 1}
