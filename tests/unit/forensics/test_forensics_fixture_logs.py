"""Every `tests/fixtures/logs/*.expected.json` names a log and the figures its report must show.

To check a new log (e.g. one written by a simulator run of the naive demo), drop it next to a sidecar
such as `{"log": "naive_demo.log", "summary": {"issues": 42, "rejections": 57}}`; any `Summary` field
may be listed, and `"stats"` may list `ParseStats` fields.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from forensics_support import LOGS

from ordersync.forensics import analyze_paths

SIDECARS = sorted(LOGS.glob("*.expected.json"))


def test_there_are_sidecars() -> None:
    assert {p.name for p in SIDECARS} >= {"seed_incident.expected.json", "seed_sample.expected.json"}


@pytest.mark.parametrize("sidecar", SIDECARS, ids=lambda p: p.name)
def test_log_report_matches_its_expected_counts(sidecar: Path) -> None:
    expected = json.loads(sidecar.read_text(encoding="utf-8"))
    report = analyze_paths([LOGS / expected["log"]])
    got_summary = {key: getattr(report.summary, key) for key in expected.get("summary", {})}
    got_stats = {key: getattr(report.stats, key) for key in expected.get("stats", {})}
    assert got_summary == expected.get("summary", {})
    assert got_stats == expected.get("stats", {})
