"""High availability: two ``ordersync run`` processes on one account and one PostgreSQL store.

Exactly one holds the lease and works; when it is killed with SIGKILL the standby takes over within
seconds, catches up with what happened meanwhile, and protects it. The simulator's books are the judge:
every fill protected exactly once, no order submitted twice, no 40310000.
"""

from __future__ import annotations

import os
import signal
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from processes import (
    KEYS,
    coverage,
    get_json,
    post_json,
    run_config,
    sim_orders,
    start_run,
    submit_parent,
    text_of,
)

from ordersync.sim.process import end_process, free_port, start_simulator_process
from ordersync.testing import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SCENARIO = """
name: ha
start: "2025-10-10T15:59:00Z"
symbols: {OKE: {price: "72.10", exchange: NYSE}}
"""


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[str]:
    scenario = tmp_path / "ha.yaml"
    scenario.write_text(SCENARIO)
    env = {**os.environ, **KEYS}
    proc, port = start_simulator_process(scenario, clock="real", log_path=tmp_path / "sim.log", env=env)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        end_process(proc)


def _active(logs: list[Path]) -> int:
    marks = [i for i, log in enumerate(logs) if "active: syncing orders" in text_of(log)]
    return marks[0] if len(marks) == 1 else -1


def test_one_instance_is_active_and_the_standby_takes_over_after_sigkill(
    tmp_path: Path, simulator: str, postgres_url: str
) -> None:
    ports = [free_port(), free_port()]
    configs = [run_config(tmp_path, f"run-{port}", simulator, postgres_url, port) for port in ports]
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    procs = [start_run(configs[0], logs[0])]
    try:
        wait_until(lambda: _active(logs) == 0, 30, "the first instance to become active")
        procs.append(start_run(configs[1], logs[1]))
        time.sleep(2)
        assert _active(logs) == 0, "the second instance must stay standby while the first holds the lease"
        submit_parent(postgres_url, "ha-p1")
        wait_until(
            lambda: any(o["client_order_id"] == "ha-p1" for o in sim_orders(simulator)), 30, "the parent"
        )
        post_json(f"{simulator}/sim/fill", {"client_order_id": "ha-p1", "qty": "4"})
        wait_until(lambda: coverage(simulator, "ha-p1") == 4, 30, "protection of the first fill")
        with urllib.request.urlopen(f"http://127.0.0.1:{ports[0]}/metrics", timeout=5) as response:
            metrics = response.read().decode()
        assert "ordersync_stream_connected 1.0" in metrics, "ordersync run serves /metrics"
        assert "ordersync_submits_total" in metrics

        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait(timeout=10)
        killed_at = time.monotonic()
        post_json(f"{simulator}/sim/fill", {"client_order_id": "ha-p1", "qty": "6"})  # while nobody is active
        wait_until(lambda: "active: syncing orders" in text_of(logs[1]), 30, "the standby")
        takeover_s = time.monotonic() - killed_at
        wait_until(
            lambda: coverage(simulator, "ha-p1") == 10, 30, "protection of the fill made during the failover"
        )

        state = get_json(f"{simulator}/sim/state")
        coids = [o["client_order_id"] for o in state["orders"]]
        assert len(coids) == len(set(coids))
        assert coids.count("ha-p1") == 1, "the parent reached the broker once"
        assert state["counters"]["rejections"]["by_code"].get("40310000", 0) == 0
        # one lease poll (1 s) plus a catch-up; generous for a loaded 2-core machine
        assert takeover_s < 15, f"standby took {takeover_s:.1f}s to take over"
        for log in logs:
            assert KEYS["APCA_API_SECRET_KEY"] not in log.read_text(errors="replace"), (
                "a key leaked into a log"
            )
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=15)
