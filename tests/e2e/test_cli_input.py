"""Bad input to the CLI: exit code 2, one line naming the problem, nothing written, no secret shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from ordersync.cli import app

SECRET = "sk-cli-secret-value-42"


def _run(args: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, args, env=env or {})
    return result.exit_code, result.stderr


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("broker: [unclosed", "not valid YAML"),
        ("- just\n- a list\n", "top level must be a mapping"),
        ("broker: {requests_per_minute: 500}\n", "broker.requests_per_minute"),
        ("brokr: {}\n", "brokr"),
        ("engine: {poll_interval_s: -1}\n", "engine.poll_interval_s"),
    ],
)
def test_a_malformed_config_is_refused_with_the_field_named(
    tmp_path: Path, content: str, expected: str
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(content)
    code, err = _run(
        ["run", "--config", str(config)], {"APCA_API_KEY_ID": "k", "APCA_API_SECRET_KEY": SECRET}
    )
    assert code == 2
    assert err.startswith("ConfigError:")
    assert expected in err
    assert len(err.strip().splitlines()) == 1
    assert SECRET not in err


def test_run_without_keys_in_the_environment_names_the_variables(tmp_path: Path) -> None:
    config = tmp_path / "ok.yaml"
    config.write_text("store: {url: 'sqlite:///" + str(tmp_path / "x.db") + "'}\n")
    code, err = _run(["run", "--config", str(config)], {"APCA_API_KEY_ID": "", "APCA_API_SECRET_KEY": ""})
    assert code == 2
    assert "APCA_API_KEY_ID" in err
    assert "APCA_API_SECRET_KEY" in err
    assert not (tmp_path / "x.db").exists(), "nothing is written on a rejected request"


def test_a_missing_config_file_is_refused(tmp_path: Path) -> None:
    code, err = _run(["run", "--config", str(tmp_path / "nope.yaml")], {"APCA_API_KEY_ID": "k"})
    assert code == 2
    assert "cannot read" in err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["demo", "--mode", "reckless"], "--mode must be one of safe, naive, poller, bracket"),
        (["sim", "serve", "--clock", "warp:9"], "bad clock spec"),
        (["analyze", "/nonexistent/platform.log"], "/nonexistent/platform.log"),
        (["analyze", "--format", "pdf", "x.log"], "--format must be md or json"),
        (["analyze"], "give log files"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args: list[str], expected: str) -> None:
    code, err = _run(args)
    assert code == 2
    assert expected in err
    assert len(err.strip().splitlines()) == 1


def test_a_malformed_scenario_is_refused(tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text("symbols: {OKE: {price: -3}}\n")
    code, err = _run(["demo", "--scenario", str(scenario)])
    assert code == 2
    assert "symbols.OKE.price" in err


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--qty", "0"], "qty must be positive"),
        (["--qty", "ten"], "qty must be a number"),
        (["--qty", "5", "--side", "long"], "unknown side"),
        (["--qty", "5", "--type", "limit"], "needs a limit_price"),
        (["--qty", "5", "--type", "limit", "--limit-price", "100", "--take-profit", "90"], "not beyond"),
    ],
)
def test_submit_refuses_bad_orders_and_writes_nothing(
    tmp_path: Path, extra: list[str], expected: str
) -> None:
    db = f"sqlite:///{tmp_path / 's.db'}"
    code, err = _run(["submit", "--db", db, "--symbol", "AAPL", *extra])
    assert code == 2
    assert expected in err
    code, _ = _run(["status", "--db", db])
    assert code == 0  # an empty store: no parents, no alerts


def test_submit_records_the_parent_once(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 's.db'}"
    args = ["submit", "--db", db, "--symbol", "AAPL", "--qty", "5", "--client-order-id", "mine-1"]
    assert _run(args)[0] == 0
    code, err = _run(args)
    assert code == 2
    assert "mine-1 already exists" in err
