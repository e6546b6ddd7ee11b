"""Forensics against the demo, live: the naive run's own log reproduces its own refusal count exactly, and
a safe run's journal (``ordersync analyze --db``) shows no insufficient-qty issue at all."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ordersync.cli import app
from ordersync.demo.run import DemoOptions, run_demo
from ordersync.forensics import analyze_paths
from ordersync.sim.scenarios import default_scenario

pytestmark = pytest.mark.slow


async def test_analyzing_the_naive_demo_log_reproduces_its_rejection_count(tmp_path: Path) -> None:
    log = tmp_path / "naive.log"
    summary = await run_demo(default_scenario(), DemoOptions(mode="naive", log_path=log))
    report = analyze_paths([log])
    assert summary.insufficient_qty_rejections > 0
    assert report.summary.issues == summary.insufficient_qty_rejections
    assert report.summary.rejections == summary.broker_rejections
    assert report.summary.symbols == len({p.symbol for p in default_scenario().parents})


async def test_a_safe_run_journal_has_no_insufficient_qty_issue(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'safe.db'}"
    summary = await run_demo(default_scenario(), DemoOptions(mode="safe", db_url=db))
    assert summary.insufficient_qty_rejections == 0
    result = CliRunner().invoke(app, ["analyze", "--db", db, "--format", "json"])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["summary"]["issues"] == 0
    assert report["summary"]["submissions"] >= summary.parents + summary.children_submitted
