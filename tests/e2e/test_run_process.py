"""`ordersync run` as an operator meets it: real processes, real signals.

A run that cannot reach its broker retries its start-up reads for minutes, and a standby waits on the lease
for as long as the active instance lives; SIGTERM and SIGINT must end either phase within seconds, with exit
code 0 and nothing left running. A second instance on the same host stands by instead of crashing on the
metrics port, which it binds only once it is active.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ordersync.sim.process import end_process, free_port, ordersync_command
from ordersync.testing import wait_until

pytestmark = [pytest.mark.slow]

ORDERSYNC = ordersync_command()
KEYS = {"APCA_API_KEY_ID": "ops-test-key", "APCA_API_SECRET_KEY": "ops-test-secret-value"}
SIGNAL_BOUND_S = 5.0


def _config(tmp_path: Path, name: str, base: str, store_url: str, metrics_port: int) -> Path:
    path = tmp_path / f"{name}.yaml"
    config = {
        "broker": {"base_url": base, "stream_url": base.replace("http", "ws") + "/stream"},
        "store": {"url": store_url},
        "engine": {"poll_interval_s": 0.5, "tick_s": 0.2, "stream_silence_s": 5, "reconcile_interval_s": 5},
        "metrics": {"enabled": True, "port": metrics_port},
    }
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


def _start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as handle:
        return subprocess.Popen(
            [*ORDERSYNC, "run", "--config", str(config), "--log-format", "console"],
            env={**os.environ, **KEYS},
            stderr=handle,
        )


def _ended_within(proc: subprocess.Popen[bytes], seconds: float) -> int | None:
    try:
        return proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        return None


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        end_process(proc)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_ends_start_up_while_the_broker_is_unreachable(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]], sig: signal.Signals
) -> None:
    dead_broker = f"http://127.0.0.1:{free_port()}"  # nothing listens: every start-up read fails
    config = _config(tmp_path, "run", dead_broker, f"sqlite:///{tmp_path / 'o.db'}", free_port())
    log = tmp_path / "run.log"
    proc = _start(config, log)
    processes.append(proc)
    wait_until(lambda: "startup_read_failed" in log.read_text(), timeout_s=30, what="a failed start-up read")
    proc.send_signal(sig)
    code = _ended_within(proc, SIGNAL_BOUND_S)
    assert code == 0, f"still running {SIGNAL_BOUND_S} s after {sig.name} (code {code}):\n{log.read_text()}"


@pytest.mark.postgres
def test_a_standby_on_the_same_host_waits_and_ends_on_sigterm(
    tmp_path: Path, postgres_url: str, processes: list[subprocess.Popen[bytes]]
) -> None:
    from ordersync.sim.process import start_simulator_process

    scenario = tmp_path / "s.yaml"
    scenario.write_text('name: ops\nsymbols: {OKE: {price: "72.10"}}\n')
    sim, port = start_simulator_process(
        scenario, clock="real", log_path=tmp_path / "sim.log", env={**os.environ, **KEYS}
    )
    try:
        base = f"http://127.0.0.1:{port}"
        metrics_port = free_port()  # both instances are configured with the same metrics port
        active_log, standby_log = tmp_path / "active.log", tmp_path / "standby.log"
        active = _start(_config(tmp_path, "a", base, postgres_url, metrics_port), active_log)
        processes.append(active)
        wait_until(lambda: "active: syncing" in active_log.read_text(), timeout_s=60, what="active")
        standby = _start(_config(tmp_path, "b", base, postgres_url, metrics_port), standby_log)
        processes.append(standby)
        wait_until(lambda: "waiting for the lease" in standby_log.read_text(), timeout_s=30, what="standby")
        time.sleep(2)  # long enough for a standby that binds the port early to crash on it
        assert standby.poll() is None, f"the standby died:\n{standby_log.read_text()}"
        standby.send_signal(signal.SIGTERM)
        assert _ended_within(standby, SIGNAL_BOUND_S) == 0, standby_log.read_text()
        active.send_signal(signal.SIGTERM)
        assert _ended_within(active, SIGNAL_BOUND_S) == 0, active_log.read_text()
    finally:
        end_process(sim)
