"""The in-process harness of the engine e2e tests: a simulator on loopback with a real clock, and an
engine wired to it exactly as ``bootstrap`` wires one to Alpaca (alpaca-py REST, our stream client,
SQLite). Fixtures stay in the test modules (their lifecycles differ); the wiring lives once, here."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from ordersync.brokers.alpaca import AlpacaBroker, AlpacaStream
from ordersync.clocks import SystemClock
from ordersync.domain.order import Order, new_order
from ordersync.domain.protection import PriceRule, ProtectionPlan
from ordersync.engine import Engine, EngineOptions
from ordersync.sim.clock import RealClock
from ordersync.sim.scenarios import parse_scenario
from ordersync.sim.server import SimServer
from ordersync.store import SqlAlchemyStore, open_store

KEY, SECRET = "inprocess-key", "inprocess-secret"
FAST = EngineOptions(
    poll_interval_s=0.2,
    tick_s=0.1,
    stream_silence_s=2.0,
    reconcile_interval_s=1.0,
    release_backoff_base_s=0.2,
    release_backoff_cap_s=1.0,
    lookup_backoff_base_s=0.1,
    lookup_backoff_cap_s=0.5,
    unprotected_alert_s=0.5,
    unknown_alert_s=0.5,
    drift_alert_runs=2,
)
PLAN = ProtectionPlan(
    take_profit=PriceRule(price=Decimal("76.00")), stop_loss=PriceRule(price=Decimal("68.50"))
)


def start_simulator(name: str, cancel_s: float) -> SimServer:
    """Start a one-symbol simulator (OKE at 72.10) whose cancels land ``cancel_s`` real seconds later."""
    scenario = parse_scenario(
        {
            "name": name,
            "symbols": {"OKE": {"price": "72.10", "exchange": "NYSE"}},
            "latency": {"ack_s": 0.02, "cancel_s": cancel_s},
        }
    )
    return SimServer(scenario, RealClock(), api_key=KEY, secret_key=SECRET).start()


def wire_engine(
    sim: SimServer,
    db: Path,
    *,
    clock: SystemClock | None = None,
    options: EngineOptions = FAST,
    stream: bool = True,
) -> tuple[Engine, SqlAlchemyStore]:
    """Build (not start) an engine on a SQLite file, talking to ``sim`` over HTTP and websocket."""
    clock = clock or SystemClock()
    store = open_store(f"sqlite:///{db}")
    broker = AlpacaBroker(KEY, SECRET, clock=clock, base_url=sim.base_url, timeout_s=5)
    events = AlpacaStream(KEY, SECRET, clock=clock, url=sim.stream_url) if stream else None
    return Engine(broker=broker, store=store, clock=clock, stream=events, options=options), store


def parent_order(pid: str, time_in_force: str = "gtc") -> Order:
    """A buy of 10 OKE at a 70.00 limit: below the 72.10 market, it rests until a test fills it."""
    return new_order(
        client_order_id=pid,
        symbol="OKE",
        side="buy",
        type="limit",
        qty=10,
        limit_price="70.00",
        created_at=SystemClock().now(),
        time_in_force=time_in_force,
    )


def position(sim: SimServer, symbol: str = "OKE") -> Decimal:
    """The simulator's position in ``symbol`` (0 when flat)."""
    return sum((Decimal(p["qty"]) for p in sim.snapshot()["positions"] if p["symbol"] == symbol), Decimal(0))


async def until(predicate: Callable[[], bool], what: str, timeout_s: float = 10.0) -> bool:
    """Poll ``predicate`` (real time) until it holds; return False after ``timeout_s`` (``what`` names it
    for the caller's own assertion message)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return False
