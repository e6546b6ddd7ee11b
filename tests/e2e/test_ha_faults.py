"""Failover under the faults an operator meets: a frozen active, a database that goes away, a partition.

Real `ordersync run` processes on one PostgreSQL store and one `ordersync sim serve`. The lease expires
unless renewed (3.5 s), so any silence of the active hands it over; the fencing token makes whatever the old
active does afterwards harmless: its store writes are refused, it sends nothing more to the broker, and it
exits saying the lease was lost. An instance merely cut off from its database pauses and resumes. The
simulator's books judge: every fill protected exactly once, no order twice, no 40310000.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
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
from sqlalchemy.engine import make_url
from tcp_proxy import TcpProxy

from ordersync.sim.process import end_process, free_port, start_simulator_process
from ordersync.testing import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

TAKEOVER_BOUND_S = 5.0  # the lease's 3.5 s expiry plus one 1 s standby poll, with some slack
SLACK_S = 5.0  # a loaded 2-core CI machine: what the bound may be exceeded by before the test fails


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[str]:
    scenario = tmp_path / "s.yaml"
    scenario.write_text('name: ha-faults\nstart: "2025-10-10T15:59:00Z"\nsymbols: {OKE: {price: "72.10"}}\n')
    proc, port = start_simulator_process(
        scenario, clock="real", log_path=tmp_path / "sim.log", env={**os.environ, **KEYS}
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        end_process(proc)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
        end_process(proc)


def _proxied(url: str, proxy: TcpProxy) -> str:
    return make_url(url).set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)


def _pg_address(url: str) -> tuple[str, int]:
    parsed = make_url(url)
    return parsed.host or "127.0.0.1", parsed.port or 5432


def _protected_parent(simulator: str, store_url: str, parent: str) -> None:
    submit_parent(store_url, parent)
    wait_until(lambda: parent in {o["client_order_id"] for o in sim_orders(simulator)}, 30, "the parent")
    post_json(f"{simulator}/sim/fill", {"client_order_id": parent, "qty": "4"})
    wait_until(lambda: coverage(simulator, parent) == 4, 30, "protection of the first fill")


def _active_and_standby(
    tmp_path: Path, simulator: str, stores: tuple[str, str], processes: list[subprocess.Popen[bytes]]
) -> list[Path]:
    """Start an active instance, then a standby; return their logs once each is in its role."""
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    roles = ("active: syncing", "waiting for the lease")
    for i, (log, store, role) in enumerate(zip(logs, stores, roles, strict=True)):
        config = run_config(tmp_path, f"r{i}", simulator, store, free_port())
        processes.append(start_run(config, log, "--log-format", "console"))
        wait_until(lambda log=log, role=role: role in text_of(log), 30, f"instance {i}: {role}")  # type: ignore[misc]
    return logs


def _books_are_clean(simulator: str) -> None:
    state = get_json(f"{simulator}/sim/state")
    coids = [o["client_order_id"] for o in state["orders"]]
    assert len(coids) == len(set(coids)), "an order reached the broker twice"
    assert state["counters"]["rejections"]["by_code"].get("40310000", 0) == 0


def test_a_frozen_active_is_replaced_and_exits_when_it_resumes(
    tmp_path: Path, simulator: str, postgres_url: str, processes: list[subprocess.Popen[bytes]]
) -> None:
    logs = _active_and_standby(tmp_path, simulator, (postgres_url, postgres_url), processes)
    _protected_parent(simulator, postgres_url, "fz-p1")

    processes[0].send_signal(signal.SIGSTOP)  # a GC pause, a stuck disk: alive, connected, silent
    frozen_at = time.monotonic()
    post_json(f"{simulator}/sim/fill", {"client_order_id": "fz-p1", "qty": "6"})
    wait_until(lambda: "active: syncing" in text_of(logs[1]), 30, "the standby to take over")
    takeover_s = time.monotonic() - frozen_at
    wait_until(lambda: coverage(simulator, "fz-p1") == 10, 30, "protection of the fill made while frozen")

    processes[0].send_signal(signal.SIGCONT)
    code = processes[0].wait(timeout=15)
    assert code == 1, f"the resumed instance must exit 1 (lease lost), got {code}:\n{text_of(logs[0])}"
    assert "lease lost" in text_of(logs[0])
    time.sleep(1)
    assert coverage(simulator, "fz-p1") == 10
    _books_are_clean(simulator)
    assert takeover_s < TAKEOVER_BOUND_S + SLACK_S, f"takeover took {takeover_s:.1f} s"
    print(f"takeover after SIGSTOP: {takeover_s:.2f} s")


def test_an_active_cut_off_from_the_database_pauses_and_resumes_without_exiting(
    tmp_path: Path, simulator: str, postgres_url: str, processes: list[subprocess.Popen[bytes]]
) -> None:
    proxy = TcpProxy(_pg_address(postgres_url))
    try:
        log = tmp_path / "a.log"
        config = run_config(tmp_path, "a", simulator, _proxied(postgres_url, proxy), free_port())
        processes.append(start_run(config, log, "--log-format", "console"))
        wait_until(lambda: "active: syncing" in text_of(log), 30, "active")
        _protected_parent(simulator, postgres_url, "db-p1")
        proxy.cut()  # PostgreSQL unreachable for longer than the lease
        wait_until(lambda: "lease_unconfirmed" in text_of(log), 20, "the engine to notice")
        time.sleep(3)
        assert processes[0].poll() is None, f"it must wait for the database, not exit:\n{text_of(log)}"
        assert "another instance is active" not in text_of(log)
        proxy.restore()
        wait_until(lambda: "lease_confirmed" in text_of(log), 30, "the engine to resume")
        post_json(f"{simulator}/sim/fill", {"client_order_id": "db-p1", "qty": "6"})
        wait_until(lambda: coverage(simulator, "db-p1") == 10, 30, "protection after the database came back")
        assert processes[0].poll() is None
        _books_are_clean(simulator)
    finally:
        proxy.close()


def test_a_partitioned_active_loses_to_the_standby_and_its_late_writes_are_refused(
    tmp_path: Path, simulator: str, postgres_url: str, processes: list[subprocess.Popen[bytes]]
) -> None:
    proxy = TcpProxy(_pg_address(postgres_url))
    try:
        stores = (_proxied(postgres_url, proxy), postgres_url)  # only the active goes through the proxy
        logs = _active_and_standby(tmp_path, simulator, stores, processes)
        _protected_parent(simulator, postgres_url, "pt-p1")

        proxy.cut()  # the active can no longer reach the database; the standby can
        cut_at = time.monotonic()
        wait_until(lambda: "active: syncing" in text_of(logs[1]), 30, "the standby to take over")
        takeover_s = time.monotonic() - cut_at
        post_json(f"{simulator}/sim/fill", {"client_order_id": "pt-p1", "qty": "6"})
        wait_until(lambda: coverage(simulator, "pt-p1") == 10, 30, "the new active to protect the fill")
        proxy.restore()
        code = processes[0].wait(timeout=30)
        assert code == 1, text_of(logs[0])
        assert "lease lost" in text_of(logs[0])
        _books_are_clean(simulator)
        assert takeover_s < TAKEOVER_BOUND_S + SLACK_S, f"takeover took {takeover_s:.1f} s"
    finally:
        proxy.close()


def test_a_post_in_flight_when_the_active_freezes_lands_once(
    tmp_path: Path, simulator: str, postgres_url: str, processes: list[subprocess.Popen[bytes]]
) -> None:
    logs = _active_and_standby(tmp_path, simulator, (postgres_url, postgres_url), processes)
    _protected_parent(simulator, postgres_url, "sl-p1")

    # the next child POST takes 4 s to reach the broker's books; the active freezes while it is on the wire
    post_json(f"{simulator}/sim/faults", {"latency_ms": 4000, "routes": ["POST /v2/orders"]})
    post_json(f"{simulator}/sim/fill", {"client_order_id": "sl-p1", "qty": "6"})
    time.sleep(0.5)
    processes[0].send_signal(signal.SIGSTOP)
    wait_until(lambda: "active: syncing" in text_of(logs[1]), 30, "the standby to take over")
    post_json(f"{simulator}/sim/faults", {})
    wait_until(lambda: coverage(simulator, "sl-p1") == 10, 30, "every share protected once")
    processes[0].send_signal(signal.SIGCONT)  # it now learns the answer to its POST: too late to record it
    assert processes[0].wait(timeout=15) == 1, text_of(logs[0])
    time.sleep(1)
    assert coverage(simulator, "sl-p1") == 10, "the late POST and the new active's work never overlap"
    _books_are_clean(simulator)
