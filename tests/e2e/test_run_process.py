"""`ordersync run` as an operator meets it: real processes, real signals.

A run that cannot reach its broker retries its start-up reads for minutes, and a standby waits on the lease
for as long as the active instance lives; SIGTERM and SIGINT must end either phase within seconds, with exit
code 0 and nothing left running. A second instance on the same host stands by instead of crashing on the
metrics port, which it binds only once it is active.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from processes import KEYS, run_config, start_run

from ordersync.sim.process import end_process, free_port
from ordersync.testing import wait_until

pytestmark = [pytest.mark.slow]

SIGNAL_BOUND_S = 5.0


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
    config = run_config(tmp_path, "run", dead_broker, f"sqlite:///{tmp_path / 'o.db'}", free_port())
    log = tmp_path / "run.log"
    proc = start_run(config, log, "--log-format", "console")
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
        active = start_run(
            run_config(tmp_path, "a", base, postgres_url, metrics_port), active_log, "--log-format", "console"
        )
        processes.append(active)
        wait_until(lambda: "active: syncing" in active_log.read_text(), timeout_s=60, what="active")
        standby = start_run(
            run_config(tmp_path, "b", base, postgres_url, metrics_port),
            standby_log,
            "--log-format",
            "console",
        )
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
