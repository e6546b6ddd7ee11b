"""``ordersync reconcile [--dry-run]`` and ``ordersync status`` against a live simulator, as a user would."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from alpaca.trading.client import TradingClient
from alpaca.trading.requests import LimitOrderRequest
from typer.testing import CliRunner

from ordersync.cli import app
from ordersync.sim.clock import RealClock
from ordersync.sim.scenarios import parse_scenario
from ordersync.sim.server import SimServer

KEYS = {"APCA_API_KEY_ID": "cli-key", "APCA_API_SECRET_KEY": "cli-secret-value"}


@pytest.fixture
def sim() -> Iterator[SimServer]:
    scenario = parse_scenario({"name": "cli", "symbols": {"OKE": {"price": "72.10"}}})
    server = SimServer(
        scenario, RealClock(), api_key=KEYS["APCA_API_KEY_ID"], secret_key=KEYS["APCA_API_SECRET_KEY"]
    )
    server.start()
    yield server
    server.stop()


def _config(tmp_path: Path, sim: SimServer) -> Path:
    path = tmp_path / "ordersync.yaml"
    config = {
        "broker": {"base_url": sim.base_url, "stream_url": sim.stream_url},
        "store": {"url": f"sqlite:///{tmp_path / 'o.db'}"},
        "metrics": {"enabled": False},
    }
    path.write_text(json.dumps(config))
    return path


def test_reconcile_reports_a_foreign_order_as_others_not_as_drift(tmp_path: Path, sim: SimServer) -> None:
    config = _config(tmp_path, sim)
    runner = CliRunner()
    clean = runner.invoke(app, ["reconcile", "--config", str(config), "--dry-run"], env=KEYS)
    assert clean.exit_code == 0, clean.stderr
    assert "discrepancies: 0" in clean.stdout

    client = TradingClient(KEYS["APCA_API_KEY_ID"], KEYS["APCA_API_SECRET_KEY"], url_override=sim.base_url)
    client.submit_order(
        LimitOrderRequest(
            symbol="OKE", qty=5, side="buy", time_in_force="gtc", limit_price=60.0, client_order_id="manual"
        )
    )
    found = runner.invoke(app, ["reconcile", "--config", str(config), "--dry-run"], env=KEYS)
    assert found.exit_code == 0, "another app's order is not a discrepancy of ours (invariant 8)"
    assert "discrepancies: 0" in found.stdout
    assert "others (not ours, left alone): 1" in found.stdout
    assert "foreign_order" in found.stdout
    assert KEYS["APCA_API_SECRET_KEY"] not in found.stdout + found.stderr

    status = runner.invoke(app, ["status", "--config", str(config)])
    assert status.exit_code == 0
    assert "Parents and their protection" in status.stdout
