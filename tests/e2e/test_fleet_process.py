"""Many accounts on real `ordersync run --worker` processes: an even split, a SIGKILLed worker, a new one.

One `ordersync sim serve` serves four accounts (each its own keys and books); the catalog and the four
account stores live on PostgreSQL; the operator's commands (`ordersync accounts add|list`, `ordersync submit`)
run as processes too. The simulator's books judge each account: every fill protected once, no order twice,
no 40310000, whichever worker held the account when the fill came.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from processes import ORDERSYNC, coverage, get_json, post_json, sim_orders

from ordersync.engine import record_parent
from ordersync.fleet.catalog import account_store_url
from ordersync.sim.process import end_process, free_port, start_simulator_process
from ordersync.store import open_store
from ordersync.testing import resting_parent, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
ACCOUNTS = [f"acct-{i:03d}" for i in range(1, 5)]


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[str]:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        'name: fleet\nstart: "2025-10-10T14:00:00Z"\nsymbols: {OKE: {price: "72.10"}}\n'
        "accounts: {count: 4, key_prefix: acct}\n"
    )
    proc, port = start_simulator_process(
        scenario, clock="real", log_path=tmp_path / "sim.log", env=os.environ
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        end_process(proc)


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        end_process(proc)


def _config(tmp_path: Path, simulator: str, catalog_url: str, metrics_port: int = 0) -> Path:
    secrets = tmp_path / "secrets"
    for account in ACCOUNTS:  # the simulator's generated keys: id = name, secret = name + "-secret"
        (secrets / account).mkdir(parents=True, exist_ok=True)
        (secrets / account / "key_id").write_text(account)
        (secrets / account / "secret_key").write_text(f"{account}-secret")
    config = {
        "broker": {"base_url": simulator, "stream_url": simulator.replace("http", "ws") + "/stream"},
        "store": {"url": catalog_url},
        "engine": {"poll_interval_s": 0.5, "tick_s": 0.2, "stream_silence_s": 5, "reconcile_interval_s": 5},
        "metrics": {"enabled": metrics_port > 0, "port": metrics_port},
        "fleet": {"secrets_dir": str(secrets), "heartbeat_s": 0.5, "worker_ttl_s": 2.0},
    }
    path = tmp_path / f"fleet-{metrics_port}.yaml"
    path.write_text(json.dumps(config))
    return path


def _ordersync(*args: str, check: bool = True) -> str:
    return subprocess.run([*ORDERSYNC, *args], capture_output=True, text=True, check=check).stdout


def _listing(config: Path) -> dict[str, dict[str, Any]]:
    # exit 1 while an account has an open alert (a stream reconnecting during a takeover): still a listing
    lines = _ordersync("accounts", "list", "--config", str(config), "--json", check=False).splitlines()
    return {row["account"]: row for row in map(json.loads, lines)}


def _holders(config: Path) -> dict[str, int | None]:
    # the pid inside each account's lease holder ("host:pid:nonce"): which worker process runs it
    return {
        account: None if row["active_on"] is None else int(row["active_on"].split(":")[1])
        for account, row in _listing(config).items()
    }


def _start_worker(config: Path, log: Path, workers: list[subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
    with log.open("wb") as handle:
        proc = subprocess.Popen(
            [*ORDERSYNC, "run", "--worker", "--config", str(config), "--log-format", "console"], stderr=handle
        )
    workers.append(proc)
    return proc


def _submit(catalog_url: str, schema: str, parent: str) -> None:
    # what `ordersync submit --db <the account's store>` records, without a process per parent
    store, now = open_store(account_store_url(catalog_url, schema)), datetime.now(UTC)
    try:
        record_parent(store, *resting_parent(parent, now), now)
    finally:
        store.close()


def _submit_everywhere(simulator: str, catalog_url: str, schemas: dict[str, str], parent: str) -> None:
    """Record ``parent`` in every account's store and wait until each account's engine sent it."""
    for account in ACCOUNTS:
        _submit(catalog_url, schemas[account], parent)
    at_broker = lambda a: any(o["client_order_id"] == parent for o in sim_orders(simulator, a))  # noqa: E731
    wait_until(lambda: all(at_broker(a) for a in ACCOUNTS), 40, f"{parent} at the broker in every account")


def _fill_everywhere(simulator: str, parent: str, qty: str) -> None:
    for account in ACCOUNTS:
        post_json(f"{simulator}/sim/fill?account={account}", {"client_order_id": parent, "qty": qty})


def _protected_everywhere(simulator: str, parent: str, qty: int, what: str) -> None:
    wait_until(lambda: all(coverage(simulator, parent, a) == qty for a in ACCOUNTS), 40, what)


def _books_are_clean(simulator: str) -> None:
    for account in ACCOUNTS:
        state = get_json(f"{simulator}/sim/state?account={account}")
        coids = [o["client_order_id"] for o in state["orders"]]
        assert len(coids) == len(set(coids)), f"{account}: an order reached the broker twice"
        assert state["counters"]["rejections"]["by_code"].get("40310000", 0) == 0, account


def test_workers_split_the_accounts_survive_a_kill_and_rebalance_when_one_joins(
    tmp_path: Path, simulator: str, postgres_url: str, workers: list[subprocess.Popen[bytes]]
) -> None:
    config = _config(tmp_path, simulator, postgres_url)
    _ordersync("accounts", "add", *ACCOUNTS, "--config", str(config))
    port = free_port()
    first = _start_worker(config, tmp_path / "w1.log", workers)
    second = _start_worker(_config(tmp_path, simulator, postgres_url, port), tmp_path / "w2.log", workers)
    wait_until(
        lambda: sorted(list(_holders(config).values()).count(p.pid) for p in (first, second)) == [2, 2],
        40,
        "two accounts active on each worker",
    )

    schemas = {a: row["store_schema"] for a, row in _listing(config).items()}
    _submit_everywhere(simulator, postgres_url, schemas, "p1")
    _fill_everywhere(simulator, "p1", "4")
    _protected_everywhere(simulator, "p1", 4, "the first fills protected in every account")

    killed_at = time.monotonic()
    first.send_signal(signal.SIGKILL)  # no goodbye: its heartbeat and its accounts' leases just expire
    first.wait(10)
    _fill_everywhere(simulator, "p1", "6")  # two of these accounts have no live engine right now
    _protected_everywhere(simulator, "p1", 10, "every fill protected after the kill")
    assert set(_holders(config).values()) == {second.pid}, "the survivor runs every account"
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert 'ordersync_worker_accounts{state="active"} 4.0' in metrics
    for account in ACCOUNTS:  # every engine's series, labelled by account (never by order)
        assert f'ordersync_lease_held{{account="{account}"}} 1.0' in metrics

    print(f"fills protected {time.monotonic() - killed_at:.1f} s after a worker was SIGKILLed")
    third = _start_worker(config, tmp_path / "w3.log", workers)
    wait_until(
        lambda: sorted(list(_holders(config).values()).count(p.pid) for p in (second, third)) == [2, 2],
        40,
        "the accounts rebalanced onto the new worker",
    )
    _submit_everywhere(simulator, postgres_url, schemas, "p2")
    _fill_everywhere(simulator, "p2", "10")
    _protected_everywhere(simulator, "p2", 10, "protection after the rebalance")
    _books_are_clean(simulator)
    log = (tmp_path / "w2.log").read_text(errors="replace")
    assert "acct-001-secret" not in log, "no secret in the logs"
