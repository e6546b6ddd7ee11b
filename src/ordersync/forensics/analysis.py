"""Turn the correlation into the incident report: rows, delays, buckets, symbols, causes, exposure, verdict.

Delays are measured per refusal, from its parent's submission to the refusal (the seed's buckets and its
"2.9 to 386 minutes" range count refusals, not parents): short < 5 min, medium 5-20 min inclusive,
long > 20 min; a refusal with no time, or whose parent has no submission line (or a refusal logged before
its parent's submission), is "unknown". A parent is still failing after N hours when its last refusal
came N hours or more after its submission (after its first refusal when the submission is not in the
log). All times come from the log itself (or the broker's exports).

The rows are not all kept as objects: `ParentRows` builds each `ParentIssue` from the correlation's
columns when it is read, so a report of 150 000 parents costs the columns, not 150 000 rows with their
datetimes. One pass over the rows computes every aggregate the report states. Stdlib only.
"""

from __future__ import annotations

import heapq
import json
from array import array
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any, Final, TypeVar, overload

from ordersync.forensics.correlate import Correlation
from ordersync.forensics.enrich import Context, GroupFacts, enrich, next_steps, timeline
from ordersync.forensics.exports import BrokerBook
from ordersync.forensics.groups import NO_TIME
from ordersync.forensics.records import ErrorBody, Submission
from ordersync.forensics.report import (
    Cause,
    CauseShare,
    CodeCount,
    DelayBuckets,
    Evidence,
    IncidentReport,
    MergeNote,
    ParentIssue,
    Summary,
    SymbolCount,
    SymbolExposure,
)
from ordersync.forensics.stats import ParseStats
from ordersync.forensics.submissions import submitted_us
from ordersync.forensics.timeutil import from_us
from ordersync.forensics.verdict import decide, parents_verdict

TIMELINE_PARENTS: Final = 200
_LAST: Final = 1 << 62  # sorts after every real time
_EVIDENCE_CACHE: Final = 4_096


def _sub_us(subs: Mapping[str, Submission], order_id: str | None) -> int:
    at = submitted_us(subs, order_id)
    return _LAST if at is None else at


class ParentRows(Sequence[ParentIssue]):
    """The report's rows in table order, each built from the correlation's columns when it is read."""

    def __init__(self, correlation: Correlation, ctx: Context) -> None:
        self._c, self._ctx = correlation, ctx
        self._order = self._table_order()
        # rows share a few dozen distinct evidence counts (one to six refusals of one kind): each
        # `Evidence` (frozen) and its cause is built once and shared instead of once per row
        self._evidence: dict[tuple[int, ...], tuple[Evidence, Cause]] = {}

    def __len__(self) -> int:
        return len(self._order)

    @overload
    def __getitem__(self, i: int) -> ParentIssue: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[ParentIssue]: ...
    def __getitem__(self, i: int | slice) -> ParentIssue | Sequence[ParentIssue]:
        if isinstance(i, slice):
            return [self.build(g) for g in self._order[i]]
        return self.build(self._order[i])

    def __iter__(self) -> Iterator[ParentIssue]:
        return (self.build(g) for g in self._order)

    def most_refused(self, n: int) -> list[int]:
        """Row numbers of the `n` rows with the most refusals (ties: table order), read from the columns."""
        groups = self._c.groups
        order = self._order
        ranked = heapq.nsmallest(
            n, range(len(order)), key=lambda i: (-(groups.timed[order[i]] + groups.untimed[order[i]]), i)
        )
        return sorted(ranked)

    def _table_order(self) -> array[int]:
        """Rows by submission time (none last), then first refusal (none last), then order id.

        Three stable sorts on one key each: a tuple key per row would cost ~150 bytes per parent at once.
        """
        groups, subs = self._c.groups, self._c.submissions
        order = list(range(len(groups)))
        order.sort(key=lambda g: groups.order_ids[g] or "")
        order.sort(key=lambda g: _LAST if (t := groups.first_us[g]) == NO_TIME else t)
        order.sort(key=lambda g: _sub_us(subs, groups.order_ids[g]))
        return array("i", order)

    def days(self) -> int:
        """How many UTC days the rows' submission and refusal times span, read from the columns."""
        groups, subs, day = self._c.groups, self._c.submissions, 86_400_000_000
        found: set[int] = set()
        for g in self._order:
            first, last = groups.first_us[g], groups.last_us[g]
            if first != NO_TIME:
                found.add(first // day)
            if last != NO_TIME:
                found.add(last // day)
            at = submitted_us(subs, groups.order_ids[g])
            if at is not None:
                found.add(at // day)
        return len(found)

    def without_quotes(self) -> Iterator[ParentIssue]:
        """The rows with no body quoted (for totals: quoting every body is a third of a row's cost)."""
        return (self.build(g, quotes=False) for g in self._order)

    def build(self, g: int, *, quotes: bool = True) -> ParentIssue:
        groups, subs = self._c.groups, self._c.submissions
        order_id = groups.order_ids[g]
        sub = subs.get(order_id) if order_id else None
        counts = groups.evidence_of(g)
        known = self._evidence.get(counts)
        if known is None:
            e = Evidence(*counts)
            known = (e, decide(e))
            if len(self._evidence) < _EVIDENCE_CACHE:  # bounded: memory must not grow per parent
                self._evidence[counts] = known
        evidence, cause = known
        first, last = groups.first_us[g], groups.last_us[g]
        p = ParentIssue(
            broker_order_id=order_id,
            symbol=(sub.symbol if sub else None) or groups.symbol_of(g),
            side=sub.side if sub else None,
            client_order_id=sub.client_order_id if sub else None,
            submitted_at=sub.at if sub else None,
            first_error_at=None if first == NO_TIME else from_us(first),
            last_error_at=None if last == NO_TIME else from_us(last),
            errors=groups.timed[g] + groups.untimed[g],
            untimed_errors=groups.untimed[g],
            linked_by_symbol=groups.linked_by_symbol[g],
            child_kinds=_sorted(groups.kinds_of(g)),
            platform_orders=_sorted(groups.platform_orders_of(g)),
            evidence=evidence,
            cause=cause,
        )
        held = groups.first_held_us[g]
        facts = GroupFacts(
            quotes={k: self._quote(b) for k, b in groups.quotes_of(g).items()} if quotes else {},
            related=groups.related_of(g),
            requested=groups.requested[g],
            child_ids=tuple(groups.child_ids_of(g)),
            first_held_us=None if held == NO_TIME else held,
        )
        return enrich(p, facts, self._ctx)

    def _quote(self, b: int) -> str:
        raw = self._c.raw.get(b)
        return raw if raw is not None else canonical_body(self._c.bodies[b])


_T = TypeVar("_T", tuple[str, int], int)


def _sorted(items: tuple[_T, ...]) -> tuple[_T, ...]:
    # most rows have none or one: no list built and sorted for them
    return tuple(sorted(items)) if len(items) > 1 else items


def canonical_body(body: ErrorBody) -> str:
    """The body as Alpaca writes it (keys sorted, quantities as strings): what a well-formed line held."""
    fields: dict[str, object] = {
        "available": body.available,
        "code": body.code,
        "existing_qty": body.existing_qty,
        "held_for_orders": body.held_for_orders,
        "message": body.message,
        "related_orders": list(body.related_orders) or None,
        "symbol": body.symbol,
    }
    out = {k: (str(v) if isinstance(v, Decimal) else v) for k, v in fields.items() if v is not None}
    return json.dumps(out, separators=(",", ":"), ensure_ascii=False)


class _Totals:
    """Everything the report states about all rows, gathered in one pass."""

    def __init__(self, threshold: timedelta) -> None:
        self.threshold = threshold
        self.failing: list[ParentIssue] = []
        self.errors: Counter[str] = Counter()
        self.linked: Counter[str] = Counter()
        self.causes: Counter[Cause] = Counter()
        self.cause_refusals: Counter[Cause] = Counter()
        self.exposure: dict[str, list[Any]] = {}
        self.listed = self.listed_unknown_side = 0
        self.unknown_parent = 0
        self.unlinked = False
        self.parents = 0

    def add(self, p: ParentIssue) -> None:
        if (f := p.failing_for) is not None and f >= self.threshold:
            self.failing.append(p)
        if p.symbol:
            self.errors[p.symbol] += p.errors
            self.linked[p.symbol] += p.broker_order_id is not None
        self.causes[p.cause] += 1
        self.cause_refusals[p.cause] += p.errors
        if p.evidence.related_to_listed:
            self.listed += 1
            self.listed_unknown_side += p.side is None
        self.unknown_parent += p.listed_role == "competing order" and p.parent_order_id is None
        self.unlinked = self.unlinked or p.broker_order_id is None
        self.parents += p.broker_order_id is not None
        if p.exposure is not None and p.symbol:
            e = p.exposure
            acc = self.exposure.get(p.symbol)
            if acc is None:  # parents, max qty, share-hours, first start, last end, open at end
                self.exposure[p.symbol] = [1, e.qty, e.share_hours, e.start, e.end, e.open_at_end]
            else:  # summed in place: a frozen `SymbolExposure` per parent was a tenth of the pass
                acc[0] += 1
                acc[1] = max(acc[1], e.qty)
                acc[2] += e.share_hours
                acc[3] = min(acc[3], e.start)
                acc[4] = max(acc[4], e.end)
                acc[5] = acc[5] or e.open_at_end

    def exposures(self) -> tuple[SymbolExposure, ...]:
        rows = (SymbolExposure(symbol, *acc) for symbol, acc in self.exposure.items())
        return tuple(sorted(rows, key=lambda r: (-r.share_hours, r.symbol)))

    def cause_shares(self) -> tuple[CauseShare, ...]:
        ranked = sorted(self.causes.items(), key=lambda kv: (-kv[1], kv[0]))
        return tuple(CauseShare(c, n, self.cause_refusals[c]) for c, n in ranked)


def build_report(
    correlation: Correlation,
    *,
    stats: ParseStats | None,
    source: str,
    still_failing_hours: float,
    book: BrokerBook | None = None,
    on_row: Callable[[ParentIssue], None] | None = None,
) -> IncidentReport:
    """Assemble the `IncidentReport` from a finished correlation and the broker's exports, if any.

    `on_row` sees every complete row once, in table order, while the totals are gathered: a renderer can
    write (spool) the rows then instead of building all of them a second time.
    """
    book = book or BrokerBook()
    ctx = Context(correlation.submissions, book)
    parents = ParentRows(correlation, ctx)
    totals = _Totals(timedelta(hours=still_failing_hours))
    for p in parents.without_quotes() if on_row is None else parents:
        totals.add(p)
        if on_row is not None:
            on_row(p)
    groups = correlation.groups
    firsts = [t for t in groups.first_us if t != NO_TIME]
    lasts = [t for t in groups.last_us if t != NO_TIME]
    first_us, last_us = (min(firsts) if firsts else None), (max(lasts) if lasts else None)
    evidence = Evidence(*groups.evidence_totals())
    causes = totals.cause_shares()
    exposures = totals.exposures()
    shown = [parents[row] for row in parents.most_refused(TIMELINE_PARENTS)]
    d = correlation.delays
    kinds = correlation.issues_by_kind
    summary = Summary(
        issues=sum(kinds.values()),
        issues_by_kind=tuple(sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))),
        rejections=correlation.rejections,
        parents=totals.parents,
        unlinked_issues=sum(
            groups.timed[g] + groups.untimed[g] for g in range(len(groups)) if groups.order_ids[g] is None
        ),
        symbols=len(totals.errors),
        submissions=len(correlation.submissions),
        first_error_at=from_us(first_us) if first_us is not None else None,
        last_error_at=from_us(last_us) if last_us is not None else None,
        min_delay=timedelta(microseconds=d.low) if d.low is not None else None,
        max_delay=timedelta(microseconds=d.high) if d.high is not None else None,
        mean_delay=timedelta(microseconds=d.total // d.count) if d.count else None,
        duplicates_merged=correlation.merged,
    )
    sides_unknown = bool(totals.listed) and totals.listed == totals.listed_unknown_side
    return IncidentReport(
        source=source,
        summary=summary,
        parents=parents,
        buckets=DelayBuckets(short=d.short, medium=d.medium, long=d.long, unknown=d.unknown),
        still_failing_hours=still_failing_hours,
        still_failing=tuple(
            sorted(totals.failing, key=lambda p: p.failing_for or timedelta(0), reverse=True)
        ),
        symbols=_symbols(totals),
        by_code=_by_code(correlation),
        evidence=evidence,
        verdict=parents_verdict(causes, evidence, listed_sides_unknown=sides_unknown),
        stats=stats,
        causes=causes,
        exposures=exposures,
        timeline=timeline(shown),
        next_steps=next_steps(
            {c.cause for c in causes},
            exposures,
            unknown_parents=totals.unknown_parent,
            unlinked=totals.unlinked,
            has_export=bool(book),
        ),
        merges=_merges(correlation, stats),
        notes=_notes(stats),
        broker_export=bool(book),
        logged_orders=correlation.submissions.keys(),
    )


def _symbols(totals: _Totals) -> tuple[SymbolCount, ...]:
    rows = (SymbolCount(symbol=s, errors=n, parents=totals.linked[s]) for s, n in totals.errors.items())
    return tuple(sorted(rows, key=lambda r: (-r.errors, r.symbol)))


def _by_code(correlation: Correlation) -> tuple[CodeCount, ...]:
    rows = (CodeCount(code=c, message=m, count=n) for (c, m), n in correlation.by_code.items())
    return tuple(sorted(rows, key=lambda r: (-r.count, r.code or 0, r.message)))


def _merges(correlation: Correlation, stats: ParseStats | None) -> tuple[MergeNote, ...]:
    same_time = correlation.merged - correlation.merged_adjacent
    notes = [
        MergeNote(
            "a DB-log row within 2 s of an Alpaca error line with the same body (same time)", same_time
        ),
        MergeNote(
            "a DB-log row without a timestamp a few lines below an Alpaca error line with the same body "
            "(adjacent lines of one handler)",
            correlation.merged_adjacent,
        ),
    ]
    if stats is not None:
        notes.append(
            MergeNote("an input given twice (same file or same content): read once", stats.duplicate_inputs)
        )
    return tuple(n for n in notes if n.count)


def _notes(stats: ParseStats | None) -> tuple[str, ...]:
    if stats is None:
        return ()
    return tuple(f"{f.path}: {n}" for f in stats.files for n in f.notes)
