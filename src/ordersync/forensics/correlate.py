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
and message pattern. Stdlib only.
"""

from __future__ import annotations

import re
from array import array
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any, Final, TypeVar

from ordersync.forensics.dedupe import Events, merge_events
from ordersync.forensics.records import ErrorBody, LogRecord, Origin, Rejection, Submission
from ordersync.forensics.submissions import SubmissionTable, brief, submitted_us
from ordersync.forensics.timeutil import to_us
from ordersync.forensics.verdict import BodyClass, Relation, classify

T = TypeVar("T", str, int)
GroupKey = tuple[str | None, str | None]  # (broker order id, symbol of an unlinked row)
BodyKey = tuple[ErrorBody, str | None]  # (body, `symbol=` token of its line when the body names none)

SHORT_US: Final = 5 * 60 * 1_000_000
MEDIUM_US: Final = 20 * 60 * 1_000_000
MAX_REFS: Final = 32
MAX_RAW_QUOTES: Final = 2000  # malformed bodies quoted as logged; beyond, quoted from their fields
_ORIGINS: Final = (Origin.ALPACA_LOG, Origin.DB_LOG, Origin.JOURNAL)
_EVIDENCE: Final = (
    "bodies",
    "no_position",
    "short_sell_refusals",
    "wash_trade_refusals",
    "all_reserved",
    "partly_reserved",
    "no_qty_fields",
    "related_to_listed",
    "related_to_other",
    "related_absent",
)
_EV: Final = {name: i for i, name in enumerate(_EVIDENCE)}
NO_TIME: Final = -(1 << 62)
_NONE: Final = (0, 0, 0)


@dataclass(slots=True)
class DelayStats:
    """Refusal delays since their parent's submission, accumulated without keeping them."""

    short: int = 0
    medium: int = 0
    long: int = 0
    unknown: int = 0
    count: int = 0
    total: int = 0
    low: int | None = None
    high: int | None = None

    def add(self, times: Iterable[int], untimed: int, start: int | None) -> None:
        self.unknown += untimed
        for t in times:
            if start is None or t < start:
                self.unknown += 1
                continue
            d = t - start
            if d < SHORT_US:
                self.short += 1
            elif d > MEDIUM_US:
                self.long += 1
            else:
                self.medium += 1
            self.count += 1
            self.total += d
            self.low = d if self.low is None or d < self.low else self.low
            self.high = d if self.high is None or d > self.high else self.high


class GroupTable:
    """Per parent (or unlinked symbol) counters, one slot per group in flat arrays; rare data in dicts."""

    def __init__(self, submissions: SubmissionTable | None = None) -> None:
        # a parent with a submission line is found by its row there (4 bytes per submission, no dict
        # entry and int per parent); any other parent by order id
        self._rows = submissions
        self._by_row: array[int] = array("i", [-1]) * (len(submissions) if submissions is not None else 0)
        self.index: dict[str, int] = {}  # by parent order id, when it has no submission row
        self.unlinked: dict[str | None, int] = {}  # rows of refusals linked to no order, by symbol
        self.order_ids: list[str | None] = []
        self.symbols: list[str | None] = []
        self.first_us: array[int] = array("q")
        self.last_us: array[int] = array("q")
        self.first_held_us: array[int] = array("q")
        self.timed: array[int] = array("i")
        self.untimed: array[int] = array("i")
        self.linked_by_symbol: array[int] = array("i")
        self.evidence: array[int] = array("i")  # len(_EVIDENCE) per group
        self.quote: array[int] = array("i")  # body index of the first body, or -1
        self.related: list[str | None] = []  # the order `related_orders` named most (first seen)
        self.related_n: array[int] = array("i")
        self.requested: list[Decimal | None] = []
        # rare: a second related order, a second body class, other symbols, DB-log context
        self.more_related: dict[int, dict[str, int]] = {}
        self.more_quotes: dict[int, dict[BodyClass, int]] = {}
        self.more_symbols: dict[int, Counter[str]] = {}
        self.child_kinds: dict[int, tuple[tuple[str, int], ...]] = {}
        self.platform_orders: dict[int, tuple[int, ...]] = {}
        self.child_ids: dict[int, tuple[str, ...]] = {}
        # or, for a group whose context is one body's: that body (-1: none, or the dicts above), and the
        # correlator's per-body context (child kinds, platform orders, child ids), handed over at the end
        self.context_body: array[int] = array("i")
        self.context: tuple[
            dict[int, tuple[tuple[str, int], ...]], dict[int, tuple[int, ...]], dict[int, tuple[str, ...]]
        ] = ({}, {}, {})
        self.quote_class: array[int] = array("i")

    def __len__(self) -> int:
        return len(self.order_ids)

    def group(self, key: GroupKey) -> int:
        order_id, symbol = key
        row = self._rows.row_of(order_id) if order_id is not None and self._rows is not None else None
        if row is not None:
            g = self._by_row[row]
            if g >= 0:
                return g
            g = self._by_row[row] = len(self.order_ids)
            self._new(key)
            return g
        table: dict[Any, int] = self.index if order_id is not None else self.unlinked
        slot = order_id if order_id is not None else symbol
        found = table.get(slot)
        if found is None:
            found = table[slot] = len(self.order_ids)
            self._new(key)
        return found

    def _new(self, key: GroupKey) -> None:
        self.order_ids.append(key[0])
        self.symbols.append(None)
        for arr, init in (
            (self.first_us, NO_TIME),
            (self.last_us, NO_TIME),
            (self.first_held_us, NO_TIME),
            (self.timed, 0),
            (self.untimed, 0),
            (self.linked_by_symbol, 0),
            (self.quote, -1),
            (self.quote_class, -1),
            (self.related_n, 0),
            (self.context_body, -1),
        ):
            arr.append(init)
        self.evidence.extend((0,) * len(_EVIDENCE))
        self.related.append(None)
        self.requested.append(None)

    def add(
        self, g: int, times: Sequence[int], untimed: int, body_class: BodyClass, relation: Relation
    ) -> int:
        n = len(times) + untimed
        if times:
            lo, hi = min(times), max(times)
            if self.first_us[g] == NO_TIME or lo < self.first_us[g]:
                self.first_us[g] = lo
            if hi > self.last_us[g]:
                self.last_us[g] = hi
            if body_class in (BodyClass.ALL_RESERVED, BodyClass.PARTLY_RESERVED) and (
                self.first_held_us[g] == NO_TIME or lo < self.first_held_us[g]
            ):
                self.first_held_us[g] = lo
        self.timed[g] += len(times)
        self.untimed[g] += untimed
        base = g * len(_EVIDENCE)
        for name in ("bodies", body_class.value, relation.value):
            self.evidence[base + _EV[name]] += n
        return n

    def add_body(
        self, g: int, b: int, body: ErrorBody, body_class: BodyClass, related: str | None, n: int
    ) -> None:
        if self.quote[g] < 0:
            self.quote[g], self.quote_class[g] = b, _CLASSES.index(body_class)
        elif _CLASSES[self.quote_class[g]] is not body_class:
            self.more_quotes.setdefault(g, {}).setdefault(body_class, b)
        if related:
            if self.related[g] is None or self.related[g] == related:
                self.related[g] = related
                self.related_n[g] += n
            else:
                more = self.more_related.setdefault(g, {})
                if related in more or len(more) < MAX_REFS:
                    more[related] = more.get(related, 0) + n
        asked = requested_qty(body)
        current = self.requested[g]
        if asked is not None and (current is None or asked > current):
            self.requested[g] = asked

    def add_symbol(self, g: int, symbol: str | None, n: int) -> None:
        if not symbol:
            return
        if self.symbols[g] is None:
            self.symbols[g] = symbol
        if self.symbols[g] != symbol or g in self.more_symbols:
            counts = self.more_symbols.setdefault(g, Counter())
            if not counts:
                counts[self.symbols[g] or symbol] += self.timed[g] + self.untimed[g] - n
            counts[symbol] += n

    def has_own_context(self, g: int) -> bool:
        return g in self.child_kinds or g in self.platform_orders or g in self.child_ids

    def kinds_of(self, g: int) -> tuple[tuple[str, int], ...]:
        b = self.context_body[g]
        return self.context[0].get(b, ()) if b >= 0 else self.child_kinds.get(g, ())

    def platform_orders_of(self, g: int) -> tuple[int, ...]:
        b = self.context_body[g]
        return self.context[1].get(b, ()) if b >= 0 else self.platform_orders.get(g, ())

    def child_ids_of(self, g: int) -> tuple[str, ...]:
        b = self.context_body[g]
        return self.context[2].get(b, ()) if b >= 0 else self.child_ids.get(g, ())

    def release(self) -> None:
        """Drop the lookups by order id and symbol once every refusal is filed."""
        self.index, self.unlinked, self._rows, self._by_row = {}, {}, None, array("i")

    def evidence_of(self, g: int) -> tuple[int, ...]:
        base = g * len(_EVIDENCE)
        return tuple(self.evidence[base : base + len(_EVIDENCE)])

    def symbol_of(self, g: int) -> str | None:
        counts = self.more_symbols.get(g)
        if counts:
            return min(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        return self.symbols[g]

    def related_of(self, g: int) -> dict[str, int]:
        out: dict[str, int] = {}
        if self.related[g] is not None:
            out[self.related[g] or ""] = self.related_n[g]
        for k, n in self.more_related.get(g, {}).items():
            out[k] = out.get(k, 0) + n
        return out

    def quotes_of(self, g: int) -> dict[BodyClass, int]:
        out = dict(self.more_quotes.get(g, {}))
        if self.quote[g] >= 0:
            out[_CLASSES[self.quote_class[g]]] = self.quote[g]
        return out

    def time_or_none(self, value: int) -> int | None:
        return None if value == NO_TIME else value


_CLASSES: Final = tuple(BodyClass)


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
            self._child_kinds[b] = _counted(self._child_kinds.get(b, ()), r.child_kind)
        if r.platform_order is not None:
            self._platform_orders[b] = _added(self._platform_orders.get(b, ()), r.platform_order)
        if r.client_order_id is not None:
            self._child_ids[b] = _added(self._child_ids.get(b, ()), r.client_order_id)

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
                    groups.child_kinds[g] = _counted(groups.child_kinds[g], kind, count)
        _share(self._platform_orders, groups.platform_orders, b, g)
        _share(self._child_ids, groups.child_ids, b, g)


_SHARED_KINDS: dict[tuple[tuple[str, int], ...], tuple[tuple[str, int], ...]] = {}


def _counted(pairs: tuple[tuple[str, int], ...], key: str, n: int = 1) -> tuple[tuple[str, int], ...]:
    for i, (k, count) in enumerate(pairs):
        if k == key:
            return _shared((*pairs[:i], (k, count + n), *pairs[i + 1 :]))
    return _shared((*pairs, (key, n))) if len(pairs) < MAX_REFS else pairs


def _shared(pairs: tuple[tuple[str, int], ...]) -> tuple[tuple[str, int], ...]:
    # (("TP", 1),) is what nearly every body with a DB-log row has: keep one copy of each such tuple
    if len(_SHARED_KINDS) >= 4096:
        return pairs
    return _SHARED_KINDS.setdefault(pairs, pairs)


def _share(source: dict[int, tuple[T, ...]], target: dict[int, tuple[T, ...]], b: int, g: int) -> None:
    values = source.get(b)
    if values is None:
        return
    if g not in target:
        target[g] = values
        return
    merged = target[g]
    for value in values:
        merged = _added(merged, value)
    target[g] = merged


def _added(values: tuple[T, ...], value: T) -> tuple[T, ...]:
    return values if value in values or len(values) >= MAX_REFS else values + (value,)  # noqa: RUF005 (mypy)


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
        child = self._submissions.get(related)
        if child is None or child.side != "sell" or child.at is None:
            return related
        parent = _latest(self._buys, child.symbol or symbol, to_us(child.at))
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
