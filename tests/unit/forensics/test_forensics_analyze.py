"""`analyze_paths` on real files: the seed's numbers, gzip, garbage, huge lines, and bad input."""

from __future__ import annotations

import gc
import gzip
import importlib.util
import random
import sys
from pathlib import Path

import pytest
from forensics_support import LOGS

from ordersync.domain.errors import OrderSyncError
from ordersync.forensics import Cause, IncidentReport, LogInputError, analyze_paths, reader, render_markdown
from ordersync.forensics.render_md_text import minutes

SEED_ROWS = {  # the seed report's table: symbol, submit, first error, time diff, errors
    "5dfdb853-25b2-484d-9d97-914c82e8120c": ("OKE", "15:59:16", "16:02:40", "3.4 min", 1),
    "564db8de-b698-4da6-933d-da12e5f11638": ("STWD", "15:59:49", "16:02:41", "2.9 min", 2),
    "2f3b699f-16e7-4bdd-b8c8-dc766ccaee7c": ("EPD", "16:03:15", "16:19:42", "16.5 min", 4),
    "75b9f869-8e84-4634-958d-a46b8be52453": ("ET", "16:03:49", "16:20:16", "16.4 min", 5),
}


@pytest.fixture(scope="module")
def incident() -> IncidentReport:
    return analyze_paths([LOGS / "seed_incident.log"])


def test_seed_incident_reproduces_the_seed_summary(incident: IncidentReport) -> None:
    s = incident.summary
    assert (s.issues, s.symbols, s.parents) == (21, 13, 13)
    assert (minutes(s.min_delay), minutes(s.max_delay), minutes(s.mean_delay)) == (
        "2.9 min",
        "386.0 min",
        "34.5 min",
    )
    assert [(r.symbol, r.errors) for r in incident.symbols[:3]] == [("ET", 5), ("EPD", 4), ("STWD", 2)]


def test_seed_incident_reproduces_the_seed_table_rows(incident: IncidentReport) -> None:
    rows = {p.broker_order_id: p for p in incident.parents}
    for order_id, (symbol, submitted, first, delay, errors) in SEED_ROWS.items():
        p = rows[order_id]
        assert p.submitted_at is not None
        assert p.first_error_at is not None
        got = (
            p.symbol,
            f"{p.submitted_at:%H:%M:%S}",
            f"{p.first_error_at:%H:%M:%S}",
            minutes(p.delay),
            p.errors,
        )
        assert got == (symbol, submitted, first, delay, errors)


def test_seed_incident_buckets_and_still_failing(incident: IncidentReport) -> None:
    b = incident.buckets
    assert (b.short, b.medium, b.long, b.unknown) == (2, 11, 8, 0)
    assert [p.symbol for p in incident.still_failing] == ["EPD"]


def test_seed_incident_counts_duplicates_repairs_other_codes_and_unparseable(
    incident: IncidentReport,
) -> None:
    stats = incident.stats
    assert stats is not None
    assert (incident.summary.duplicates_merged, stats.repaired_bodies, stats.unparseable) == (7, 5, 3)
    assert incident.summary.rejections == 23
    assert {(c.code, c.count) for c in incident.by_code} == {(40310000, 21), (40010001, 1), (42210000, 1)}
    assert stats.lines_read == stats.recognised + stats.other_lines + stats.unparseable


def test_seed_incident_verdict_is_the_reserved_shares_cause(incident: IncidentReport) -> None:
    assert incident.verdict.cause is Cause.RESERVED_BY_OPEN_ORDER
    assert incident.evidence.all_reserved == 21
    assert incident.found_problems


def test_seed_sample_lines_give_two_issues_one_without_a_submission() -> None:
    report = analyze_paths([LOGS / "seed_sample.log"])
    rows = {p.symbol or "": p for p in report.parents}
    assert (report.summary.issues, sorted(rows)) == (2, ["OKE", "STWD"])
    assert minutes(rows["OKE"].delay) == "3.4 min"
    stwd = rows["STWD"]
    assert (stwd.submitted_at, stwd.first_error_at, stwd.untimed_errors, stwd.child_kinds) == (
        None,
        None,
        1,
        (("TP", 1),),
    )
    assert report.buckets.unknown == 1


def test_seed_sample_report_says_the_evidence_contradicts_the_seed_text() -> None:
    text = render_markdown(analyze_paths([LOGS / "seed_sample.log"]))
    assert "shares existed and were all reserved by another open order" in text
    assert 'contradicts the "parent still pending" reading' in text


def test_gzip_is_detected_by_magic_bytes_not_name(tmp_path: Path) -> None:
    disguised = tmp_path / "incident.log"
    disguised.write_bytes(gzip.compress((LOGS / "seed_incident.log").read_bytes()))
    report = analyze_paths([disguised])
    assert report.stats is not None
    assert report.stats.files[0].gzip
    assert report.summary.issues == 21


def test_split_inputs_in_any_order_give_the_same_report(tmp_path: Path) -> None:
    lines = (LOGS / "seed_incident.log").read_bytes().splitlines(keepends=True)
    db_lines = [x for x in lines if b"for order" in x and b"| Error:" in x]
    app = tmp_path / "app.log"
    db = tmp_path / "db.log"
    app.write_bytes(b"".join(x for x in lines if x not in db_lines))
    db.write_bytes(b"".join(db_lines))
    forward, backward = analyze_paths([app, db]), analyze_paths([db, app])
    assert forward.summary == backward.summary
    # the 4 timestamped DB rows still pair by time; the 3 untimed ones lost the error line they sat under,
    # so nothing says they repeat it: they count as 3 refusals without a time (issue 14, item 3)
    assert (forward.summary.issues, forward.summary.duplicates_merged) == (24, 4)
    assert forward.buckets.unknown == 3


def test_crlf_line_endings(tmp_path: Path) -> None:
    path = tmp_path / "crlf.log"
    path.write_bytes((LOGS / "seed_sample.log").read_bytes().replace(b"\n", b"\r\n"))
    report = analyze_paths([path])
    assert report.parents[0].broker_order_id == "5dfdb853-25b2-484d-9d97-914c82e8120c"
    assert report.summary.issues == 2


def test_garbage_only_file_reports_zero_issues_and_its_counts(tmp_path: Path) -> None:
    path = tmp_path / "garbage.log"
    path.write_text("hello\nworld {not json}\nError submitting order to Alpaca: nope\n", encoding="utf-8")
    report = analyze_paths([path])
    assert report.stats is not None
    assert (report.summary.issues, report.stats.lines_read, report.stats.unparseable) == (0, 3, 1)
    assert report.verdict.cause is Cause.NONE
    assert not report.found_problems
    assert "No line of the platform's log formats was found" in render_markdown(report)


def test_binary_junk_and_invalid_utf8_do_not_crash(tmp_path: Path) -> None:
    rng = random.Random(7)
    junk = bytes(rng.randrange(256) for _ in range(200_000))
    marker = b'Error submitting order to Alpaca: {"code":40310000,\xff\xfe"message":"x"}\n'
    path = tmp_path / "junk.bin"
    path.write_bytes(junk + b"\n" + marker + junk)
    report = analyze_paths([path])
    assert report.stats is not None
    assert report.stats.alpaca_errors >= 1
    render_markdown(report)


def test_empty_file_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.log"
    path.write_bytes(b"")
    with pytest.raises(LogInputError, match="empty input"):
        analyze_paths([path])


def test_extremely_long_line_is_truncated_counted_and_the_next_line_still_parsed(tmp_path: Path) -> None:
    path = tmp_path / "long.log"
    sample = (LOGS / "seed_sample.log").read_bytes()
    long_line = b"Error submitting order to Alpaca: {" + b"x" * (5 << 20) + b"\n"
    path.write_bytes(long_line + sample)
    report = analyze_paths([path])
    assert report.stats is not None
    assert (report.stats.oversized_lines, report.stats.unparseable, report.summary.issues) == (1, 1, 2)
    assert report.stats.lines_read == 4


def test_missing_file_raises_a_one_line_input_error(tmp_path: Path) -> None:
    with pytest.raises(LogInputError, match="no such file") as info:
        analyze_paths([tmp_path / "nope.log"])
    assert "\n" not in str(info.value)
    assert isinstance(info.value, OrderSyncError)  # the CLI's one handler maps it to exit code 2


def test_directory_raises_input_error(tmp_path: Path) -> None:
    with pytest.raises(LogInputError, match="not a regular file"):
        analyze_paths([tmp_path])


def test_no_paths_raises_input_error() -> None:
    with pytest.raises(LogInputError, match="no log files"):
        analyze_paths([])


def test_corrupt_gzip_header_raises_input_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.gz"
    path.write_bytes(b"\x1f\x8b" + b"\x00" * 64)
    with pytest.raises(LogInputError, match="cannot read"):
        analyze_paths([path])


def test_truncated_gzip_keeps_the_lines_read_and_notes_the_break(tmp_path: Path) -> None:
    data = gzip.compress((LOGS / "seed_incident.log").read_bytes() * 4)
    path = tmp_path / "cut.log.gz"
    path.write_bytes(data[: len(data) // 2])
    report = analyze_paths([path])
    assert report.stats is not None
    note = report.stats.files[0].note
    assert note is not None
    assert "read stopped after line" in note
    assert report.summary.issues > 0


def test_still_failing_threshold_is_a_parameter() -> None:
    report = analyze_paths([LOGS / "seed_incident.log"], still_failing_hours=0.34)  # 20.4 minutes
    assert {p.symbol for p in report.still_failing} == {"AM", "DTM", "EPD", "WES", "ET"}
    assert report.still_failing[0].symbol == "EPD"


def test_fixture_log_is_what_the_generator_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location("make_incident_log", LOGS / "make_incident_log.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "make_incident_log", module)  # dataclasses resolve their module
    spec.loader.exec_module(module)
    assert module.build_log() == (LOGS / "seed_incident.log").read_bytes()


def test_cyclic_gc_is_restored_after_the_scan_even_on_bad_input(tmp_path: Path) -> None:
    assert gc.isenabled()
    analyze_paths([LOGS / "seed_sample.log"])
    assert gc.isenabled()
    with pytest.raises(LogInputError):
        analyze_paths([tmp_path / "missing.log"])
    assert gc.isenabled()


def test_progress_bar_goes_to_stderr_and_changes_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(reader, "PROGRESS_MIN_BYTES", 0)
    paths = [LOGS / "seed_incident.log", LOGS / "seed_sample.log"]
    with_bar = analyze_paths(paths, progress=True)
    assert capsys.readouterr().out == ""
    assert with_bar.summary == analyze_paths(paths).summary
