"""Bad input to the CLI: exit code 2, one line naming the problem, nothing written, no secret shown."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ordersync import __version__
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
    assert err.startswith("error: ")
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
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s.db").exists(), "a refused submit writes nothing, not even an empty store"


def test_submit_records_the_parent_once(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 's.db'}"
    args = ["submit", "--db", db, "--symbol", "AAPL", "--qty", "5", "--client-order-id", "mine-1"]
    assert _run(args)[0] == 0
    code, err = _run(args)
    assert code == 2
    assert "mine-1 already exists" in err


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--qty", "1e309"], "qty must be positive"),
        (["--qty", "1e-10"], "more than 9 decimals"),
        (["--qty", "NaN"], "qty must be positive"),
        (["--qty", "5", "--symbol", "A" * 5000], "--symbol must be"),
        (["--qty", "5", "--symbol", "ÄPFEL"], "--symbol must be"),
        (["--qty", "5", "--client-order-id", "p01~tp1"], "reserved for protective children"),
    ],
)
def test_submit_refuses_values_alpaca_would_refuse(tmp_path: Path, extra: list[str], expected: str) -> None:
    db = f"sqlite:///{tmp_path / 's.db'}"
    args = ["submit", "--db", db, "--symbol", "AAPL", *extra]
    code, err = _run(args)
    assert code == 2
    assert expected in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s.db").exists()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:////nonexistent/dir/x.db", "/nonexistent/dir"),
        ("mysql://root@localhost/x", "unsupported store 'mysql'"),
        ("not a url", "not a store URL"),
    ],
)
def test_a_bad_store_url_is_one_line_and_creates_nothing(url: str, expected: str) -> None:
    for args in (["status", "--db", url], ["submit", "--db", url, "--symbol", "AAPL", "--qty", "1"]):
        code, err = _run(args)
        assert code == 2, err
        assert expected in err
        assert len(err.strip().splitlines()) == 1


def test_status_without_a_store_refuses_instead_of_creating_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, err = _run(["status"])
    assert code == 2
    assert "no store at ordersync.db" in err
    assert not (tmp_path / "ordersync.db").exists()


def test_a_read_only_store_is_one_line(tmp_path: Path) -> None:
    db = tmp_path / "ro.db"
    assert _run(["submit", "--db", f"sqlite:///{db}", "--symbol", "AAPL", "--qty", "1"])[0] == 0
    db.chmod(0o444)
    tmp_path.chmod(0o555)
    try:
        code, err = _run(["submit", "--db", f"sqlite:///{db}", "--symbol", "AAPL", "--qty", "2"])
    finally:
        tmp_path.chmod(0o755)
    if os.geteuid() == 0:
        # root writes through permission bits; the store opens, and the second parent is recorded
        assert code == 0, err
    else:
        assert code == 2
        assert "not writable" in err


def test_reconcile_needs_a_config_and_talks_to_no_broker_without_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, err = _run(["reconcile"], {"APCA_API_KEY_ID": "k", "APCA_API_SECRET_KEY": SECRET})
    assert code == 2
    assert "--config" in err
    assert not (tmp_path / "ordersync.db").exists()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("engine: {poll_interval_s: .inf}\n", "engine.poll_interval_s"),
        ("engine: {tick_s: .nan}\n", "engine.tick_s"),
    ],
)
def test_infinite_or_nan_config_values_are_refused(tmp_path: Path, content: str, expected: str) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(content)
    code, err = _run(["run", "--config", str(config)], {"APCA_API_KEY_ID": "k", "APCA_API_SECRET_KEY": "s"})
    assert code == 2
    assert expected in err


@pytest.mark.parametrize("path", ["/dev/zero", "/"])
def test_a_config_that_is_not_a_regular_file_is_refused_without_hanging(path: str) -> None:
    code, err = _run(["run", "--config", path], {"APCA_API_KEY_ID": "k", "APCA_API_SECRET_KEY": "s"})
    assert code == 2
    assert "not a regular file" in err


def test_sim_serve_refuses_a_port_out_of_range() -> None:
    code, err = _run(["sim", "serve", "--port", "99999"])
    assert code == 2
    assert "--port must be between 0 and 65535" in err
    assert len(err.strip().splitlines()) == 1


def test_version_flag_prints_the_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == __version__


def test_flags_take_no_value_placeholder_in_help() -> None:
    # typer 0.29 renders boolean flags as "--dry-run <bool>", which reads as if they took a value
    result = CliRunner().invoke(app, ["reconcile", "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    assert "<bool>" not in result.stdout


def _store_with_alert(tmp_path: Path) -> str:
    from datetime import UTC, datetime

    from ordersync.ports import Alert
    from ordersync.store import open_store

    url = f"sqlite:///{tmp_path / 'a.db'}"
    store = open_store(url)
    try:
        with store.transaction() as tx:
            tx.raise_alert(
                Alert("order_refused", "p01", "refused: wash trade", datetime(2025, 1, 2, tzinfo=UTC))
            )
    finally:
        store.close()
    return url


def test_alerts_lists_and_acknowledges_an_open_alert(tmp_path: Path) -> None:
    url = _store_with_alert(tmp_path)
    result = CliRunner().invoke(app, ["alerts", "--db", url], env={"COLUMNS": "160"})
    assert result.exit_code == 1
    assert "order_refused:p01" in result.stdout
    result = CliRunner().invoke(app, ["alerts", "ack", "order_refused:p01", "--db", url, "--note", "seen"])
    assert result.exit_code == 0, result.stderr
    assert CliRunner().invoke(app, ["status", "--db", url]).exit_code == 0, "no open alert is left"
    code, err = _run(["alerts", "ack", "order_refused:p01", "--db", url])
    assert code == 2
    assert "no open alert order_refused:p01" in err


def test_alerts_ack_refuses_a_malformed_id(tmp_path: Path) -> None:
    code, err = _run(["alerts", "ack", "nocolon", "--db", _store_with_alert(tmp_path)])
    assert code == 2
    assert "KIND:KEY" in err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["demo", "--mode", "naive", "--log", "/nonexistent/dir/x.log"], "--log: cannot write"),
        (["demo", "--db", "sqlite:////nonexistent/dir/x.db"], "/nonexistent/dir"),
        (["demo", "--db", "mysql://x/y"], "unsupported store 'mysql'"),
    ],
)
def test_demo_refuses_unusable_paths_in_one_line_before_running(args: list[str], expected: str) -> None:
    code, err = _run(args)
    assert code == 2
    assert expected in err
    assert len(err.strip().splitlines()) == 1


def test_status_watch_redraws_until_interrupted(tmp_path: Path) -> None:
    import pty
    import select
    import signal
    import subprocess
    import time

    from ordersync.sim.process import ordersync_command

    url = _store_with_alert(tmp_path)
    # a terminal, as a person watching has: rich redraws it live (to a pipe it would print only at the end)
    master, terminal = pty.openpty()
    proc = subprocess.Popen(
        [*ordersync_command(), "status", "--db", url, "--watch", "--interval", "0.2"],
        stdout=terminal,
        stderr=subprocess.PIPE,
        env={**os.environ, "COLUMNS": "160"},
    )
    os.close(terminal)
    out = b""

    def read_for(seconds: float) -> None:
        nonlocal out
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if select.select([master], [], [], 0.1)[0]:
                try:
                    out += os.read(master, 65536)
                except OSError:  # the child closed the terminal
                    return

    try:
        for _ in range(300):  # interrupt once it is watching: a loaded machine can take seconds to start it
            read_for(0.1)
            if b"order_refused" in out:
                break
        read_for(0.6)  # a few redraws
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)
        read_for(0.2)
    finally:
        os.close(master)
    assert proc.returncode == 1, "an alert is open: exit 1 when the watch ends"
    assert b"order_refused" in out
