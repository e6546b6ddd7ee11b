"""The in-process harness of the engine e2e tests: a simulator on loopback with a real clock, and an
engine built by the composition root (``ordersync.bootstrap.wire``) exactly as ``ordersync run`` builds one
against Alpaca (alpaca-py REST, our stream client, SQLite). Fixtures stay in the test modules (their
lifecycles differ); what tests change in the wiring is passed to ``wire_to_sim``, here."""

from __future__ import annotations

import asyncio
import math
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from ordersync.bootstrap import Wiring, wire
from ordersync.clocks import SystemClock
from ordersync.config import BrokerSettings, Credentials, Settings, StoreSettings
from ordersync.demo.books import books_coverage, owner_of
from ordersync.demo.conductor import Conductor, DemoClock
from ordersync.demo.delays import fill_protections
from ordersync.domain.order import Order, new_order
from ordersync.domain.protection import PriceRule, ProtectionPlan
from ordersync.engine import Engine, EngineOptions
from ordersync.engine.watch import ReconcileReport
from ordersync.ports import Clock, JournalEntry
from ordersync.sim.clock import FlowingClock, RealClock
from ordersync.sim.scenarios import Scenario, parse_scenario
from ordersync.sim.server import SimServer
from ordersync.store import SqlAlchemyStore, open_store
from ordersync.testing import wait_until_async

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


def wire_to_sim(
    base_url: str,
    stream_url: str,
    store_url: str,
    *,
    clock: Clock | None = None,
    key: str = KEY,
    secret: str = SECRET,
    timeout_s: float = 5.0,
    requests_per_minute: float = 190.0,
    **kwargs: Any,
) -> Wiring:
    """Build (not start) an engine on ``store_url`` that talks to a simulator over HTTP and websocket.

    Through the composition root, with the tests' defaults: no lease and a store that does not keep open
    orders in memory (tests read and write the store beside the engine); ``kwargs`` go to ``wire``."""
    broker = BrokerSettings(base_url=base_url, stream_url=stream_url, timeout_s=timeout_s)
    if requests_per_minute != broker.requests_per_minute:
        # above the 200 a config may set: a test that must never wait for the budget (model_copy does not
        # validate, on purpose)
        broker = broker.model_copy(update={"requests_per_minute": requests_per_minute})
    kwargs = {"with_lease": False, "keep_orders": False, **kwargs}
    settings = Settings(broker=broker, store=StoreSettings(url=store_url))
    return wire(settings, Credentials(key_id=key, secret_key=secret), clock, **kwargs)


def wire_engine(
    sim: SimServer,
    db: Path,
    *,
    clock: SystemClock | None = None,
    options: EngineOptions = FAST,
    stream: bool = True,
) -> tuple[Engine, SqlAlchemyStore]:
    """Build (not start) an engine on a SQLite file, talking to ``sim`` over HTTP and websocket."""
    wiring = wire_to_sim(
        sim.base_url, sim.stream_url, f"sqlite:///{db}", clock=clock, options=options, stream=stream
    )
    return wiring.engine, wiring.store


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
    for the caller's own assertion message). The polling is ``ordersync.testing.wait_until_async``'s."""
    try:
        await wait_until_async(predicate, timeout_s, what)
    except AssertionError:
        return False
    return True


# -- virtual time: an engine and the simulator on one clock that jumps over idle stretches ----------------
#
# The demo's conductor (ordersync.demo.conductor) drives both: virtual time flows at real speed while a
# request, a message or a release is in progress and jumps to the next thing due (a planned fill, a poll,
# a backoff) when everything is quiet. Latencies measured from the simulator's books are then real
# processing plus every wait the engine chose, with realistic intervals (a 2 s poll), in seconds of real time.


@dataclass
class VirtualRun:
    """What a virtual-time run leaves behind: the broker's books, the engine's journal, its figures."""

    books: dict[str, Any]
    journal: list[JournalEntry]
    final: ReconcileReport
    requests: int
    virtual_s: float
    budget_waited_s: float
    rate_limited: int
    missed_fills_read: int

    @property
    def requests_per_min(self) -> float:
        return self.requests / max(self.virtual_s / 60.0, 1e-9)

    def alerts(self) -> list[str]:
        """Every alert raised during the run (resolved ones included), by kind."""
        return [str(e.payload.get("alert")) for e in self.journal if e.kind == "alert"]


def virtual_scenario(
    name: str,
    parents: list[dict[str, Any]],
    faults: dict[str, Any] | None = None,
    *,
    symbols: dict[str, str] | None = None,
    rate_limit_per_min: int = 200,
) -> Scenario:
    """A scenario for a virtual-time run: ``parents`` with their fill plans, Alpaca's 200 requests/min."""
    data: dict[str, Any] = {
        "name": name,
        "seed": 11,
        "start": "2025-10-10T14:00:00Z",
        "rate_limit_per_min": rate_limit_per_min,
        "latency": {"ack_s": 0.05, "fill_s": 0.05, "cancel_s": 0.1},
        "symbols": {s: {"price": p} for s, p in (symbols or {"OKE": "72.10"}).items()},
        "parents": parents,
    }
    if faults:
        data["faults"] = faults
    return parse_scenario(data, name)


def closed_stream_url() -> str:
    """A websocket URL nothing listens on: the stream never connects (the stream is down all along)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"ws://127.0.0.1:{port}/stream"


async def run_virtual(
    scenario: Scenario,
    db: Path,
    *,
    options: EngineOptions | None = None,
    stream: str = "up",
    tail_s: float = 60.0,
    final_faults: dict[str, Any] | None = None,
    requests_per_minute: float = 190.0,
    timeout_s: float = 10.0,
) -> VirtualRun:
    """Run the engine against ``scenario`` in virtual time until ``tail_s`` after the last planned fill.

    ``stream``: "up" (the simulator's stream, with whatever stream faults the scenario sets) or "down"
    (a URL nothing listens on). ``final_faults`` are set just before the final dry-run reconciliation
    (the one the demo prints), to prove it survives them.
    """
    server = SimServer(
        scenario, FlowingClock(scenario.start or datetime.now(tz=UTC)), api_key=KEY, secret_key=SECRET
    )
    server.start()
    store = open_store(f"sqlite:///{db}")
    try:
        clock = DemoClock(server)
        begin = clock.now()
        url = server.stream_url if stream == "up" else closed_stream_url()
        wiring = wire_to_sim(
            server.base_url,
            url,
            f"sqlite:///{db}",
            clock=clock,
            timeout_s=timeout_s,
            requests_per_minute=requests_per_minute,
            options=options or EngineOptions(),
            store=store,
            stream_seed=1,
        )
        broker, engine = wiring.broker, wiring.engine

        def busy() -> bool:
            if broker.inflight > 0 or engine.has_queued_work():
                return True
            return any(t not in clock.sleeping for t in engine.background_tasks())

        last_fill = max(
            (p.submit_at_s + max((f.after_s for f in p.fills), default=0.0) for p in scenario.parents),
            default=0.0,
        )
        conductor = Conductor(server, clock, busy)
        driving = asyncio.create_task(conductor.run_until(begin + timedelta(seconds=last_fill + tail_s)))
        await engine.start()
        submitting = asyncio.create_task(_submit_on_schedule(engine, clock, scenario, begin))
        await driving
        await submitting
        # time keeps moving while the run is wrapped up (a budget wait or a backoff sleeps on the clock)
        wrapping = asyncio.create_task(conductor.run_until(clock.now() + timedelta(hours=1)))
        if final_faults is not None:
            server.set_faults(final_faults)
        final = await engine.watch.reconcile(dry_run=True)
        server.set_faults({})
        books = server.snapshot()
        await engine.stop()
        wrapping.cancel()
        return VirtualRun(
            books=books,
            journal=store.read_journal(limit=10**7),
            final=final,
            requests=sum(books["counters"]["requests"].values()),
            virtual_s=(clock.now() - begin).total_seconds(),
            budget_waited_s=broker.budget.waited_s,
            rate_limited=broker.budget.rate_limited,
            missed_fills_read=engine.activities.missed,
        )
    finally:
        store.close()
        server.stop()


async def _submit_on_schedule(engine: Engine, clock: DemoClock, scenario: Scenario, begin: datetime) -> None:
    for parent in sorted(scenario.parents, key=lambda p: p.submit_at_s):
        await clock.sleep((begin + timedelta(seconds=parent.submit_at_s) - clock.now()).total_seconds())
        order = new_order(
            client_order_id=parent.id,
            symbol=parent.symbol,
            side=parent.side,
            type=parent.type,
            qty=parent.qty,
            created_at=clock.now(),
            time_in_force=parent.time_in_force,
            limit_price=parent.limit_price,
        )
        tp = PriceRule(price=parent.take_profit.limit_price) if parent.take_profit else None
        sl = PriceRule(price=parent.stop_loss.stop_price) if parent.stop_loss else None
        await engine.submit(order, ProtectionPlan(take_profit=tp, stop_loss=sl))


@dataclass(frozen=True)
class Protected:
    """One execution of a parent and how long its shares waited for protection (virtual seconds)."""

    parent: str
    at: datetime
    wait_s: float | None  # None: never protected


def fill_to_protect(books: dict[str, Any], parent_ids: set[str]) -> list[Protected]:
    """Each execution of each parent, and when accepted children first covered its cumulative quantity.

    From the broker's books only, as the demo summary and the chaos checks measure it
    (``ordersync.demo.delays.fill_protections``): an execution's venue time, and the moment the parent's
    child groups (an OCO and its leg count once), in submission order, covered it.
    """
    orders: list[dict[str, Any]] = books["orders"]
    by_id = {o["id"]: o for o in orders}
    parents = [o for o in orders if o["client_order_id"] in parent_ids]
    children: dict[str, list[dict[str, Any]]] = {}
    for order in orders:
        owner = None if order["client_order_id"] in parent_ids else owner_of(order, by_id, parent_ids)
        if owner is not None:
            children.setdefault(owner, []).append(order)
    return [
        Protected(pid, at, None if covered is None else (covered - at).total_seconds())
        for pid, at, covered in fill_protections(parents, children)
    ]


def exposure(books: dict[str, Any], parent_ids: set[str]) -> dict[str, tuple[Decimal, Decimal, Decimal]]:
    """Per parent: (filled, shares its live or finished children cover, shares its children were sent for).

    Covered counts an open group once and a finished one by what it sold (docs/architecture.md §2,
    invariant 2; ``ordersync.demo.books.books_coverage``); sent is the sum of every child group's quantity,
    which exceeds the filled quantity only if a child was ever duplicated or over-sized (nothing in these
    runs trims or replaces a child).
    """
    orders: list[dict[str, Any]] = books["orders"]
    by_id = {o["id"]: o for o in orders}
    result: dict[str, tuple[Decimal, Decimal, Decimal]] = {}
    for parent in (o for o in orders if o["client_order_id"] in parent_ids):
        pid = parent["client_order_id"]
        roots = [o for o in orders if o["client_order_id"].startswith(f"{pid}~")]
        groups = [[root, *(by_id[i] for i in root["sim"]["leg_ids"])] for root in roots]
        covered = books_coverage([m for group in groups for m in group])
        sent = sum((Decimal(root["qty"]) for root in roots), Decimal(0))
        result[pid] = (Decimal(parent["filled_qty"]), covered, sent)
    return result


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..1) of a non-empty list."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p * len(ordered)) - 1))]


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
