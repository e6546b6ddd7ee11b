"""Render the incident report as one JSON object with the same data as the Markdown.

Times are ISO 8601 UTC strings (``null`` when unknown), delays are given both in seconds (exact to the
microsecond) and in minutes rounded to one decimal as the Markdown shows them, enums are their values.
Quantities are decimal strings (never floats). The shape is explicit here rather than derived from the
dataclasses, so a field rename in Python does not silently change the JSON contract; its schema is
docs/analyze.schema.json (generated from `schema.py`, which a test checks the output against).

`iter_json` yields the document in pieces, one parent and one timeline event at a time, so writing the
report of a huge log never holds the whole text in memory. Stdlib only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, fields
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from ordersync.forensics.report import (
    Evidence,
    Exposure,
    IncidentReport,
    OrderRef,
    ParentIssue,
    SymbolExposure,
    TimelineEvent,
    Verdict,
)
from ordersync.forensics.stats import FileStats, ParseStats

JsonObject = dict[str, Any]


def render_json(report: IncidentReport) -> str:
    """Return the report as a JSON document (keys in a stable order)."""
    return "".join(iter_json(report))


_STREAMED = ("parents", "timeline")


def iter_json(
    report: IncidentReport, extra: Iterable[tuple[str, str]] = (), *, parents: Iterable[str] | None = None
) -> Iterator[str]:
    """The JSON document in pieces: the long arrays one element per line, the rest indented.

    `extra` adds top-level keys after the report's own, each with its value already as JSON text (the
    CLI's `validation` under `--verify`). `parents`, when given, are the rows already written as JSON
    (`parent_json`, one per row in table order, spooled while the report was built) instead of building
    every row again here.
    """
    head = _top(report, streamed=False)
    yield "{"
    for i, (key, value) in enumerate(head.items()):
        yield ("," if i else "") + f"\n  {json.dumps(key)}: "
        if key == "parents" and parents is not None:
            yield from _texts(parents)
        elif key == "parents":
            yield from _array(_parent(p) for p in report.parents)
        elif key == "timeline":
            yield from _array(_event(e) for e in report.timeline)
        else:
            yield json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n  ")
    for key, text in extra:
        yield f",\n  {json.dumps(key)}: {text}"
    yield "\n}\n"


def parent_json(p: ParentIssue) -> str:
    """One row as the `parents` array holds it, on one line."""
    return json.dumps(_parent(p), ensure_ascii=False)


def _texts(items: Iterable[str]) -> Iterator[str]:
    yield "["
    first = True
    for text in items:
        yield ("\n    " if first else ",\n    ") + text
        first = False
    yield "]" if first else "\n  ]"


def _array(items: Iterable[JsonObject]) -> Iterator[str]:
    return _texts(json.dumps(item, ensure_ascii=False) for item in items)


def report_to_dict(report: IncidentReport) -> JsonObject:
    """The report as plain JSON-ready Python data."""
    return _top(report, streamed=True)


def _top(report: IncidentReport, *, streamed: bool) -> JsonObject:
    return {
        "source": report.source,
        "found_problems": report.found_problems,
        "summary": _summary(report),
        "parents": [_parent(p) for p in report.parents] if streamed else None,
        "delay_buckets": asdict(report.buckets),
        "still_failing": {
            "hours": report.still_failing_hours,
            "parents": [p.broker_order_id for p in report.still_failing],
        },
        "symbols": [asdict(s) for s in report.symbols],
        "by_code": [asdict(c) for c in report.by_code],
        "root_cause": {"evidence": asdict(report.evidence), **_verdict(report.verdict)},
        "parse_stats": _stats(report.stats) if report.stats is not None else None,
        "cause_distribution": [
            {"cause": c.cause.value, "parents": c.parents, "refusals": c.refusals} for c in report.causes
        ],
        "exposure": [_symbol_exposure(e) for e in report.exposures],
        "timeline": [_event(e) for e in report.timeline] if streamed else None,
        "merged": [{"reason": m.reason, "count": m.count} for m in report.merges],
        "next_steps": list(report.next_steps),
        "notes": list(report.notes),
        "broker_export": report.broker_export,
    }


def _symbol_exposure(e: SymbolExposure) -> JsonObject:
    return {
        "symbol": e.symbol,
        "parents": e.parents,
        "max_qty": _dec(e.max_qty),
        "share_hours": _dec(e.share_hours.quantize(Decimal("0.0001"))),
        "from": _time(e.first_start),
        "to": _time(e.last_end),
        "open_at_end": e.open_at_end,
    }


def _event(e: TimelineEvent) -> JsonObject:
    return {"at": _time(e.at), "symbol": e.symbol, "kind": e.kind, "order": e.order, "detail": e.detail}


def _ref(c: OrderRef) -> JsonObject:
    return {
        "broker_order_id": c.broker_order_id,
        "client_order_id": c.client_order_id,
        "side": c.side,
        "qty": _dec(c.qty),
        "status": c.status,
        "type": c.type,
        "parent_id": c.parent_id,
        "source": c.source,
        "refusals": c.refusals,
    }


def _exposure(e: Exposure | None) -> JsonObject | None:
    if e is None:
        return None
    return {
        "qty": _dec(e.qty),
        "from": _time(e.start),
        "to": _time(e.end),
        "open_at_end": e.open_at_end,
        "ended_by": e.ended_by,
        "share_hours": _dec(e.share_hours.quantize(Decimal("0.0001"))),
    }


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")


def _summary(report: IncidentReport) -> JsonObject:
    s = report.summary
    return {
        "issues": s.issues,
        "issues_by_kind": dict(s.issues_by_kind),
        "rejections": s.rejections,
        "parents": s.parents,
        "unlinked_issues": s.unlinked_issues,
        "symbols": s.symbols,
        "submissions": s.submissions,
        "first_error_at": _time(s.first_error_at),
        "last_error_at": _time(s.last_error_at),
        "min_delay": _delay(s.min_delay),
        "max_delay": _delay(s.max_delay),
        "mean_delay": _delay(s.mean_delay),
        "duplicates_merged": s.duplicates_merged,
    }


def _parent(p: ParentIssue) -> JsonObject:
    return {
        "broker_order_id": p.broker_order_id,
        "symbol": p.symbol,
        "side": p.side,
        "client_order_id": p.client_order_id,
        "submitted_at": _time(p.submitted_at),
        "first_error_at": _time(p.first_error_at),
        "last_error_at": _time(p.last_error_at),
        "delay": _delay(p.delay),
        "failing_for": _delay(p.failing_for),
        "errors": p.errors,
        "untimed_errors": p.untimed_errors,
        "linked_by_symbol": p.linked_by_symbol,
        "child_kinds": dict(p.child_kinds),
        "platform_orders": list(p.platform_orders),
        "evidence": _evidence(p.evidence),
        "cause": p.cause.value,
        "listed_role": p.listed_role,
        "listed_note": p.listed_note,
        "parent_order_id": p.parent_order_id,
        "competing_orders": [_ref(c) for c in p.competing],
        "bodies": dict(p.quotes),
        "requested_qty": _dec(p.requested_qty),
        "qty": _dec(p.qty),
        "filled_qty": _dec(p.filled_qty),
        "filled_at": _time(p.filled_at),
        "child_client_order_ids": list(p.child_ids),
        "exposure": _exposure(p.exposure),
    }


def _evidence(e: Evidence) -> JsonObject:
    # field by field: `asdict` recurses and deep-copies, a tenth of the time of a huge report's parents
    return {name: getattr(e, name) for name in _EVIDENCE_FIELDS}


_EVIDENCE_FIELDS: Final = tuple(f.name for f in fields(Evidence))


def _verdict(v: Verdict) -> JsonObject:
    return {
        "cause": v.cause.value,
        "headline": v.headline,
        "text": v.text,
        "contradicts_pending_reading": v.contradicts_pending_reading,
    }


def _stats(stats: ParseStats) -> JsonObject:
    return {
        "files": [_file(f) for f in stats.files],
        "lines_read": stats.lines_read,
        "parsed": {
            "submissions": stats.submissions,
            "alpaca_errors": stats.alpaca_errors,
            "db_errors": stats.db_errors,
        },
        "other_lines": stats.other_lines,
        "unparseable": stats.unparseable,
        "unparseable_examples": [asdict(e) for e in stats.unparseable_examples],
        "repaired_bodies": stats.repaired_bodies,
        "oversized_lines": stats.oversized_lines,
        "duplicate_inputs": stats.duplicate_inputs,
    }


def _file(f: FileStats) -> JsonObject:
    out = asdict(f)
    out["formats"] = dict(f.formats)
    out["notes"] = list(f.notes)
    return out


def _time(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


_MICROSECOND: Final = timedelta(microseconds=1)
_MILLION: Final = Decimal(1_000_000)


def _delay(delta: timedelta | None) -> JsonObject | None:
    if delta is None:
        return None
    us = delta // _MICROSECOND
    # exact integer rounding, half up, to a tenth of a minute (6 000 000 µs), as Decimal would give it
    tenths = (2 * abs(us) + 6_000_000) // 12_000_000 * (1 if us >= 0 else -1)
    return {"seconds": float(Decimal(us) / _MILLION), "minutes": tenths / 10}
