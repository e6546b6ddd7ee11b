"""Turn the correlation into the incident report: rows, delays, buckets, symbols, verdict.

Delays are measured per refusal, from its parent's submission to the refusal (the seed's buckets and its
"2.9 to 386 minutes" range count refusals, not parents): short < 5 min, medium 5-20 min inclusive,
long > 20 min; a refusal with no time, or whose parent has no submission line (or a refusal logged before
its parent's submission), is "unknown". A parent is still failing after N hours when its last refusal
came N hours or more after its submission (after its first refusal when the submission is not in the
log). All times come from the log itself. Stdlib only.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Final

from ordersync.forensics.correlate import Correlation, GroupTally
from ordersync.forensics.enrich import Context, cause_shares, enrich, next_steps, symbol_exposures, timeline
from ordersync.forensics.exports import BrokerBook
from ordersync.forensics.records import Submission
from ordersync.forensics.report import (
    CodeCount,
    DelayBuckets,
    Evidence,
    IncidentReport,
    MergeNote,
    ParentIssue,
    Summary,
    SymbolCount,
)
from ordersync.forensics.stats import ParseStats
from ordersync.forensics.timeutil import from_us, to_us
from ordersync.forensics.verdict import EvidenceTally, decide, parents_verdict

SHORT_US: Final = 5 * 60 * 1_000_000
MEDIUM_US: Final = 20 * 60 * 1_000_000


def build_report(
    correlation: Correlation,
    *,
    stats: ParseStats | None,
    source: str,
    still_failing_hours: float,
    book: BrokerBook | None = None,
) -> IncidentReport:
    """Assemble the `IncidentReport` from a finished correlation and the broker's exports, if any."""
    subs = correlation.submissions
    book = book or BrokerBook()
    ctx = Context(subs, book)
    pairs = sorted(
        ((enrich(_parent(g, subs), g, ctx), g) for g in correlation.groups), key=lambda pg: _row_order(pg[0])
    )
    parents = tuple(p for p, _ in pairs)
    delays, unknown = _delays(pairs)
    evidence = _total_evidence(parents)
    threshold = timedelta(hours=still_failing_hours)
    failing = [p for p in parents if (f := p.failing_for) is not None and f >= threshold]
    causes = cause_shares(parents)
    exposures = symbol_exposures(parents)
    return IncidentReport(
        source=source,
        summary=_summary(correlation, parents, delays),
        parents=parents,
        buckets=_buckets(delays, unknown),
        still_failing_hours=still_failing_hours,
        still_failing=tuple(sorted(failing, key=lambda p: p.failing_for or timedelta(0), reverse=True)),
        symbols=_symbols(parents),
        by_code=_by_code(correlation),
        evidence=evidence,
        verdict=parents_verdict(causes, evidence, listed_sides_unknown=_listed_sides_unknown(parents)),
        stats=stats,
        causes=causes,
        exposures=exposures,
        timeline=timeline(parents),
        next_steps=next_steps(parents, exposures, has_export=bool(book)),
        merges=_merges(correlation, stats),
        notes=_notes(stats),
        broker_export=bool(book),
    )


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


def _parent(group: GroupTally, submissions: Mapping[str, Submission]) -> ParentIssue:
    sub = submissions.get(group.order_id) if group.order_id else None
    times = group.times
    evidence = group.evidence.freeze()
    symbol = (sub.symbol if sub else None) or _most_common(group.symbols or {})
    return ParentIssue(
        broker_order_id=group.order_id,
        symbol=symbol,
        side=sub.side if sub else None,
        client_order_id=sub.client_order_id if sub else None,
        submitted_at=sub.at if sub else None,
        first_error_at=from_us(min(times)) if times else None,
        last_error_at=from_us(max(times)) if times else None,
        errors=len(times) + group.untimed,
        untimed_errors=group.untimed,
        linked_by_symbol=group.linked_by_symbol,
        child_kinds=tuple(sorted((group.child_kinds or {}).items())),
        platform_orders=tuple(sorted(group.platform_orders or ())),
        evidence=evidence,
        cause=decide(evidence),
    )


def _most_common(counter: Mapping[str, int]) -> str | None:
    return min(counter.items(), key=lambda kv: (-kv[1], kv[0]))[0] if counter else None


def _row_order(p: ParentIssue) -> tuple[bool, int, bool, int, str]:
    sub = to_us(p.submitted_at) if p.submitted_at else 0
    first = to_us(p.first_error_at) if p.first_error_at else 0
    return (p.submitted_at is None, sub, p.first_error_at is None, first, p.broker_order_id or "")


def _delays(pairs: Iterable[tuple[ParentIssue, GroupTally]]) -> tuple[array[int], int]:
    delays = array("q")  # 8 bytes per refusal
    unknown = 0
    for parent, group in pairs:
        unknown += group.untimed
        if parent.submitted_at is None:
            unknown += len(group.times)
            continue
        start = to_us(parent.submitted_at)
        known = [t - start for t in group.times if t >= start]
        unknown += len(group.times) - len(known)
        delays.extend(known)
    return delays, unknown


def _buckets(delays: array[int], unknown: int) -> DelayBuckets:
    short = sum(1 for d in delays if d < SHORT_US)
    long = sum(1 for d in delays if d > MEDIUM_US)
    return DelayBuckets(short=short, medium=len(delays) - short - long, long=long, unknown=unknown)


def _summary(correlation: Correlation, parents: tuple[ParentIssue, ...], delays: array[int]) -> Summary:
    firsts = [p.first_error_at for p in parents if p.first_error_at is not None]
    lasts = [p.last_error_at for p in parents if p.last_error_at is not None]
    kinds = correlation.issues_by_kind
    return Summary(
        issues=sum(kinds.values()),
        issues_by_kind=tuple(sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))),
        rejections=correlation.rejections,
        parents=sum(1 for p in parents if p.broker_order_id is not None),
        unlinked_issues=sum(p.errors for p in parents if p.broker_order_id is None),
        symbols=len({p.symbol for p in parents if p.symbol}),
        submissions=len(correlation.submissions),
        first_error_at=min(firsts) if firsts else None,
        last_error_at=max(lasts) if lasts else None,
        min_delay=timedelta(microseconds=min(delays)) if delays else None,
        max_delay=timedelta(microseconds=max(delays)) if delays else None,
        mean_delay=timedelta(microseconds=sum(delays) // len(delays)) if delays else None,
        duplicates_merged=correlation.merged,
    )


def _symbols(parents: Iterable[ParentIssue]) -> tuple[SymbolCount, ...]:
    errors: Counter[str] = Counter()
    linked: Counter[str] = Counter()
    for p in parents:
        if p.symbol:
            errors[p.symbol] += p.errors
            linked[p.symbol] += p.broker_order_id is not None
    rows = (SymbolCount(symbol=s, errors=n, parents=linked[s]) for s, n in errors.items())
    return tuple(sorted(rows, key=lambda r: (-r.errors, r.symbol)))


def _by_code(correlation: Correlation) -> tuple[CodeCount, ...]:
    rows = (CodeCount(code=c, message=m, count=n) for (c, m), n in correlation.by_code.items())
    return tuple(sorted(rows, key=lambda r: (-r.count, r.code or 0, r.message)))


def _total_evidence(parents: Iterable[ParentIssue]) -> Evidence:
    tally = EvidenceTally.empty()
    for p in parents:
        tally.merge(p.evidence)
    return tally.freeze()


def _listed_sides_unknown(parents: Iterable[ParentIssue]) -> bool:
    listed = [p for p in parents if p.evidence.related_to_listed]
    return bool(listed) and all(p.side is None for p in listed)
