"""`ordersync demo --json` as a user runs it (the README's command): the seed incident, safe and naive.

Both runs replay the packaged default scenario on the embedded simulator and summarize from the simulator's
own books. Safe mode (ordersync) must show none of the incident's symptoms and exit 0; naive mode (the seed's
platform) must reproduce the incident and exit 1. Forensics runs against the same two runs: the naive run's
own log (``--log``) reproduces its refusal count exactly, and the safe run's journal (``--db``, read by
``ordersync analyze --db``) shows no insufficient-qty issue. Each run takes about half a minute, so the
selected modes are started together, as separate processes, when the first test needs one.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ordersync.cli import app
from ordersync.demo.schema import DemoSummary
from ordersync.forensics import analyze_paths
from ordersync.sim import default_scenario
from ordersync.sim.process import ordersync_command

pytestmark = pytest.mark.slow

MODES = ("safe", "naive")
TIMEOUT_S = 300
SUMMARY_KEYS = {
    "parents",
    "children_submitted",
    "broker_rejections",
    "insufficient_qty_rejections",
    "unprotected_qty",
    "overprotected_qty",
    "duplicate_submissions",
    "discrepancies",
    "fill_to_protect_ms",
}


@dataclass
class DemoRun:
    """One `ordersync demo --json --mode M` process and, once finished, what it printed."""

    mode: str
    process: subprocess.Popen[str]
    artifact: Path  # the naive run's platform log, or the safe run's SQLite store
    returncode: int | None = None
    stdout: str = ""
    stderr: str = ""

    def finish(self) -> DemoRun:
        if self.returncode is None:
            try:
                self.stdout, self.stderr = self.process.communicate(timeout=TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.stdout, self.stderr = self.process.communicate()
                pytest.fail(f"`ordersync demo --mode {self.mode}` ran longer than {TIMEOUT_S} s")
            self.returncode = self.process.returncode
        return self

    def summary(self) -> dict[str, Any]:
        try:
            parsed = json.loads(self.stdout)
        except ValueError:
            pytest.fail(f"--json did not print one JSON object; stdout:\n{self.stdout[-2000:]}")
        assert isinstance(parsed, dict)
        DemoSummary.model_validate_json(self.stdout)  # the published contract, docs/demo.schema.json
        return parsed

    def explain(self) -> str:
        return f"exit {self.returncode}\nstdout:\n{self.stdout[-3000:]}\nstderr:\n{self.stderr[-3000:]}"


@pytest.fixture(scope="module")
def demos(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, DemoRun]]:
    """Start every selected mode at once (tests are named ``test_demo_<mode>_...``)."""
    selected = {
        item.name for item in request.session.items if getattr(item, "module", None) is request.module
    }
    modes = [m for m in MODES if any(name.startswith(f"test_demo_{m}_") for name in selected)]
    workdir = tmp_path_factory.mktemp("demo")
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    runs = {mode: _start(mode, workdir, env) for mode in modes}
    yield runs
    for run in runs.values():
        if run.process.poll() is None:
            run.process.kill()
            run.process.communicate()


def _start(mode: str, workdir: Path, env: dict[str, str]) -> DemoRun:
    artifact = workdir / ("naive.log" if mode == "naive" else "safe.db")
    keep = ["--log", str(artifact)] if mode == "naive" else ["--db", f"sqlite:///{artifact}"]
    process = subprocess.Popen(
        [*ordersync_command(), "demo", "--json", "--mode", mode, *keep],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=workdir,  # a fresh directory: nothing but the installed package is used
        env=env,
    )
    return DemoRun(mode, process, artifact)


def test_demo_safe_mode_shows_none_of_the_incidents_symptoms_and_exits_0(demos: dict[str, DemoRun]) -> None:
    run = demos["safe"].finish()
    summary = run.summary()

    assert set(summary) >= SUMMARY_KEYS, run.explain()
    figures = {
        "insufficient_qty_rejections": summary["insufficient_qty_rejections"],
        "unprotected_qty": Decimal(summary["unprotected_qty"]),
        "overprotected_qty": Decimal(summary["overprotected_qty"]),
        "duplicate_submissions": summary["duplicate_submissions"],
        "discrepancies": summary["discrepancies"],
    }
    assert figures == dict.fromkeys(figures, 0), run.explain()
    assert summary["parents"] == len(default_scenario().parents)
    assert summary["children_submitted"] > 0, "safe mode must have protected the fills"
    assert run.returncode == 0, run.explain()


def test_demo_naive_mode_reproduces_the_incident_and_exits_1(demos: dict[str, DemoRun]) -> None:
    run = demos["naive"].finish()
    summary = run.summary()

    assert set(summary) >= SUMMARY_KEYS, run.explain()
    assert summary["insufficient_qty_rejections"] > 0, run.explain()
    assert Decimal(summary["unprotected_qty"]) > 0, run.explain()
    assert summary["parents"] == len(default_scenario().parents)
    assert run.returncode == 1, run.explain()


def test_demo_naive_log_analyzed_reproduces_its_rejection_count(demos: dict[str, DemoRun]) -> None:
    run = demos["naive"].finish()
    summary = run.summary()
    report = analyze_paths([run.artifact])

    assert summary["insufficient_qty_rejections"] > 0, run.explain()
    assert report.summary.issues == summary["insufficient_qty_rejections"]
    assert report.summary.rejections == summary["broker_rejections"]
    assert report.summary.symbols == len({p.symbol for p in default_scenario().parents})


def test_demo_safe_journal_analyzed_has_no_insufficient_qty_issue(demos: dict[str, DemoRun]) -> None:
    run = demos["safe"].finish()
    summary = run.summary()
    db = f"sqlite:///{run.artifact}"
    result = CliRunner().invoke(app, ["analyze", "--db", db, "--format", "json"])

    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["summary"]["issues"] == 0
    assert report["summary"]["submissions"] >= summary["parents"] + summary["children_submitted"]
