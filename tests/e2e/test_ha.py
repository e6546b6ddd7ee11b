"""High availability: two ``ordersync run`` processes on one account and one PostgreSQL store.

Exactly one holds the lease and works; when it is killed with SIGKILL the standby takes over within
seconds, catches up with what happened meanwhile, and protects it. The simulator's books are the judge:
every fill protected exactly once, no order submitted twice, no 40310000.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ordersync.sim.process import end_process, free_port, ordersync_command, start_simulator_process
from ordersync.testing import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

ORDERSYNC = ordersync_command()
KEYS = {"APCA_API_KEY_ID": "ha-test-key", "APCA_API_SECRET_KEY": "ha-test-secret-value"}
SCENARIO = """
name: ha
start: "2025-10-10T15:59:00Z"
symbols: {OKE: {price: "72.10", exchange: NYSE}}
"""


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def _post(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


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


def _config(tmp_path: Path, base: str, store_url: str, metrics_port: int) -> Path:
    path = tmp_path / f"run-{metrics_port}.yaml"
    config = {
        "broker": {"base_url": base, "stream_url": base.replace("http", "ws") + "/stream"},
        "store": {"url": store_url},
        "engine": {"poll_interval_s": 0.5, "tick_s": 0.2, "stream_silence_s": 5, "reconcile_interval_s": 5},
        "metrics": {"enabled": True, "port": metrics_port},
    }
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


def _run(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as handle:  # the child keeps its own descriptor
        return subprocess.Popen(
            [*ORDERSYNC, "run", "--config", str(config)], env={**os.environ, **KEYS}, stderr=handle
        )


def _orders(base: str) -> list[dict[str, Any]]:
    return list(_get(f"{base}/sim/state")["orders"])


def _coverage(base: str, parent: str) -> Decimal:
    children = [o for o in _orders(base) if o["client_order_id"].startswith(parent + "~")]
    live = [o for o in children if o["status"] not in ("canceled", "expired", "rejected", "replaced")]
    return sum((Decimal(o["qty"]) for o in live), Decimal(0))


def _text(log: Path) -> str:
    return log.read_text(errors="replace") if log.exists() else ""


def _active(logs: list[Path]) -> int:
    marks = [i for i, log in enumerate(logs) if "active: syncing orders" in _text(log)]
    return marks[0] if len(marks) == 1 else -1


def test_one_instance_is_active_and_the_standby_takes_over_after_sigkill(
    tmp_path: Path, simulator: str, postgres_url: str
) -> None:
    ports = [free_port(), free_port()]
    configs = [_config(tmp_path, simulator, postgres_url, port) for port in ports]
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    procs = [_run(configs[0], logs[0])]
    try:
        wait_until(lambda: _active(logs) == 0, 30, "the first instance to become active")
        procs.append(_run(configs[1], logs[1]))
        time.sleep(2)
        assert _active(logs) == 0, "the second instance must stay standby while the first holds the lease"
        submitted = subprocess.run(
            [
                *ORDERSYNC,
                "submit",
                "--db",
                postgres_url,
                "--symbol",
                "OKE",
                "--qty",
                "10",
                "--type",
                "limit",
                "--limit-price",
                "70.00",
                "--take-profit",
                "76",
                "--stop-loss",
                "68.5",
                "--client-order-id",
                "ha-p1",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        assert submitted.stdout.strip() == "ha-p1"
        wait_until(lambda: any(o["client_order_id"] == "ha-p1" for o in _orders(simulator)), 30, "the parent")
        _post(f"{simulator}/sim/fill", {"client_order_id": "ha-p1", "qty": "4"})
        wait_until(lambda: _coverage(simulator, "ha-p1") == 4, 30, "protection of the first fill")
        with urllib.request.urlopen(f"http://127.0.0.1:{ports[0]}/metrics", timeout=5) as response:
            metrics = response.read().decode()
        assert "ordersync_stream_connected 1.0" in metrics, "ordersync run serves /metrics"
        assert "ordersync_submits_total" in metrics

        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait(timeout=10)
        killed_at = time.monotonic()
        _post(f"{simulator}/sim/fill", {"client_order_id": "ha-p1", "qty": "6"})  # while nobody is active
        wait_until(lambda: "active: syncing orders" in _text(logs[1]), 30, "the standby")
        takeover_s = time.monotonic() - killed_at
        wait_until(
            lambda: _coverage(simulator, "ha-p1") == 10, 30, "protection of the fill made during the failover"
        )

        state = _get(f"{simulator}/sim/state")
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
