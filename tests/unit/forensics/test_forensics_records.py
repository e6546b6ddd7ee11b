"""`analyze_records`: records built by the caller (the journal, a naive-demo run) are analyzed alike."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from forensics_support import SHORT_SELL, reserved_body, utc

from ordersync.forensics import (
    Cause,
    LogRecord,
    Origin,
    Rejection,
    Submission,
    analyze_records,
    render_json,
    render_markdown,
)


def naive_demo_records() -> list[LogRecord]:
    """The naive platform: take-profit before the fill, then a stop-loss beside the take-profit."""
    parent = Submission(
        "P1", utc("10:00:00"), symbol="OKE", side="buy", qty=Decimal(9), origin=Origin.JOURNAL
    )
    tp = Submission("T1", utc("10:01:00"), symbol="OKE", side="sell", qty=Decimal(9), origin=Origin.JOURNAL)
    short = [Rejection(SHORT_SELL, utc(t), Origin.JOURNAL, symbol="OKE") for t in ("10:00:00.5", "10:00:30")]
    held = [
        Rejection(reserved_body("OKE", 9, "T1"), utc(t), Origin.JOURNAL)
        for t in ("10:01:01", "10:01:31", "10:02:01")
    ]
    return [parent, *short, tp, *held]


def test_naive_demo_refusals_all_count_and_land_on_the_parent_buy() -> None:
    report = analyze_records(naive_demo_records(), source="journal")
    assert (report.summary.issues, report.summary.parents, report.summary.unlinked_issues) == (5, 1, 0)
    (row,) = report.parents
    assert (row.broker_order_id, row.side, row.errors, row.linked_by_symbol) == ("P1", "buy", 5, 2)
    e = row.evidence
    assert (e.short_sell_refusals, e.all_reserved, e.related_to_other, e.related_absent) == (2, 3, 3, 2)
    assert row.cause is Cause.RESERVED_BY_OPEN_ORDER


def test_naive_demo_verdict_names_the_sibling_child_holding_the_shares() -> None:
    report = analyze_records(naive_demo_records())
    assert "names another order than the parent" in report.verdict.text
    assert "was an open sell holding the shares" not in report.verdict.text  # sides are known here


def test_short_sell_refusal_without_a_matching_submission_is_reported_unlinked() -> None:
    report = analyze_records([Rejection(SHORT_SELL, utc("10:00:00"), symbol="KMI")])
    (row,) = report.parents
    assert (row.broker_order_id, row.symbol, row.errors) == (None, "KMI", 1)
    assert report.summary.unlinked_issues == 1
    assert "(not linked)" in render_markdown(report)


def test_refusal_naming_an_order_never_submitted_is_reported_with_unknown_submit_time() -> None:
    report = analyze_records([Rejection(reserved_body("OKE", 9, "X9"), utc("10:00:00"))])
    (row,) = report.parents
    assert (row.broker_order_id, row.submitted_at, row.delay) == ("X9", None, None)
    assert report.buckets.unknown == 1


def test_clean_journal_shows_the_run_had_no_such_issue() -> None:
    records = [
        Submission(f"P{i}", utc("10:00:00"), symbol="OKE", side="buy", origin=Origin.JOURNAL)
        for i in range(3)
    ]
    report = analyze_records(records, source="ordersync journal")
    assert (report.summary.issues, report.summary.submissions, report.found_problems) == (0, 3, False)
    text = render_markdown(report)
    assert "No `40310000` refusals were found" in text
    assert "## Parse Statistics" not in text
    assert '"parse_stats": null' in render_json(report)


def test_other_codes_are_counted_but_not_issues() -> None:
    unique = Rejection(
        replace(SHORT_SELL, code=40010001, message="client_order_id must be unique"), utc("10:00:00")
    )
    report = analyze_records([unique, unique])
    assert (report.summary.issues, report.summary.rejections, report.found_problems) == (0, 2, True)
    assert [(c.code, c.count) for c in report.by_code] == [(40010001, 2)]


def test_earliest_submission_of_a_repeated_order_id_wins() -> None:
    late = Submission("P1", utc("10:05:00"), symbol="OKE", side="buy")
    early = Submission("P1", utc("10:00:00"), symbol="OKE", side="buy")
    body = reserved_body("OKE", 9, "P1")
    report = analyze_records([late, early, Rejection(body, utc("10:06:00"))])
    assert report.parents[0].submitted_at == utc("10:00:00")


def test_symbol_less_refusals_are_linked_by_the_lines_symbol_token_and_db_copies_still_merge() -> None:
    wash = replace(SHORT_SELL, message="potential wash trade detected. use complex orders")
    records: list[LogRecord] = [
        Submission("P1", utc("10:00:00"), symbol="OKE", side="buy"),
        Submission("P2", utc("10:00:00"), symbol="ET", side="buy"),
        Rejection(wash, utc("10:00:01"), Origin.ALPACA_LOG, symbol="OKE"),
        Rejection(wash, utc("10:00:01"), Origin.DB_LOG, child_kind="SL", platform_order=101),
        Rejection(wash, utc("10:00:02"), Origin.ALPACA_LOG, symbol="ET"),
        Rejection(wash, utc("10:00:02"), Origin.DB_LOG, child_kind="SL", platform_order=102),
    ]
    report = analyze_records(records)
    assert (report.summary.issues, report.summary.duplicates_merged) == (2, 2)
    assert sorted((p.broker_order_id, p.errors) for p in report.parents) == [("P1", 1), ("P2", 1)]
    assert report.verdict.cause is Cause.SELL_BEFORE_FILL
