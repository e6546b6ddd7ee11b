"""`ordersync analyze --verify` as an operator runs it, against `ordersync sim serve` (issue 19, "done when").

The simulator runs in a process of its own with the seed scenario on a stepped clock. The demo's naive
platform (the seed's mistakes: children sent before the fill, a stop beside a live take-profit) drives it
through alpaca-py and writes its log in the seed's format; sleeping on its clock advances the simulator's,
so the whole 6.5-hour scenario takes a few real seconds. Then orders the log never mentions are placed (a
manual take-profit and a manual stop-loss covering part of a position), and `ordersync
analyze LOG --verify --config FILE --format json` runs as a CLI process with the keys in the environment.
Its `validation` figures must match the simulator's own books (`GET /sim/state`), its reads must be
batched (a handful of requests, not one per order), and it must exit 1 while shares are unprotected.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, TimeInForce
from alpaca.trading.requests import LimitOrderRequest, StopOrderRequest
from processes import get_json, post_json

from ordersync.demo.naive import NaivePlatform, parents_of
from ordersync.demo.platform_log import PlatformLog
from ordersync.demo.run import scenario_end
from ordersync.sim.process import end_process, start_simulator_process
from ordersync.sim.scenarios import load_scenario

SEED = Path(__file__).resolve().parents[2] / "src" / "ordersync" / "sim" / "scenarios" / "seed_incident.yaml"
KEYS = {"APCA_API_KEY_ID": "verify-key", "APCA_API_SECRET_KEY": "verify-secret-value"}
OPEN = {"new", "accepted", "pending_new", "partially_filled", "held", "pending_replace", "pending_cancel"}
ANALYZE = (sys.executable, "-m", "ordersync", "analyze")
POLL_S = 600.0  # the naive platform's poll cycle, in virtual seconds


class ProcessClock:
    """The naive platform's clock on the simulator process's stepped clock: a sleep advances it."""

    def __init__(self, base: str) -> None:
        self._base = base
        self.stop = asyncio.Event()
        self.end: datetime | None = None

    def now(self) -> datetime:
        return datetime.fromisoformat(get_json(f"{self._base}/sim/clock")["now"].replace("Z", "+00:00"))

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            post_json(f"{self._base}/sim/clock/advance", {"seconds": str(seconds)})
        if self.end is not None and self.now() >= self.end:
            self.stop.set()
        await asyncio.sleep(0)

    def touch(self) -> None:
        """Activity needs no tracking: nothing else moves this clock."""


@dataclass
class Simulator:
    base: str
    client: TradingClient


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Simulator]:
    process, port = start_simulator_process(
        SEED, clock="stepped", log_path=tmp_path / "sim.log", env={**os.environ, **KEYS}
    )
    try:
        base = f"http://127.0.0.1:{port}"
        client = TradingClient(KEYS["APCA_API_KEY_ID"], KEYS["APCA_API_SECRET_KEY"], url_override=base)
        client._retry = 0
        yield Simulator(base, client)
    finally:
        end_process(process)


async def naive_run(sim: Simulator, log_path: Path) -> None:
    """The demo's naive run, scheduled on the simulator's stepped clock; its log in the seed's format."""
    scenario = load_scenario(SEED)
    clock = ProcessClock(sim.base)
    log = PlatformLog(log_path)

    def price_of(symbol: str) -> Decimal:  # the quote the platform reads before pricing its exits
        return Decimal(str(books(sim.base)["prices"][symbol]))

    platform = NaivePlatform(  # type: ignore[arg-type]
        sim.client, clock, log, price_of, poll_interval_s=POLL_S, max_child_attempts=5
    )
    start = clock.now()
    for parent in parents_of(scenario):
        await clock.sleep((start + timedelta(seconds=parent.submit_at_s) - clock.now()).total_seconds())
        await platform.submit_parent(parent)
    clock.end = scenario_end(scenario, start)
    await platform.run_polling(clock.stop)
    log.close()


def books(base: str) -> dict[str, Any]:
    return dict(get_json(f"{base}/sim/state"))


def remaining(order: dict[str, Any]) -> Decimal:
    return Decimal(order["qty"]) - Decimal(order["filled_qty"])


def expected_symbol(state: dict[str, Any], symbol: str) -> dict[str, Any]:
    """What the simulator's books say about `symbol`: shares, the open sells holding them, unprotected."""
    position = next((p for p in state["positions"] if p["symbol"] == symbol), None)
    qty = Decimal(position["qty"]) if position else Decimal(0)
    holders = {
        o["id"]: remaining(o)
        for o in state["orders"]
        if o["symbol"] == symbol and o["side"] == "sell" and o["status"] in OPEN
    }
    return {"qty": qty, "holders": holders, "unprotected": max(Decimal(0), qty - sum(holders.values()))}


def analyze_verify(log: Path, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ANALYZE, str(log), "--verify", "--config", str(config), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **KEYS},
    )


def test_verify_against_the_naive_runs_books_matches_the_simulator(sim: Simulator, tmp_path: Path) -> None:
    log = tmp_path / "platform.log"
    asyncio.run(naive_run(sim, log))
    state = books(sim.base)
    free = sorted(p["symbol"] for p in state["positions"] if Decimal(p["qty_available"]) >= 1)
    assert free, state["positions"]  # the naive run leaves shares nothing protects
    # orders the log never mentions: a manual take-profit for 1 unprotected share, and a stop-loss for
    # another, both behind the platform's back
    first = free[0]
    manual = [
        sim.client.submit_order(request)
        for request in (
            LimitOrderRequest(
                symbol=first, qty=1, side=OrderSide.SELL, time_in_force=TimeInForce.GTC, limit_price=999
            ),
            StopOrderRequest(
                symbol=first, qty=1, side=OrderSide.SELL, time_in_force=TimeInForce.GTC, stop_price=1
            ),
        )
    ]
    post_json(f"{sim.base}/sim/clock/advance", {"seconds": "5"})
    state = books(sim.base)
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({"broker": {"base_url": sim.base, "paper": True}}))

    result = analyze_verify(log, config)

    validation = json.loads(result.stdout)["validation"]
    assert books(sim.base)["orders"] == state["orders"]  # read-only
    by_id = {o["id"]: o for o in state["orders"]}
    symbols = {s["symbol"]: s for s in validation["symbols"]}
    assert symbols  # the naive run left refusals, so the report names symbols
    for symbol, row in symbols.items():
        want = expected_symbol(state, symbol)
        assert Decimal(row["qty"]) == want["qty"], symbol
        assert {h["order_id"]: Decimal(h["remaining"]) for h in row["held_by"]} == want["holders"], symbol
        assert Decimal(row["held"]) == sum(want["holders"].values(), Decimal(0))
        assert Decimal(row["unprotected"]) == want["unprotected"], symbol
    for row in validation["parents"]:
        order = by_id[row["order_id"]]  # every parent the report names is known to the broker
        assert (row["status"], Decimal(row["filled_qty"])) == (order["status"], Decimal(order["filled_qty"]))
        assert row["outcome"] in ("confirmed", "corrected")
    manual_ids = {str(o.id) for o in manual}
    assert {h["order_id"] for h in symbols[first]["held_by"] if not h["ours"]} == manual_ids
    assert all(h["ours"] for s in symbols.values() for h in s["held_by"] if h["order_id"] not in manual_ids)
    assert validation["unknown_orders"] == validation["unread_orders"] == []
    # batched: positions, one page of status=all&after= and one of status=open, for all 13 symbols
    assert validation["requests"] == 3
    assert (validation["max_requests"], validation["budget_share"]) == (50, "25%")
    unprotected = any(Decimal(s["unprotected"]) > 0 for s in symbols.values())
    assert unprotected == validation["unprotected_now"]
    assert result.returncode == (1 if unprotected else 0), result.stderr
    assert "verify: broker read 3 of at most 50" in result.stderr  # progress lines off a terminal
