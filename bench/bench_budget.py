"""API budget and bounded delay: requests and fill-to-protect with 1,000 open orders, stream down or silent.

The engine runs with its production defaults (``EngineOptions()``: the account's FILL activities every
1.8 s (0.9 of the 2 s poll interval) whatever the stream does, catch-up reads while the stream is down or
silent paced by the poller's budget of 42 requests/min, reconcile every 60 s; ``AlpacaBroker``'s token
bucket at 190 requests/min) against the simulator, on the demo's virtual clock (``FlowingClock`` +
``Conductor``: real speed while anything happens, jumps over idle stretches).

Two runs, one per stream condition:

* down: the stream URL points at a closed port for the whole run, so it never connects;
* silent: the stream connects, but the simulator drops every event (``drop_event_p: 1.0``) in the window.

1. Setup (not measured): 1,000 limit buys far below the market, each with a take-profit + stop-loss plan,
   submitted through ``Engine.submit`` (the rate limit is lifted for the setup only, so it takes seconds).
2. Window (measured): the engine runs for a few virtual minutes with all 1,000 open; every ~15 s one
   parent fills completely at the venue (the simulator's in-process fill), and the engine must protect it.

A third run gives the same account, orders and fills to the competent list poller (``demo/poller.py``: one
``GET /v2/orders?status=all`` listing per poll, pages of 500, exits for each newly polled fill) polling at
the engine's interval: the honest peer of ordersync with the stream down (the naive per-order poller's
figure is by construction).

Figures: requests the simulator counted in the window (its ``/sim/state`` counters), per minute against
Alpaca's 200/minute, and per protected order per minute against the naive platform's one GET per order
per 30 s cycle (2 requests/order/minute by construction); 429s received; fill-to-protect from the
simulator's books (each execution's venue time to the ``submitted_at`` of the child covering it) p50 / p99 /
max against the poll interval (the bound is 2x); status staleness = from each venue fill to the engine
applying it (its ``fill`` notification). Targets (issue 17, item 5): at most 60 requests/min and a
staleness p99 within 2 s, besides Alpaca's 200/min and invariant 9's 2x poll.

    python bench/bench_budget.py                 # 1,000 orders, 3 virtual minutes, down and silent
    python bench/bench_budget.py --orders 200 --minutes 2 --poll 1 --stream down
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from alpaca.trading.client import TradingClient

from bench_latency import closed_port_url
from common import Row, log, num, percentile, print_rows, quiet_logs, ratio, timed
from ordersync.brokers.alpaca import AlpacaBroker, AlpacaStream
from ordersync.brokers.alpaca.budget import RequestBudget
from ordersync.demo.conductor import Conductor, DemoClock
from ordersync.demo.platform_log import PlatformLog
from ordersync.demo.poller import PollerPlatform
from ordersync.domain.kinds import NotificationKind
from ordersync.domain.order import OrderStatus, new_order
from ordersync.domain.protection import PriceRule, ProtectionPlan
from ordersync.engine import Engine, EngineOptions, Notification
from ordersync.sim.clock import FlowingClock
from ordersync.sim.scenario_market import ParentModel, StopLossModel, TakeProfitModel
from ordersync.sim.scenarios import parse_scenario
from ordersync.sim.server import SimServer
from ordersync.store import open_store

KEY, SECRET = "bench-key", "bench-secret"
ALPACA_LIMIT_PER_MIN = 200
TARGET_PER_MIN = 60  # issue 17, item 5: 1,000 open, stream down
STALENESS_TARGET_S = 2.0  # the same item: venue fill -> applied, p99
NAIVE_PER_ORDER_PER_MIN = 2.0  # one GET per order every 30 s polling cycle (docs/architecture.md §9)
FILL_EVERY_S = 15.0
PRICE, BUY_AT, TP, SL = Decimal(100), Decimal(50), Decimal(130), Decimal(40)


@dataclass
class Result:
    orders: int
    window_min: float
    requests: dict[str, int]
    rate_limited: int
    fills: list[tuple[str, datetime]] = field(default_factory=list)  # (client_order_id, venue time)
    seen: dict[str, datetime] = field(default_factory=dict)  # client_order_id -> applied (engine clock)
    protected: int = 0
    poll_interval_s: float = 0.0
    stream: str = "down"
    protect_s: list[float] = field(default_factory=list)  # venue fill -> covering child submitted (books)

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    def staleness_s(self) -> list[float]:
        return [(self.seen[c] - at).total_seconds() for c, at in self.fills if c in self.seen]


def scenario(symbols: int) -> Any:
    return parse_scenario(
        {
            "name": "bench-budget",
            "start": "2025-10-10T14:30:00Z",
            "cash": "1000000000",
            "rate_limit_per_min": ALPACA_LIMIT_PER_MIN,
            "latency": {"ack_s": 0.05, "fill_s": 0.05, "cancel_s": 0.1},
            "symbols": {f"S{i:03d}": {"price": str(PRICE)} for i in range(symbols)},
        }
    )


class _Run:
    def __init__(self, orders: int, tmp: Path, stream_mode: str = "down", poll_s: float = 2.0) -> None:
        self.sim = scenario(symbols=max(1, orders // 10))
        self.server = SimServer(self.sim, FlowingClock(self.sim.start), api_key=KEY, secret_key=SECRET)
        self.server.start()
        self.clock = DemoClock(self.server)
        self.db = tmp / f"budget-{stream_mode}.db"
        self.store = open_store(f"sqlite:///{self.db}")
        self.stream_mode = stream_mode
        # the setup is not measured: no rate limit while the 1,000 parents are sent (restored after)
        self.server.set_rate_limit(1_000_000)
        self.broker = AlpacaBroker(
            KEY, SECRET, clock=self.clock, base_url=self.server.base_url, requests_per_minute=1_000_000
        )
        url = closed_port_url() if stream_mode == "down" else self.server.stream_url
        stream = AlpacaStream(KEY, SECRET, clock=self.clock, url=url, seed=1)
        self.options = EngineOptions(poll_interval_s=poll_s)
        self.poll_s = poll_s
        self.engine = Engine(
            broker=self.broker, store=self.store, clock=self.clock, stream=stream, options=self.options
        )
        self.conductor = Conductor(self.server, self.clock, self.busy)
        self.seen: dict[str, datetime] = {}
        self.engine.subscribe(self._on_note)
        self.n = orders

    def busy(self) -> bool:
        if self.broker.inflight > 0 or self.engine.has_queued_work():
            return True
        return any(t not in self.clock.sleeping for t in self.engine.background_tasks())

    def _on_note(self, note: Notification) -> None:
        coid = note.client_order_id
        if note.kind is NotificationKind.FILL and coid and coid not in self.seen:
            self.seen[coid] = self.clock.now()

    async def setup(self) -> None:
        plan = ProtectionPlan(take_profit=PriceRule(price=TP), stop_loss=PriceRule(price=SL))
        symbols = list(self.sim.symbols)
        for i in range(self.n):
            order = new_order(
                client_order_id=f"b{i:05d}",
                symbol=symbols[i % len(symbols)],
                side="buy",
                type="limit",
                qty="10",
                limit_price=BUY_AT,
                time_in_force="gtc",
                created_at=self.clock.now(),
            )
            await self.engine.submit(order, plan)
        # the sends are paced by the broker budget (190/min): let virtual time run until all are acked
        while self._unacknowledged() > 0:
            await self.conductor.run_until(self.clock.now() + timedelta(seconds=30))
        self.server.set_rate_limit(ALPACA_LIMIT_PER_MIN)
        self.broker.budget = RequestBudget(self.clock, per_minute=190.0)
        await self.engine.start()
        await self.conductor.run_until(self.clock.now() + timedelta(seconds=10))

    def _unacknowledged(self) -> int:
        with self.store.transaction() as tx:
            local = (OrderStatus.INTENT, OrderStatus.SUBMITTING)
            return sum(1 for o in tx.open_orders() if o.status in local)

    def journal_rows(self) -> int:
        with sqlite3.connect(self.db) as conn:
            return int(conn.execute("SELECT count(*) FROM journal").fetchone()[0])

    async def window(self, minutes: float, seed: int = 7) -> Result:
        before = self.server.snapshot()["counters"]
        journal_before = self.journal_rows()
        start = self.clock.now()
        end = start + timedelta(minutes=minutes)
        rng = random.Random(seed)
        order_ids = [f"b{i:05d}" for i in range(self.n)]
        fills: list[tuple[str, datetime]] = []

        async def filler() -> None:
            candidates = rng.sample(order_ids, len(order_ids))
            while candidates:
                await self.clock.sleep(FILL_EVERY_S * rng.uniform(0.5, 1.5))
                if self.clock.now() >= end:
                    return
                coid = candidates.pop()
                self.server.fill(client_order_id=coid)  # all of it, at the venue, now
                fills.append((coid, self.clock.now()))
                self.clock.touch()

        if self.stream_mode == "silent":  # connected, and every event from now on is dropped
            self.server.set_faults({"seed": 1, "drop_event_p": 1.0})
        task = asyncio.create_task(filler())
        await self.conductor.run_until(end)
        task.cancel()
        journaled = self.journal_rows() - journal_before
        log(f"budget: the engine journaled {journaled / minutes:,.0f} rows per virtual minute in the window")
        after = self.server.snapshot()
        counters = after["counters"]
        requests = {
            k: v - before["requests"].get(k, 0)
            for k, v in counters["requests"].items()
            if v - before["requests"].get(k, 0)
        }
        protected = _protected(after["orders"], {c for c, _ in fills})
        return Result(
            orders=self.n,
            window_min=(self.clock.now() - start).total_seconds() / 60,
            requests=requests,
            rate_limited=counters["rate_limited"] - before["rate_limited"],
            fills=_venue_times(after["orders"], fills),
            seen=dict(self.seen),
            protected=protected,
            poll_interval_s=self.poll_s,
            stream=self.stream_mode,
            protect_s=_protect_waits(after["orders"], {c for c, _ in fills}),
        )

    async def close(self) -> None:
        await self.engine.stop()
        self.store.close()
        self.server.stop()


def _venue_times(
    orders: list[dict[str, Any]], fills: list[tuple[str, datetime]]
) -> list[tuple[str, datetime]]:
    # the venue's own execution time, from the simulator's books
    by_coid = {o["client_order_id"]: o for o in orders}
    out = []
    for coid, approx in fills:
        executions = by_coid.get(coid, {}).get("sim", {}).get("executions", [])
        at = datetime.fromisoformat(executions[0]["at"].replace("Z", "+00:00")) if executions else approx
        out.append((coid, at))
    return out


def _protect_waits(orders: list[dict[str, Any]], filled: set[str]) -> list[float]:
    # each filled parent (filled at once, one execution): its venue time -> its first child's submitted_at
    def ts(value: str) -> datetime:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))

    waits = []
    for parent in (o for o in orders if o["client_order_id"] in filled):
        executions = parent["sim"]["executions"]
        kids = [
            ts(o["submitted_at"])
            for o in orders
            if o["client_order_id"].startswith(parent["client_order_id"] + "~")
        ]
        if executions and kids:
            waits.append(max(0.0, (min(kids) - ts(executions[0]["at"])).total_seconds()))
    return waits


def _protected(orders: list[dict[str, Any]], filled: set[str]) -> int:
    # parents whose fill is covered by an accepted child at the venue
    covered = {o["client_order_id"].split("~", 1)[0] for o in orders if "~" in o["client_order_id"]}
    return len(filled & covered)


class _PollerRun(_Run):
    """The same account, orders and fills, protected by the competent list poller (demo/poller.py) instead:
    one ``GET /v2/orders?status=all&after=<oldest watched>`` listing (pages of 500) per poll, exits sent for
    each newly polled fill. It has no stream, so it is the peer of ordersync with the stream down."""

    def __init__(self, orders: int, tmp: Path, poll_s: float = 2.0) -> None:
        self.sim = scenario(symbols=max(1, orders // 10))
        self.server = SimServer(self.sim, FlowingClock(self.sim.start), api_key=KEY, secret_key=SECRET)
        self.server.start()
        self.clock = DemoClock(self.server)
        self.server.set_rate_limit(1_000_000)  # the setup is not measured (restored after)
        client = TradingClient(KEY, SECRET, url_override=self.server.base_url)
        client._retry = 0  # the poller handles weather itself
        self.poller = PollerPlatform(
            client, self.clock, PlatformLog(None), lambda _symbol: PRICE, poll_interval_s=poll_s
        )
        self.poll_s = poll_s
        self.stream_mode = "none (list poller)"
        self.seen: dict[str, datetime] = {}
        self.n = orders
        self._stop = asyncio.Event()
        self._polling: asyncio.Task[None] | None = None
        self.conductor = Conductor(self.server, self.clock, self.busy)

    def busy(self) -> bool:
        if self.poller.inflight > 0:
            return True
        task = self._polling
        return task is not None and not task.done() and task not in self.clock.sleeping

    async def setup(self) -> None:
        symbols = list(self.sim.symbols)
        for i in range(self.n):
            parent = ParentModel(
                id=f"b{i:05d}",
                symbol=symbols[i % len(symbols)],
                qty=Decimal(10),
                type="limit",
                limit_price=BUY_AT,
                take_profit=TakeProfitModel(limit_price=TP),
                stop_loss=StopLossModel(stop_price=SL),
            )
            await self.poller.submit_parent(parent)
        self.server.set_rate_limit(ALPACA_LIMIT_PER_MIN)
        self._polling = asyncio.create_task(self.poller.run_polling(self._stop))
        await self.conductor.run_until(self.clock.now() + timedelta(seconds=10))

    def journal_rows(self) -> int:
        return 0  # the poller keeps nothing durable

    async def close(self) -> None:
        self._stop.set()
        if self._polling is not None:
            self._polling.cancel()
        self.server.stop()


async def measure(
    orders: int, minutes: float, stream_mode: str = "down", poll_s: float = 2.0, poller: bool = False
) -> Result:
    with tempfile.TemporaryDirectory(prefix="ordersync-bench-") as tmp:
        folder = Path(tmp)
        run = _PollerRun(orders, folder, poll_s) if poller else _Run(orders, folder, stream_mode, poll_s)
        try:
            with timed() as t:
                await run.setup()
            log(f"budget: {orders} orders open and acknowledged ({t[0]:.0f} s real)")
            with timed() as t:
                result = await run.window(minutes)
            log(f"budget: {minutes} virtual minutes measured in {t[0]:.0f} s real")
            return result
        finally:
            await run.close()


def rows_of(r: Result) -> list[Row]:
    per_min = r.total / r.window_min
    per_order = per_min / r.orders
    stale = r.staleness_s()
    p50, p99 = percentile(stale, 0.5), percentile(stale, 0.99)
    top = ", ".join(
        f"{k} {v / r.window_min:,.0f}/min" for k, v in sorted(r.requests.items(), key=lambda kv: -kv[1])
    )
    log(f"budget: requests by endpoint: {top}; 429s: {r.rate_limited}")
    where = f"{r.orders:,} open, stream {r.stream}, {r.window_min:.0f} virtual min"
    waits = r.protect_s
    w50, w99 = percentile(waits, 0.5), percentile(waits, 0.99)
    bound = 2 * r.poll_interval_s
    worst = max(waits, default=None)
    return [
        Row(
            "3 budget",
            f"broker requests/min, {where}",
            num(per_min, "/min"),
            f"Alpaca limit {ALPACA_LIMIT_PER_MIN}/min",
            ratio(per_min, ALPACA_LIMIT_PER_MIN),
            f"<= {TARGET_PER_MIN}/min: {_met(per_min <= TARGET_PER_MIN)}; "
            f"<= 200/min: {_met(per_min <= ALPACA_LIMIT_PER_MIN and not r.rate_limited)}"
            f" ({r.rate_limited} x 429)",
        ),
        Row(
            "3 budget",
            "requests per protected order (open, with a TP+SL plan) per minute",
            num(per_order, digits=3),
            f"naive: 1 GET/order/30 s = {NAIVE_PER_ORDER_PER_MIN:.3f} (by construction)",
            ratio(per_order, NAIVE_PER_ORDER_PER_MIN),
        ),
        Row(
            "3 budget",
            f"fill staleness p50 / p99 (venue fill -> applied), stream {r.stream}, {len(stale)} fills",
            f"{num(p50, digits=2)} / {num(p99, digits=2)} s",
            f"poll interval {r.poll_interval_s:g} s",
            f"{ratio(p50, r.poll_interval_s)} / {ratio(p99, r.poll_interval_s)}",
            f"p99 <= {STALENESS_TARGET_S:g} s: {_met(p99 is not None and p99 <= STALENESS_TARGET_S)}",
        ),
        Row(
            "3 budget",
            f"fill->protect p50 / p99 / max (books), stream {r.stream}, {len(waits)} fills, "
            f"{r.protected} protected",
            f"{num(w50, digits=2)} / {num(w99, digits=2)} / {num(worst, digits=2)} s",
            f"poll interval {r.poll_interval_s:g} s",
            f"{ratio(w99, r.poll_interval_s)} (p99)",
            f"max <= 2x poll ({bound:g} s): {_met(worst is not None and worst <= bound)}",
        ),
    ]


def peer_rows(ours: Result, peer: Result) -> list[Row]:
    """ordersync with the stream down beside the competent list poller polling at the same interval."""
    per_min, peer_min = ours.total / ours.window_min, peer.total / peer.window_min
    w99, p99 = percentile(ours.protect_s, 0.99), percentile(peer.protect_s, 0.99)
    w50, p50 = percentile(ours.protect_s, 0.5), percentile(peer.protect_s, 0.5)
    where = f"{ours.orders:,} open, poll every {ours.poll_interval_s:g} s"
    log(f"budget: list poller requests/min {peer_min:,.0f}, protected {peer.protected} of {len(peer.fills)}")
    return [
        Row(
            "3 budget",
            f"broker requests/min, {where}, ordersync stream down",
            num(per_min, "/min"),
            f"competent list poller (demo/poller.py) {num(peer_min, '/min')}",
            ratio(per_min, peer_min),
        ),
        Row(
            "3 budget",
            f"fill->protect p50 / p99 (books), {where}, ordersync stream down",
            f"{num(w50, digits=2)} / {num(w99, digits=2)} s",
            f"competent list poller {num(p50, digits=2)} / {num(p99, digits=2)} s "
            f"({peer.protected} of {len(peer.fills)} protected)",
            f"{ratio(w50, p50)} / {ratio(w99, p99)}",
        ),
    ]


def _met(ok: bool) -> str:
    return "met" if ok else "MISSED"


def collect(
    quick: bool = False,
    orders: int | None = None,
    minutes: float | None = None,
    poll_s: float = 2.0,
    streams: tuple[str, ...] = ("down", "silent"),
) -> list[Row]:
    n = orders or (200 if quick else 1_000)
    m = minutes or (2.0 if quick else 3.0)
    rows: list[Row] = []
    results: dict[str, Result] = {}
    for mode in streams:
        log(f"budget: {n} orders, stream {mode}, poll every {poll_s:g} s, {m} virtual minutes")
        results[mode] = asyncio.run(measure(n, m, mode, poll_s))
        rows += rows_of(results[mode])
    if "down" in results:
        log(f"budget: the same {n} orders and fills under the competent list poller, every {poll_s:g} s")
        rows += peer_rows(results["down"], asyncio.run(measure(n, m, poll_s=poll_s, poller=True)))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 orders, 2 virtual minutes")
    parser.add_argument("--orders", type=int)
    parser.add_argument("--minutes", type=float)
    parser.add_argument("--poll", type=float, default=2.0, help="the engine's poll interval (s)")
    parser.add_argument("--stream", choices=["down", "silent", "both"], default="both")
    args = parser.parse_args()
    quiet_logs()
    streams = ("down", "silent") if args.stream == "both" else (args.stream,)
    print_rows("3. API budget", collect(args.quick, args.orders, args.minutes, args.poll, streams))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
