"""`ordersync demo --compare` and the demo command's promises to a user without a terminal.

The CLI runs in-process (typer's runner: stdout and stderr are not terminals) on a small scenario file, so
the four modes take a few seconds together. The comparison's figures come from the simulator's books; the
test checks the table's shape and that the modes differ where they must (brackets leave the cancelled
partial entry unprotected, the naive baseline is refused), not numbers that depend on timing.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_demo_modes import PARTIALS
from typer.testing import CliRunner

from ordersync.cli import app
from ordersync.demo.compare import COLUMNS, markdown_table
from ordersync.demo.run import MODES
from ordersync.demo.summary import Summary


@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("compare") / "partials.yaml"
    path.write_text(yaml.safe_dump(PARTIALS, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def compared(scenario_file: Path) -> tuple[int, dict[str, Any], str]:
    result = CliRunner().invoke(app, ["demo", "--compare", "--json", "--scenario", str(scenario_file)])
    return result.exit_code, json.loads(result.stdout), result.stderr


def test_compare_runs_all_four_modes_on_one_scenario(compared: tuple[int, dict[str, Any], str]) -> None:
    code, figures, _ = compared

    assert list(figures) == list(MODES)
    for mode, summary in figures.items():
        assert summary["mode"] == mode
        assert summary["parents"] == 3
        assert "unprotected_share_s" in summary
        assert "wash_trade_rejections" in summary
    assert code == 0, "exit status follows safe mode's figures"


def test_compare_shows_where_the_modes_differ(compared: tuple[int, dict[str, Any], str]) -> None:
    _, figures, _ = compared

    assert Decimal(figures["safe"]["unprotected_qty"]) == 0
    assert Decimal(figures["poller"]["unprotected_qty"]) == 0
    assert Decimal(figures["bracket"]["unprotected_qty"]) == 60  # the cancelled partial entry's shares
    assert figures["naive"]["insufficient_qty_rejections"] > 0
    assert figures["bracket"]["broker_requests"] == 3
    exposure = {mode: Decimal(s["unprotected_share_s"]) for mode, s in figures.items()}
    assert exposure["safe"] < exposure["bracket"]
    assert exposure["poller"] < exposure["bracket"]


def test_compare_prints_progress_lines_on_stderr_without_a_terminal(
    compared: tuple[int, dict[str, Any], str],
) -> None:
    _, _, stderr = compared

    for mode in MODES:
        assert f"demo {mode}: virtual 2025-10-10T" in stderr, stderr[-2000:]


def test_compare_table_has_a_column_per_mode(scenario_file: Path) -> None:
    result = CliRunner().invoke(
        app, ["demo", "--compare", "--scenario", str(scenario_file)], env={"COLUMNS": "200"}
    )

    header = next(line for line in result.stdout.splitlines() if line.startswith("┃ figure"))
    assert all(mode in header for mode in MODES), result.stdout
    assert "unprotected share-seconds" in result.stdout


@pytest.mark.parametrize("mode", ["poller", "bracket", "naive"])
def test_log_is_written_in_the_seed_format_by_every_platform_mode(
    mode: str, scenario_file: Path, tmp_path: Path
) -> None:
    log = tmp_path / f"{mode}.log"
    result = CliRunner().invoke(
        app, ["demo", "--json", "--mode", mode, "--scenario", str(scenario_file), "--log", str(log)]
    )

    assert result.exit_code in (0, 1), result.stderr
    assert (
        " - AlpacaAccount - INFO - Successfully submitted order to Alpaca: broker_order_id="
        in log.read_text()
    )


@pytest.mark.parametrize("args", [["--mode", "safe"], ["--compare"]])
def test_log_is_refused_with_one_line_where_there_is_no_platform_log(args: list[str], tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", *args, "--log", str(tmp_path / "x.log")])

    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "--log" in result.stderr
    assert not (tmp_path / "x.log").exists()


def _stop_limit_above_its_stop(tmp_path: Path) -> Path:
    stop_loss = {"stop_price": "16.50", "limit_price": "16.70"}  # a sell stop-limit whose limit is above it
    data = {**PARTIALS, "parents": [{**PARTIALS["parents"][2], "stop_loss": stop_loss}]}
    path = tmp_path / "stop-limit.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_an_exit_the_engine_cannot_place_is_refused_in_safe_mode_with_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["demo", "--json", "--scenario", str(_stop_limit_above_its_stop(tmp_path))]
    )

    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "is beyond its stop" in result.stderr


def test_an_unknown_mode_is_refused_naming_the_four_modes() -> None:
    result = CliRunner().invoke(app, ["demo", "--mode", "fast"])

    assert result.exit_code == 2
    assert "safe, naive, poller, bracket" in result.stderr


def test_compare_runs_a_trailing_stop_in_every_mode_and_notes_what_the_bracket_drops(tmp_path: Path) -> None:
    data = {**PARTIALS, "parents": [{**PARTIALS["parents"][2], "stop_loss": {"trail_percent": "2"}}]}
    path = tmp_path / "trailing.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")

    result = CliRunner().invoke(app, ["demo", "--compare", "--json", "--scenario", str(path)])

    figures = json.loads(result.stdout)
    assert figures["safe"]["refused"] is None  # the engine places trailing stops (architecture §14.1)
    assert [figures[m]["parents"] for m in ("safe", "naive", "poller", "bracket")] == [1, 1, 1, 1]
    assert figures["bracket"]["notes"] == ["b03: a trailing stop cannot be a bracket leg; sent without it"]
    assert result.exit_code == 0  # safe mode protected everything


def test_the_bench_table_has_one_markdown_line_per_scenario_and_mode() -> None:
    safe = Summary(
        mode="safe",
        scenario="seed",
        broker_rejections=6,
        insufficient_qty_rejections=3,
        wash_trade_rejections=1,
        unprotected_share_s="1234.5",
        unprotected_qty="0",
        fill_to_protect_ms={"p50": 59.3, "p99": 20463.5, "max": 14280070.7, "n": 9},
        broker_requests=1680,
        children_submitted=8,
    )
    refused = Summary(
        mode="safe", scenario="trailing", refused="parent b03: a trailing-stop ... not supported"
    )

    lines = markdown_table([safe, refused]).splitlines()

    assert [c.strip() for c in lines[0].strip("|").split("|")] == list(COLUMNS)
    assert set(lines[1]) <= {"|", "-", ":"}
    cells = [c.strip() for c in lines[2].strip("|").split("|")]
    assert cells == ["seed", "safe", "1,234.5", "0", "3 / 1 / 2", "0.1 / 20.5 / 14,280.1", "1,680", "8"]
    assert "refused: a trailing-stop ... not supported" in lines[3]
    assert len({len(line) for line in lines}) == 1, "columns line up in a terminal too"
