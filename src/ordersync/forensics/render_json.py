"""Render the incident report as one JSON object with the same data as the Markdown.

Times are ISO 8601 UTC strings (``null`` when unknown), delays are given both in seconds (exact to the
microsecond) and in minutes rounded to one decimal as the Markdown shows them, enums are their values.
The shape is explicit here rather than derived from the dataclasses, so a field rename in Python does not
silently change the JSON contract. Stdlib only.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from ordersync.forensics.report import IncidentReport, ParentIssue, Verdict
from ordersync.forensics.stats import ParseStats

JsonObject = dict[str, Any]


def render_json(report: IncidentReport) -> str:
    """Return the report as a JSON document (indented, keys in a stable order)."""
    return json.dumps(report_to_dict(report), indent=2, ensure_ascii=False) + "\n"


def report_to_dict(report: IncidentReport) -> JsonObject:
    """The report as plain JSON-ready Python data."""
    return {
        "source": report.source,
        "found_problems": report.found_problems,
        "summary": _summary(report),
        "parents": [_parent(p) for p in report.parents],
        "delay_buckets": asdict(report.buckets),
        "still_failing": {
            "hours": report.still_failing_hours,
            "parents": [p.broker_order_id for p in report.still_failing],
        },
        "symbols": [asdict(s) for s in report.symbols],
        "by_code": [asdict(c) for c in report.by_code],
        "root_cause": {"evidence": asdict(report.evidence), **_verdict(report.verdict)},
        "parse_stats": _stats(report.stats) if report.stats is not None else None,
    }


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
        "evidence": asdict(p.evidence),
        "cause": p.cause.value,
    }


def _verdict(v: Verdict) -> JsonObject:
    return {
        "cause": v.cause.value,
        "headline": v.headline,
        "text": v.text,
        "contradicts_pending_reading": v.contradicts_pending_reading,
    }


def _stats(stats: ParseStats) -> JsonObject:
    return {
        "files": [asdict(f) for f in stats.files],
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
    }


def _time(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def _delay(delta: timedelta | None) -> JsonObject | None:
    if delta is None:
        return None
    us = Decimal(delta // timedelta(microseconds=1))
    minutes = (us / Decimal(60_000_000)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return {"seconds": float(us / Decimal(1_000_000)), "minutes": float(minutes)}
