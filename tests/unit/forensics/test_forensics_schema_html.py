"""`--format json` follows docs/analyze.schema.json; `--format html` is one page with no external asset."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from forensics_support import LOGS, fixture_module

from ordersync.forensics import IncidentReport, analyze_paths, render_json
from ordersync.forensics.render_html import render_html
from ordersync.forensics.schema import AnalyzeReport, json_schema

SCHEMA = Path(__file__).resolve().parents[3] / "docs" / "analyze.schema.json"
GEN = fixture_module("make_format_logs")


def reports(tmp_path: Path) -> list[IncidentReport]:
    orders = tmp_path / "orders.json"
    orders.write_text(json.dumps(GEN.ORDERS_EXPORT))
    text = tmp_path / "incident.log"
    text.write_bytes(GEN.build("text"))
    return [
        analyze_paths([LOGS / "seed_incident.log"]),
        analyze_paths([LOGS / "seed_sample.log"]),
        analyze_paths([LOGS / "naive_demo.log"]),
        analyze_paths([text, text, orders]),
    ]


def test_the_published_schema_is_the_generated_one() -> None:
    assert SCHEMA.read_text(encoding="utf-8") == json_schema(), (
        "regenerate: python -m ordersync.forensics.schema > docs/analyze.schema.json"
    )


def test_every_report_validates_against_the_schema(tmp_path: Path) -> None:
    for report in reports(tmp_path):
        AnalyzeReport.model_validate_json(render_json(report))


def test_the_schema_rejects_a_report_with_an_unknown_or_missing_key(tmp_path: Path) -> None:
    doc = json.loads(render_json(analyze_paths([LOGS / "seed_sample.log"])))
    with pytest.raises(ValueError, match="extra"):
        AnalyzeReport.model_validate_json(json.dumps({**doc, "surprise": 1}))
    del doc["exposure"]
    with pytest.raises(ValueError, match="exposure"):
        AnalyzeReport.model_validate_json(json.dumps(doc))


def test_html_is_one_self_contained_page_with_an_svg_per_symbol(tmp_path: Path) -> None:
    report = reports(tmp_path)[3]
    page = render_html(report)
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") == len({p.symbol for p in report.parents}) == 3
    assert not re.search(r"https?://|<script|<link|<img|\bsrc=|@import|url\(", page)
    assert "T-OKE-2f3b699f" in page  # the competing order is named


def test_html_escapes_what_the_log_says(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    body = (
        '{"code":40310000,"message":"<script>alert(1)</script>","symbol":"<b>OKE</b>",'
        '"related_orders":["<i>"]}'
    )
    path.write_text(
        f"2025-10-10 16:00:00,000 - AlpacaAccount - ERROR - Error submitting order to Alpaca: {body}\n"
    )
    page = render_html(analyze_paths([path]))
    assert "<script>" not in page
    assert "<b>OKE</b>" not in page
    assert "&lt;b&gt;OKE&lt;/b&gt;" in page
