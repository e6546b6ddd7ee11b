"""The Markdown mirrors the seed's sections and tables; the JSON carries the same figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from forensics_support import LOGS, reserved_body, utc

from ordersync.forensics import (
    IncidentReport,
    LogRecord,
    Rejection,
    Submission,
    analyze_paths,
    analyze_records,
    render_json,
    render_markdown,
)


@pytest.fixture(scope="module")
def incident() -> IncidentReport:
    return analyze_paths([LOGS / "seed_incident.log"])


def test_markdown_has_the_seed_sections_in_order(incident: IncidentReport) -> None:
    text = render_markdown(incident)
    headings = [
        "## Executive Summary",
        "### Broker Order IDs with Issues",
        "### Error Pattern Analysis",
        "### Still Failing After 1 Hour(s)",
        "### Most Affected Symbols",
        "## Technical Root Cause",
        "### Evidence per Parent",
        "## Parse Statistics",
        "### Unparseable Lines (first 3)",
    ]
    positions = [text.index(h) for h in headings]
    assert positions == sorted(positions)


def test_markdown_table_rows_match_the_seed_table(incident: IncidentReport) -> None:
    text = render_markdown(incident)
    for row in (
        "| 5dfdb853-25b2-484d-9d97-914c82e8120c | OKE | 15:59:16 | 16:02:40 | 3.4 min | 1 |",
        "| 564db8de-b698-4da6-933d-da12e5f11638 | STWD | 15:59:49 | 16:02:41 | 2.9 min | 2 |",
        "| 2f3b699f-16e7-4bdd-b8c8-dc766ccaee7c | EPD | 16:03:15 | 16:19:42 | 16.5 min | 4 |",
        "| 75b9f869-8e84-4634-958d-a46b8be52453 | ET | 16:03:49 | 16:20:16 | 16.4 min | 5 |",
    ):
        assert row in text
    assert "- **Most Affected**: ET (5 errors), EPD (4 errors), STWD (2 errors)" in text
    assert "- **Average Delay**: 34.5 min" in text


def test_json_carries_the_same_figures(incident: IncidentReport) -> None:
    data = json.loads(render_json(incident))
    assert (data["summary"]["issues"], data["summary"]["symbols"]) == (21, 13)
    assert data["summary"]["min_delay"]["minutes"] == 2.9
    assert data["delay_buckets"] == {"short": 2, "medium": 11, "long": 8, "unknown": 0}
    assert data["still_failing"]["parents"] == ["2f3b699f-16e7-4bdd-b8c8-dc766ccaee7c"]
    assert data["root_cause"]["cause"] == "reserved_by_open_order"
    assert data["root_cause"]["contradicts_pending_reading"] is True
    assert data["parse_stats"]["repaired_bodies"] == 5
    assert len(data["parents"]) == 13


def test_log_text_cannot_break_the_tables_or_fences() -> None:
    body = reserved_body("A|B", 1, "x|y")
    report = analyze_records([Rejection(body, utc("10:00:00"))])
    text = render_markdown(report)
    assert "| x\\|y | A\\|B |" in text


def test_unparseable_example_with_tildes_gets_a_longer_fence(tmp_path: Path) -> None:
    path = tmp_path / "t.log"
    path.write_text("Error submitting order to Alpaca: ~~~~~ no body\n", encoding="utf-8")
    text = render_markdown(analyze_paths([path]))
    assert "\n~~~~~~\nError submitting order to Alpaca: ~~~~~ no body\n~~~~~~" in text


def test_times_show_the_date_when_the_incident_spans_days() -> None:
    records: list[LogRecord] = [
        Submission("P1", utc("23:59:00"), symbol="OKE"),
        Rejection(reserved_body("OKE", 1, "P1"), utc("23:59:00").replace(day=11)),
    ]
    text = render_markdown(analyze_records(records))
    assert "| P1 | OKE | 2025-10-10 23:59:00 | 2025-10-11 23:59:00 | 1440.0 min | 1 |" in text


def test_large_reports_list_the_orders_with_most_refusals_and_say_how_many_are_left_out() -> None:
    records: list[LogRecord] = [Submission(f"P{i}", utc("10:00:00"), symbol="OKE") for i in range(5)]
    records += [
        Rejection(reserved_body("OKE", 1, f"P{i}"), utc(f"10:0{k}:00")) for i in range(5) for k in range(i)
    ]
    report = analyze_records(records)
    text = render_markdown(report, max_rows=2)
    assert "| P4 | OKE |" in text
    assert "| P3 | OKE |" in text
    assert "| P2 | OKE |" not in text
    assert "_2 of 4 orders shown (those with the most refusals); JSON lists all._" in text
    assert "| P1 | OKE |" in render_markdown(report, max_rows=None)


def test_days_from_the_columns_match_the_rows(tmp_path: Path) -> None:
    # the Markdown picks HH:MM:SS or dates from ParentRows.days(), which never builds a row
    late = tmp_path / "two_days.log"
    late.write_text(
        (LOGS / "seed_sample.log").read_text()
        + (LOGS / "seed_sample.log").read_text().replace("2025-10-10", "2025-10-11")
    )
    for path in (LOGS / "seed_incident.log", LOGS / "naive_demo.log", late):
        rows = analyze_paths([path]).parents
        stamps = {t.date() for p in rows for t in (p.submitted_at, p.first_error_at, p.last_error_at) if t}
        assert rows.days() == len(stamps), path  # type: ignore[attr-defined]
    assert analyze_paths([late]).parents.days() == 2  # type: ignore[attr-defined]
