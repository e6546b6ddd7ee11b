"""The files under deploy/ and examples/ are what operators copy: they must match what the code does.

Every metric a dashboard panel queries must be one the engine exports (a renamed metric would leave a panel
silently empty), the example config must load as it stands, and the systemd unit must run the real command.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from ordersync.cli import app
from ordersync.config import load_settings
from ordersync.engine.metrics import EngineMetrics

ROOT = Path(__file__).resolve().parents[3]


def _exported_names() -> set[str]:
    names: set[str] = set()
    for family in EngineMetrics().registry.collect():
        names.add(family.name)
        if family.type == "counter":
            names.add(f"{family.name}_total")
    return names


def test_every_dashboard_query_names_an_exported_metric() -> None:
    dashboard = json.loads((ROOT / "deploy" / "grafana-dashboard.json").read_text())
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\bordersync_[a-z_]+\b", target["expr"])
    }
    assert queried, "the dashboard queries no ordersync metric"
    assert queried <= _exported_names(), f"not exported: {sorted(queried - _exported_names())}"


def test_the_example_config_loads_with_its_documented_defaults() -> None:
    settings = load_settings(ROOT / "examples" / "ordersync.yaml")
    assert settings.engine.poll_interval_s == 2
    assert settings.broker.requests_per_minute <= 200
    assert settings.store.url.startswith("sqlite:///")


def test_the_systemd_unit_runs_an_existing_command_with_existing_options() -> None:
    unit = (ROOT / "deploy" / "ordersync.service").read_text()
    exec_line = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    args = exec_line.split()[1:]
    assert args[0] == "run"
    options = [a for a in args if a.startswith("--")]
    help_text = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "200"}).stdout
    for option in options:
        assert option in help_text, f"{option} is not an option of `ordersync run`"
