"""Link every broker refusal to the order it concerns, and aggregate per order.

The `Correlator` takes records in any order (several files, a DB log read after the app log) and keeps
only what the report needs: the submissions by broker order id, and the refusal times per distinct error
body (`dedupe.BodyEvents`). `finish` merges duplicates and links each `40310000` body to a parent:

- by `related_orders` (the order Alpaca says holds the shares). When the log gives that order's side as
  ``sell`` (the naive demo's extended submission lines), it is a child, and the refusal is filed under the
  latest ``buy`` submission of the same symbol before it, so the row is the true parent and the evidence
  records that `related_orders` named another order;
- without `related_orders` (the short-sell and wash-trade forms may name none), by symbol (the body's, or
  the `symbol=` token of its line): the latest buy (or side unknown) submission of that symbol at or
  before the refusal; failing that, an unlinked row per symbol.

Other codes are only counted by code and message pattern. Stdlib only.
"""

from __future__ import annotations

import re
from array import array
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from ordersync.forensics.dedupe import BodyEvents, Events, distinct_events
from ordersync.forensics.records import ErrorBody, LogRecord, Rejection, Submission
from ordersync.forensics.timeutil import to_us
from ordersync.forensics.verdict import BodyClass, EvidenceTally, Relation, classify

GroupKey = tuple[str | None, str | None]  # (broker order id, symbol of an unlinked row)
BodyKey = tuple[ErrorBody, str | None]  # (body, `symbol=` token of its line when the body names none)


class GroupTally:
    """The refusals filed under one parent order (or one unlinked symbol); containers made on first use."""

    __slots__ = (
        "child_ids",
        "child_kinds",
        "evidence",
        "first_held_us",
        "linked_by_symbol",
        "order_id",
        "platform_orders",
        "quotes",
        "related",
        "requested",
        "symbols",
        "times",
        "untimed",
    )

    def __init__(self, order_id: str | None) -> None:
        self.order_id = order_id
        self.times: array[int] = array("q")
        self.untimed = 0
        self.linked_by_symbol = 0
        self.evidence = EvidenceTally()
        self.symbols: dict[str, int] | None = None
        self.child_kinds: dict[str, int] | None = None
        self.platform_orders: set[int] | None = None
        self.child_ids: set[str] | None = None
        self.quotes: dict[BodyClass, str] | None = None  # the first body as written, per class
        self.related: dict[str, int] | None = None  # order ids `related_orders` named, with counts
        self.requested: Decimal | None = None  # the largest quantity a refused child asked for
        self.first_held_us: int | None = None  # first refusal showing the shares existed

    def add(self, times: Iterable[int], untimed: int, body_class: BodyClass, relation: Relation) -> int:
        before = len(self.times)
        self.times.extend(times)
        n = len(self.times) - before + untimed
        self.untimed += untimed
        self.evidence.add(body_class, relation, n)
        if body_class in (BodyClass.ALL_RESERVED, BodyClass.PARTLY_RESERVED) and len(self.times) > before:
            first = min(self.times[before:])
            self.first_held_us = first if self.first_held_us is None else min(first, self.first_held_us)
        return n

    def add_body(
        self, body: ErrorBody, body_class: BodyClass, raw: str | None, related: str | None, n: int
    ) -> None:
        quotes = self.quotes = self.quotes or {}
        if body_class not in quotes and raw:
            quotes[body_class] = raw
        if related:
            rel = self.related = self.related or {}
            rel[related] = rel.get(related, 0) + n
        asked = requested_qty(body)
        if asked is not None and (self.requested is None or asked > self.requested):
            self.requested = asked

    def add_context(self, symbol: str | None, n: int, events: BodyEvents) -> None:
        if symbol:
            symbols = self.symbols = self.symbols or {}
            symbols[symbol] = symbols.get(symbol, 0) + n
        if events.child_kinds:
            kinds = self.child_kinds = self.child_kinds or {}
            for kind, count in events.child_kinds.items():
                kinds[kind] = kinds.get(kind, 0) + count
        if events.platform_orders:
            self.platform_orders = (self.platform_orders or set()) | events.platform_orders
        if events.child_ids:
            self.child_ids = (self.child_ids or set()) | events.child_ids


@dataclass(frozen=True, slots=True)
class Correlation:
    """What `finish` hands to the report builder."""

    submissions: Mapping[str, Submission]
    groups: tuple[GroupTally, ...]
    by_code: Counter[tuple[int | None, str]]
    issues_by_kind: Counter[str]
    rejections: int
    merged: int
    merged_adjacent: int = 0


class Correlator:
    """Accumulate records; `finish` links and aggregates them."""

    def __init__(self) -> None:
        self._submissions: dict[str, Submission] = {}
        self._bodies: dict[BodyKey, BodyEvents] = {}

    def add(self, record: LogRecord) -> None:
        """Take one record; the order of records does not matter."""
        if isinstance(record, Submission):
            self._add_submission(record)
        else:
            self._add_rejection(record)

    def _add_submission(self, new: Submission) -> None:
        known = self._submissions.get(new.broker_order_id)
        if known is None or (new.at is not None and (known.at is None or new.at < known.at)):
            self._submissions[new.broker_order_id] = new

    def _add_rejection(self, rejection: Rejection) -> None:
        key = (rejection.body, None if rejection.body.symbol else rejection.symbol)
        events = self._bodies.get(key)
        if events is None:
            events = self._bodies[key] = BodyEvents()
        events.add(rejection, None if rejection.at is None else to_us(rejection.at))

    def finish(self) -> Correlation:
        """Merge duplicates, link `40310000` refusals to parents, count everything else.

        Consumes the accumulated refusals (to keep peak memory down): call it once.
        """
        index = SubmissionIndex(self._submissions)
        groups: dict[GroupKey, GroupTally] = {}
        by_code: Counter[tuple[int | None, str]] = Counter()
        kinds: Counter[str] = Counter()
        rejections = merged = adjacent = 0
        for body, variants in self._variants_by_body():
            for symbol, body_events in variants.items():
                siblings = [v for s, v in variants.items() if s != symbol] if len(variants) > 1 else []
                events = distinct_events(body_events, siblings)
                n = len(events.times) + events.untimed
                if n == 0:  # only DB-log copies of lines filed under a sibling variant
                    merged += events.merged
                    continue
                rejections, merged = rejections + n, merged + events.merged
                adjacent += events.merged_adjacent
                by_code[body.code, message_pattern(body.message)] += n
                if body.is_40310000:
                    kinds[issue_kind(body)] += n
                    _link(body, symbol, body_events, events, index, groups)
        return Correlation(
            self._submissions, tuple(groups.values()), by_code, kinds, rejections, merged, adjacent
        )

    def _variants_by_body(self) -> Iterator[tuple[ErrorBody, dict[str | None, BodyEvents]]]:
        # consumes the accumulated state so it is freed while parent state is built
        by_body: dict[ErrorBody, dict[str | None, BodyEvents]] = {}
        while self._bodies:
            (body, symbol), events = self._bodies.popitem()
            by_body.setdefault(body, {})[symbol] = events
        while by_body:
            yield by_body.popitem()


class SubmissionIndex:
    """Submissions by symbol and time, to find the parent buy of a child or of a refusal."""

    def __init__(self, submissions: Mapping[str, Submission]) -> None:
        self._submissions = submissions
        self._buys = _by_symbol(s for s in submissions.values() if s.side == "buy")
        self._candidates = _by_symbol(s for s in submissions.values() if s.side in ("buy", None))

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


def _by_symbol(submissions: Iterable[Submission]) -> dict[str, tuple[list[int], list[str]]]:
    rows: dict[str, list[tuple[int, str]]] = {}
    for s in submissions:
        if s.symbol and s.at is not None:
            rows.setdefault(s.symbol, []).append((to_us(s.at), s.broker_order_id))
    return {
        sym: ([t for t, _ in r], [i for _, i in r]) for sym, r in ((k, sorted(v)) for k, v in rows.items())
    }


def _latest(index: Mapping[str, tuple[list[int], list[str]]], symbol: str | None, at_us: int) -> str | None:
    if symbol is None or symbol not in index:
        return None
    times, ids = index[symbol]
    at = bisect_right(times, at_us)
    return ids[at - 1] if at else None


def _link(
    body: ErrorBody,
    line_symbol: str | None,
    body_events: BodyEvents,
    events: Events,
    index: SubmissionIndex,
    groups: dict[GroupKey, GroupTally],
) -> None:
    symbol = body.symbol or line_symbol
    body_class = classify(body)
    if body.related_orders:
        related = body.related_orders[0]
        parent = index.parent_of(related, symbol)
        relation = Relation.LISTED if parent == related else Relation.OTHER
        group = _group(groups, (parent, None))
        n = group.add(events.times, events.untimed, body_class, relation)
        group.add_context(symbol, n, body_events)
        group.add_body(body, body_class, body_events.first_raw, related, n)
        return
    by_parent: dict[str | None, list[int]] = {}
    for t in events.times:
        by_parent.setdefault(index.latest_parent(symbol, t), []).append(t)
    if events.untimed:
        by_parent.setdefault(None, [])
    for order_id, times in by_parent.items():
        key: GroupKey = (order_id, None) if order_id else (None, symbol)
        group = _group(groups, key)
        n = group.add(times, events.untimed if order_id is None else 0, body_class, Relation.ABSENT)
        group.linked_by_symbol += n if order_id else 0
        group.add_context(symbol, n, body_events)
        group.add_body(body, body_class, body_events.first_raw, None, n)


def _group(groups: dict[GroupKey, GroupTally], key: GroupKey) -> GroupTally:
    group = groups.get(key)
    if group is None:
        group = groups[key] = GroupTally(order_id=key[0])
    return group


_REQUESTED_RE = re.compile(r"requested:\s*([0-9]+(?:\.[0-9]+)?)")


def requested_qty(body: ErrorBody) -> Decimal | None:
    """The quantity the refused order asked for, from Alpaca's message ("requested: 9, available: 0")."""
    m = _REQUESTED_RE.search(body.message)
    return Decimal(m.group(1)) if m else None


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
