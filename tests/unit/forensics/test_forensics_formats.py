"""Every log format `analyze` reads, each carrying the same incident with a known truth (make_format_logs.py).

Per format: exact refusals per parent, the cause per parent, the competing orders, what was merged;
then gzip, several inputs, duplicates, exports, syslog years, unreadable inputs and the issue's
"9 of 25 retries lost" case.
"""

from __future__ import annotations

import codecs
import gzip
import json
import os
import random
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from forensics_support import LOGS, fixture_module

from ordersync.forensics import Cause, IncidentReport, LogInputError, analyze_paths, render_json

GEN = fixture_module("make_format_logs")
TRUTH = GEN.TRUTH


def write(tmp_path: Path, fmt: str) -> Path:
    path = tmp_path / f"incident.{fmt}.log"
    path.write_bytes(GEN.build(fmt))
    os.utime(path, (0, datetime(2025, 10, 11, 8, tzinfo=UTC).timestamp()))  # syslog3164 takes its year here
    return path


def rows(report: IncidentReport) -> dict[str | None, tuple[str | None, int, str, tuple[str, ...]]]:
    return {
        p.broker_order_id: (p.symbol, p.errors, p.cause.value, tuple(c.broker_order_id for c in p.competing))
        for p in report.parents
    }


@pytest.mark.parametrize("fmt", GEN.FORMATS)
def test_each_format_gives_the_exact_truth_per_parent(tmp_path: Path, fmt: str) -> None:
    report = analyze_paths([write(tmp_path, fmt)])
    assert report.summary.issues == TRUTH["issues"]
    assert rows(report) == TRUTH["parents"]
    adjacent = 1 if fmt == "text" else 0  # the untimed DB row under an error line exists in text only
    assert report.summary.duplicates_merged == TRUTH["db_copies"] + adjacent
    assert report.stats is not None
    assert report.stats.unparseable == 0
    assert dict(report.stats.files[0].formats) == {
        {"jsonlogger": "json"}.get(fmt, fmt): 14 + 2 * adjacent - adjacent
    }


@pytest.mark.parametrize("fmt", GEN.FORMATS)
def test_each_format_keeps_the_times(tmp_path: Path, fmt: str) -> None:
    report = analyze_paths([write(tmp_path, fmt)])
    oke = next(p for p in report.parents if p.symbol == "OKE")
    assert oke.submitted_at is not None
    whole_seconds = fmt == "syslog3164"  # RFC 3164 has no fraction of a second
    assert oke.submitted_at == GEN.at("15:59:16" if whole_seconds else "15:59:16.078")
    assert oke.first_error_at is not None
    assert oke.first_error_at.replace(microsecond=0) == GEN.at("16:02:40")
    assert oke.last_error_at is not None
    assert oke.last_error_at.replace(microsecond=0) == GEN.at("16:03:40")


def test_competing_order_is_named_with_side_qty_and_the_refused_children(tmp_path: Path) -> None:
    report = analyze_paths([write(tmp_path, "structlog")])
    oke = next(p for p in report.parents if p.symbol == "OKE")
    (tp,) = oke.competing
    assert (tp.broker_order_id, tp.client_order_id, tp.side, tp.qty, tp.source) == (
        "T-OKE-2f3b699f",
        "p-oke-tp-1",
        "sell",
        Decimal(9),
        "log",
    )
    assert oke.listed_role == "parent"
    assert oke.child_ids == ("p-oke-sl-1", "p-oke-sl-2", "p-oke-sl-3")
    assert '"held_for_orders":"9"' in dict(oke.quotes)["all_reserved"]


def test_related_orders_naming_the_parent_itself_is_explained(tmp_path: Path) -> None:
    report = analyze_paths([write(tmp_path, "text")])
    et = next(p for p in report.parents if p.symbol == "ET")
    assert (et.listed_role, et.cause) == ("parent", Cause.SELL_BEFORE_FILL)
    assert et.listed_note is not None
    assert "names the parent itself in 2 refusal(s)" in et.listed_note
    assert "before the fill" in et.listed_note


def test_causes_are_distributed_across_parents_not_voted_over_bodies(tmp_path: Path) -> None:
    report = analyze_paths([write(tmp_path, "text")])
    assert [(c.cause.value, c.parents, c.refusals) for c in report.causes] == [
        ("oversized_sell", 1, 1),
        ("reserved_by_open_order", 1, 3),
        ("sell_before_fill", 1, 2),
    ]
    assert report.verdict.cause is Cause.MIXED
    assert "(1 of 3 parents)" in report.verdict.headline


def test_a_fifty_fifty_split_of_parents_reads_as_two_causes(tmp_path: Path) -> None:
    keep = {"OKE", "ET"}
    events = [e for e in GEN.EVENTS if e.symbol in keep]
    lines = [line for e in events for line in GEN.text_lines(e)]
    path = tmp_path / "split.log"
    path.write_text("\n".join(lines) + "\n")
    report = analyze_paths([path])
    assert report.verdict.cause is Cause.MIXED
    assert "(1 of 2 parents)" in report.verdict.headline
    assert "sell came before the buy filled" in report.verdict.headline
    assert "reserved by another open order" in report.verdict.headline


def test_formats_mixed_across_several_inputs_and_gzip(tmp_path: Path) -> None:
    text = GEN.build("text").splitlines(keepends=True)
    a, b = tmp_path / "a.log", tmp_path / "b.log.gz"
    a.write_bytes(b"".join(text[: len(text) // 2]))
    b.write_bytes(gzip.compress(b"".join(text[len(text) // 2 :])))
    report = analyze_paths([a, b])
    assert report.stats is not None
    assert [f.gzip for f in report.stats.files] == [False, True]
    assert rows(report) == TRUTH["parents"]


def test_the_same_file_given_twice_counts_once_with_a_note(tmp_path: Path) -> None:
    path = write(tmp_path, "docker")
    copy = tmp_path / "copy-of-it.log"
    copy.write_bytes(path.read_bytes())
    report = analyze_paths([path, path, copy])
    assert report.summary.issues == TRUTH["issues"]
    assert report.stats is not None
    assert report.stats.duplicate_inputs == 2
    assert [f.kind for f in report.stats.files] == ["log", "duplicate", "duplicate"]
    assert any("input given twice" in m.reason and m.count == 2 for m in report.merges)


def test_untimed_db_rows_far_from_any_error_line_count_as_refusals(tmp_path: Path) -> None:
    # the issue's case: a take-profit retried 25 times, 16 in the app log, 9 only in a DB dump without times
    body = json.dumps(GEN.reserved("OKE", 9, 9, "T-OKE-2f3b699f"), separators=(",", ":"))
    app = tmp_path / "app.log"
    app.write_text(
        "".join(
            f"2025-10-10 16:{10 + i:02d}:00,000 - AlpacaAccount - ERROR - "
            f"Error submitting order to Alpaca: {body}\n"
            for i in range(16)
        )
    )
    db = tmp_path / "db.log"
    db.write_text("".join(f"('ERROR', 'TP for order 7 | Error: {body}')\n" for _ in range(9)))
    report = analyze_paths([app, db])
    assert (report.summary.issues, report.summary.duplicates_merged, report.buckets.unknown) == (25, 0, 25)


def test_syslog_year_from_the_mtime_and_across_new_year(tmp_path: Path) -> None:
    line = "<11>{when} host platform[1]: AlpacaAccount - ERROR - Error submitting order to Alpaca: {body}\n"
    body = json.dumps(GEN.reserved("OKE", 9, 9, "T1"), separators=(",", ":"))
    path = tmp_path / "messages"
    path.write_text(
        line.format(when="Dec 31 23:59:50", body=body) + line.format(when="Jan  1 00:00:10", body=body)
    )
    os.utime(path, (0, datetime(2025, 1, 2, tzinfo=UTC).timestamp()))
    report = analyze_paths([path])
    (row,) = report.parents
    assert (row.first_error_at, row.last_error_at) == (
        datetime(2024, 12, 31, 23, 59, 50, tzinfo=UTC),
        datetime(2025, 1, 1, 0, 0, 10, tzinfo=UTC),
    )
    assert any("2024, 2025 inferred from the file's modification time" in n for n in report.notes)


def test_syslog_year_from_a_dated_export_when_given(tmp_path: Path) -> None:
    log = write(tmp_path, "syslog3164")
    os.utime(log, (0, datetime(2031, 6, 1, tzinfo=UTC).timestamp()))  # a copied file: the mtime misleads
    orders = tmp_path / "orders.json"
    orders.write_text(json.dumps(GEN.ORDERS_EXPORT))
    report = analyze_paths([log, orders])
    assert rows(report) == TRUTH["parents"]
    assert any("inferred from the broker export" in n for n in report.notes)
    assert report.summary.first_error_at is not None
    assert report.summary.first_error_at.year == 2025


def test_exports_fill_in_fills_statuses_and_the_exposure(tmp_path: Path) -> None:
    orders, fills = tmp_path / "orders.json", tmp_path / "fills.json"
    orders.write_text(json.dumps(GEN.ORDERS_EXPORT))
    fills.write_text(json.dumps(GEN.FILLS_EXPORT))
    report = analyze_paths([write(tmp_path, "text"), orders, fills])
    assert report.broker_export
    assert report.stats is not None
    assert [(f.kind, f.rows) for f in report.stats.files[:0:-1]] == [
        ("fills_export", 2),
        ("orders_export", 4),
    ]
    by = {p.symbol: p for p in report.parents}
    oke, et = by["OKE"], by["ET"]
    assert (oke.filled_qty, oke.filled_at) == (
        Decimal(9),
        datetime(2025, 10, 10, 16, 0, 1, 500000, tzinfo=UTC),
    )
    (tp,) = oke.competing
    assert (tp.status, tp.type, tp.source) == ("new", "limit", "broker export")
    assert oke.exposure is not None  # no sell after the last refusal: open until the export's end
    assert oke.exposure.open_at_end
    assert oke.exposure.end == datetime(2025, 10, 10, 17, 10, 1, tzinfo=UTC)
    assert et.exposure is not None  # filled at 16:10 after its refusals, closed by a market sell at 17:10
    assert (et.exposure.qty, et.exposure.start, et.exposure.ended_by) == (
        Decimal(44),
        datetime(2025, 10, 10, 16, 10, tzinfo=UTC),
        "X-ET-close",
    )
    assert et.exposure.share_hours == Decimal(44)
    sym = {e.symbol: e for e in report.exposures}
    assert (sym["ET"].share_hours, sym["ET"].open_at_end, sym["OKE"].open_at_end) == (
        Decimal(44),
        False,
        True,
    )


def test_a_bare_seed_log_gets_its_parent_from_a_nested_export(tmp_path: Path) -> None:
    # the seed's own lines name the take-profit, not the parent; the nested export shows it is a leg
    export = [
        {
            "id": "PARENT-OKE",
            "client_order_id": "p131",
            "symbol": "OKE",
            "side": "buy",
            "qty": "9",
            "filled_qty": "9",
            "status": "filled",
            "type": "limit",
            "created_at": "2025-10-10T15:59:10Z",
            "filled_at": "2025-10-10T15:59:20Z",
            "legs": [
                {
                    "id": "5dfdb853-25b2-484d-9d97-914c82e8120c",
                    "client_order_id": "p131-tp",
                    "symbol": "OKE",
                    "side": "sell",
                    "qty": "9",
                    "filled_qty": "0",
                    "status": "held",
                    "type": "limit",
                    "created_at": "2025-10-10T15:59:16Z",
                }
            ],
        }
    ]
    orders = tmp_path / "orders.json"
    orders.write_text(json.dumps(export))
    bare = analyze_paths([LOGS / "seed_sample.log"])
    oke_bare = next(p for p in bare.parents if p.symbol == "OKE")
    assert (oke_bare.listed_role, oke_bare.parent_order_id) == ("competing order", None)
    assert oke_bare.competing[0].source == "inferred from the bodies"
    report = analyze_paths([LOGS / "seed_sample.log", orders])
    oke = next(p for p in report.parents if p.symbol == "OKE")
    assert (oke.listed_role, oke.parent_order_id, oke.filled_qty) == (
        "competing order",
        "PARENT-OKE",
        Decimal(9),
    )
    assert (oke.competing[0].side, oke.competing[0].status, oke.competing[0].parent_id) == (
        "sell",
        "held",
        "PARENT-OKE",
    )


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty input"),
        (b"   \n\n", "empty input"),
        (random.Random(3).randbytes(20_000), "binary data"),
        (
            "2025-10-10 16:00:00,000 - x - INFO - hello\n".encode("utf-16-le") * 50,
            "UTF-16 text without a byte-order mark",
        ),
    ],
    ids=["empty", "blank", "random", "utf16-no-bom"],
)
def test_nothing_readable_is_an_input_error_with_one_line(tmp_path: Path, data: bytes, reason: str) -> None:
    path = tmp_path / "input.log"
    path.write_bytes(data)
    with pytest.raises(LogInputError, match=reason) as info:
        analyze_paths([path])
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig"])
def test_a_byte_order_mark_is_honoured(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "bom.log"
    path.write_bytes(GEN.build("text").decode().encode(encoding))
    report = analyze_paths([path])
    assert rows(report) == TRUTH["parents"]
    assert report.stats is not None
    assert report.stats.files[0].encoding != "utf-8"
    assert path.read_bytes()[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF8[:2])


def test_an_unreadable_export_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "orders.json"
    path.write_text('[{"id": "x", "symbol": "OKE"')
    with pytest.raises(LogInputError, match="not valid JSON"):
        analyze_paths([path])


def test_every_format_report_is_valid_json(tmp_path: Path) -> None:
    for fmt in GEN.FORMATS:
        json.loads(render_json(analyze_paths([write(tmp_path, fmt)])))


def test_naive_demo_log_names_the_competing_take_profit_of_each_parent() -> None:
    # the simulator's naive run: the stop-loss is refused while the retried take-profit holds the shares
    report = analyze_paths([LOGS / "naive_demo.log"])
    oke = next(p for p in report.parents if p.symbol == "OKE")
    assert (oke.broker_order_id, oke.side, oke.qty, oke.cause) == (
        "73293176-01b8-438f-830d-7fbb8fca1429",
        "buy",
        Decimal(9),
        Cause.RESERVED_BY_OPEN_ORDER,
    )
    (tp,) = oke.competing
    assert (tp.broker_order_id, tp.client_order_id, tp.side, tp.qty) == (
        "c0d6d009-30d0-4ac2-8cf0-a1f230a0f050",
        "naive-p02-tp-2",
        "sell",
        Decimal(9),
    )
    assert oke.listed_note is not None
    assert "the child came before the fill" in oke.listed_note  # its first take-profit: a short sell
    assert sum(c.parents for c in report.causes) == len(report.parents)
