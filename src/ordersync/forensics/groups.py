"""Per-parent counters for the correlator, kept in flat arrays so memory follows parents, not refusals.

`GroupTable` holds one slot per parent (or per unlinked symbol) in parallel arrays; rare data (child kinds,
platform order numbers, child ids) sits in small shared tuples. `DelayStats` accumulates the refusal delays
while linking, without keeping them. Split from `correlate.py`, which fills these tables. Stdlib only.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, TypeVar

from ordersync.forensics.linking import requested_qty
from ordersync.forensics.records import ErrorBody
from ordersync.forensics.submissions import SubmissionTable
from ordersync.forensics.verdict import BodyClass, Relation

T = TypeVar("T", str, int)
GroupKey = tuple[str | None, str | None]  # (broker order id, symbol of an unlinked row)
BodyKey = tuple[ErrorBody, str | None]  # (body, `symbol=` token of its line when the body names none)

SHORT_US: Final = 5 * 60 * 1_000_000
MEDIUM_US: Final = 20 * 60 * 1_000_000
MAX_REFS: Final = 32
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
        # one append per column, written out: a loop over (column, initial value) pairs built a tuple of
        # ten pairs per parent (~150 000 parents in the bench's dense log)
        self.order_ids.append(key[0])
        self.symbols.append(None)
        self.first_us.append(NO_TIME)
        self.last_us.append(NO_TIME)
        self.first_held_us.append(NO_TIME)
        self.timed.append(0)
        self.untimed.append(0)
        self.linked_by_symbol.append(0)
        self.quote.append(-1)
        self.quote_class.append(-1)
        self.related_n.append(0)
        self.context_body.append(-1)
        self.evidence.extend(_NO_EVIDENCE)
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
        evidence = self.evidence
        evidence[base + _BODIES] += n
        evidence[base + _EV_OF[body_class]] += n
        evidence[base + _EV_OF[relation]] += n
        return n

    def add_body(
        self, g: int, b: int, body: ErrorBody, body_class: BodyClass, related: str | None, n: int
    ) -> None:
        if self.quote[g] < 0:
            self.quote[g], self.quote_class[g] = b, _CLASS_NO[body_class]
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

    def evidence_totals(self) -> tuple[int, ...]:
        """Every group's evidence counts summed (one slice per count: no row built for this)."""
        width = len(_EVIDENCE)
        return tuple(sum(self.evidence[i::width]) for i in range(width))

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
_CLASS_NO: Final = {c: i for i, c in enumerate(_CLASSES)}
_NO_EVIDENCE: Final = (0,) * len(_EVIDENCE)
_BODIES: Final = _EV["bodies"]
_EV_OF: Final[dict[BodyClass | Relation, int]] = {
    **{c: _EV[c.value] for c in BodyClass},
    **{r: _EV[r.value] for r in Relation},
}


_SHARED_KINDS: dict[tuple[tuple[str, int], ...], tuple[tuple[str, int], ...]] = {}


def counted(pairs: tuple[tuple[str, int], ...], key: str, n: int = 1) -> tuple[tuple[str, int], ...]:
    """`pairs` with `key` counted `n` more times, as a shared tuple (at most `MAX_REFS` keys)."""
    for i, (k, count) in enumerate(pairs):
        if k == key:
            return _shared((*pairs[:i], (k, count + n), *pairs[i + 1 :]))
    return _shared((*pairs, (key, n))) if len(pairs) < MAX_REFS else pairs


def _shared(pairs: tuple[tuple[str, int], ...]) -> tuple[tuple[str, int], ...]:
    # (("TP", 1),) is what nearly every body with a DB-log row has: keep one copy of each such tuple
    if len(_SHARED_KINDS) >= 4096:
        return pairs
    return _SHARED_KINDS.setdefault(pairs, pairs)


def share(source: dict[int, tuple[T, ...]], target: dict[int, tuple[T, ...]], b: int, g: int) -> None:
    """Add body `b`'s values in `source` to group `g`'s in `target` (the first body's tuple is reused)."""
    values = source.get(b)
    if values is None:
        return
    if g not in target:
        target[g] = values
        return
    merged = target[g]
    for value in values:
        merged = added(merged, value)
    target[g] = merged


def added(values: tuple[T, ...], value: T) -> tuple[T, ...]:
    """`values` with `value` appended once, bounded by `MAX_REFS` (a tuple: most bodies have one value)."""
    return values if value in values or len(values) >= MAX_REFS else values + (value,)  # noqa: RUF005 (mypy)
