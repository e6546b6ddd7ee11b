"""Real `ordersync run` processes for the operations tests: configs, starting, reading the simulator's books.

The HA, signal and fault tests drive the same command an operator runs, against `ordersync sim serve` in a
process of its own; the simulator's books (`/sim/state`) are the judge of what reached the broker.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

from ordersync.demo.books import books_coverage
from ordersync.sim.process import ordersync_command

ORDERSYNC = ordersync_command()
KEYS = {"APCA_API_KEY_ID": "ops-test-key", "APCA_API_SECRET_KEY": "ops-test-secret-value"}


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def post_json(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def run_config(tmp_path: Path, name: str, base: str, store_url: str, metrics_port: int) -> Path:
    """Write a config for `ordersync run` against the simulator at ``base``: fast loops, metrics on."""
    path = tmp_path / f"{name}.yaml"
    config = {
        "broker": {"base_url": base, "stream_url": base.replace("http", "ws") + "/stream"},
        "store": {"url": store_url},
        "engine": {"poll_interval_s": 0.5, "tick_s": 0.2, "stream_silence_s": 5, "reconcile_interval_s": 5},
        "metrics": {"enabled": True, "port": metrics_port},
    }
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


def start_run(config: Path, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    """Start `ordersync run --config` with the test keys, its stderr (the log) going to ``log``."""
    with log.open("wb") as handle:  # the child keeps its own descriptor
        return subprocess.Popen(
            [*ORDERSYNC, "run", "--config", str(config), *extra], env={**os.environ, **KEYS}, stderr=handle
        )


def submit_parent(store_url: str, parent: str, qty: str = "10") -> None:
    """Record a resting limit buy on OKE with a take-profit and a stop-loss (`ordersync submit`)."""
    args = ["--symbol", "OKE", "--qty", qty, "--type", "limit", "--limit-price", "70.00", "--tif", "gtc"]
    plan = ["--take-profit", "76", "--stop-loss", "68.5", "--client-order-id", parent]
    subprocess.run([*ORDERSYNC, "submit", "--db", store_url, *args, *plan], capture_output=True, check=True)


def sim_orders(base: str, account: str | None = None) -> list[dict[str, Any]]:
    query = "" if account is None else f"?account={account}"
    return list(get_json(f"{base}/sim/state{query}")["orders"])


def coverage(base: str, parent: str, account: str | None = None) -> Decimal:
    """Shares of ``parent`` its children at the broker cover: live groups in full, ended ones by what they
    sold (``ordersync.demo.books.books_coverage``, as the demo summary and the chaos checks count it)."""
    orders = sim_orders(base, account)
    by_id = {o["id"]: o for o in orders}
    roots = [o for o in orders if o["client_order_id"].startswith(parent + "~")]
    return books_coverage([m for root in roots for m in (root, *(by_id[i] for i in root["sim"]["leg_ids"]))])


def text_of(log: Path) -> str:
    return log.read_text(errors="replace") if log.exists() else ""
