"""The public surface is exactly what the CLI relies on, and forensics stays out of the engine's layers."""

from __future__ import annotations

import subprocess
import sys

import ordersync.forensics


def test_public_api_is_exactly_this() -> None:
    assert set(ordersync.forensics.__all__) == {
        "DEFAULT_STILL_FAILING_HOURS",
        "Cause",
        "CodeCount",
        "DelayBuckets",
        "ErrorBody",
        "Evidence",
        "FileStats",
        "IncidentReport",
        "LogInputError",
        "LogRecord",
        "Origin",
        "ParentIssue",
        "ParseStats",
        "Rejection",
        "Submission",
        "Summary",
        "SymbolCount",
        "Unparseable",
        "UnparseableExample",
        "Verdict",
        "analyze_paths",
        "analyze_records",
        "parse_line",
        "render_json",
        "render_markdown",
        "report_to_dict",
    }


def test_importing_forensics_loads_no_engine_store_broker_sim_or_rich() -> None:
    code = "import sys, ordersync.forensics; print(' '.join(sorted(sys.modules)))"
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.split()
    )
    forbidden = {
        "ordersync.engine",
        "ordersync.store",
        "ordersync.brokers",
        "ordersync.sim",
        "rich",
        "pydantic",
    }
    assert not loaded & forbidden
