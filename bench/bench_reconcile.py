"""Start-up reconciliation of 10,000 orders, against merely listing them (the paged list calls alone).

The simulator holds 10,000 orders (submitted in-process, a millisecond apart so pages by submission time
are exact): 80% open, 10% filled and 10% partially filled at the venue while the engine was down; the
store holds all of them as the engine last saw them (acknowledged, ``new``, nothing filled). So the
reconciliation has real work: 2,000 corrections, 8,000 orders to confirm unchanged.

* floor: ``catchup.read_changed`` through the same ``AlpacaBroker``: every open order plus every order
  closed since the oldest open one, in pages of 500 (alpaca-py parses each page into its models, the
  adapter maps them to domain views) - exactly the list calls a reconciliation makes, nothing else;
* ordersync: ``engine.watch.reconcile(dry_run=False)`` on a freshly built engine (cold: nothing in
  memory), which lists the same orders, reads positions, loads every local order, decides and applies
  the corrections in one transaction and journals them;
* also ``Engine.start()`` on a copy of the same store: catch-up (list + apply every order as an
  observation), resume, then the reconciliation above: what a restart really costs.

The broker's request budget (190/min by default) is lifted for the timing: the number of requests is
reported instead (at Alpaca's 200/min, N requests are N x 0.3 s of budget).

    python bench/bench_reconcile.py
    python bench/bench_reconcile.py --orders 2000
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from common import Row, log, median, num, print_rows, quiet_logs, ratio, seed_store, timed
from ordersync.brokers.alpaca import AlpacaBroker
from ordersync.clocks import SystemClock
from ordersync.domain.order import OrderStatus
from ordersync.engine import Engine
from ordersync.engine.catchup import read_changed
from ordersync.sim.clock import SteppedClock
from ordersync.sim.order_request import parse_order_request
from ordersync.sim.scenarios import parse_scenario
from ordersync.sim.server import SimServer
from ordersync.store import open_store

KEY, SECRET = "bench-key", "bench-secret"
UNLIMITED = 1_000_000.0


def build_sim(n: int) -> tuple[SimServer, list[dict[str, Any]]]:
    """Start a simulator holding ``n`` orders; return it and the orders as their POST answered them."""
    start = datetime.now(tz=UTC).replace(microsecond=0) - timedelta(hours=1)
    scenario = parse_scenario(
        {
            "name": "bench-reconcile",
            "start": start.isoformat(),
            "cash": "1000000000000",
            "rate_limit_per_min": int(UNLIMITED),
            "symbols": {f"S{i:02d}": {"price": "100"} for i in range(50)},
        }
    )
    server = SimServer(scenario, SteppedClock(start), api_key=KEY, secret_key=SECRET)
    exchange = server.simulator.exchange
    answered = []
    for i in range(n):
        body = {
            "symbol": f"S{i % 50:02d}",
            "qty": "10",
            "side": "buy",
            "type": "limit",
            "limit_price": "50",
            "time_in_force": "gtc",
            "client_order_id": f"r{i:06d}",
        }
        answered.append(exchange.submit(parse_order_request(body)))
        server.advance(0.001)  # distinct submission times; acknowledges the order (`new`)
    for i, order in enumerate(answered):
        if i % 10 == 3:
            server.fill(order_id=order["id"])  # filled while the engine was away
        elif i % 10 == 7:
            server.fill(order_id=order["id"], qty="4")  # partially filled
    server.advance(1)
    server.start()
    return server, answered


def broker(server: SimServer) -> AlpacaBroker:
    return AlpacaBroker(
        KEY, SECRET, clock=SystemClock(), base_url=server.base_url, requests_per_minute=UNLIMITED
    )


async def list_floor(server: SimServer, oldest: datetime) -> tuple[float, int]:
    b = broker(server)
    with timed() as t:
        views = await read_changed(b, oldest)
    return t[0], len(views)


async def raw_http_floor(server: SimServer, oldest: datetime) -> float:
    """The same pages as plain HTTP + json (no SDK models): what listing costs below alpaca-py."""
    headers = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}
    async with httpx.AsyncClient(base_url=server.base_url, headers=headers) as client:
        with timed() as t:
            for status, after in (("open", None), ("closed", oldest - timedelta(minutes=5))):
                cursor = after
                while True:
                    params = {"status": status, "limit": 500, "direction": "asc", "nested": "true"}
                    if cursor is not None:
                        params["after"] = cursor.isoformat().replace("+00:00", "Z")
                    page = (await client.get("/v2/orders", params=params)).json()
                    if len(page) < 500:
                        break
                    cursor = datetime.fromisoformat(page[-1]["submitted_at"].replace("Z", "+00:00"))
    return t[0]


async def reconcile_cold(server: SimServer, url: str) -> tuple[float, int, Any]:
    store = open_store(url)
    b = broker(server)
    engine = Engine(broker=b, store=store, clock=SystemClock())
    before = sum(server.snapshot()["counters"]["requests"].values())
    with timed() as t:
        report = await engine.watch.reconcile(dry_run=False)
    requests = sum(server.snapshot()["counters"]["requests"].values()) - before
    await asyncio.sleep(0)
    await engine.stop()
    store.close()
    return t[0], requests, report


async def start_cold(server: SimServer, url: str) -> tuple[float, int]:
    store = open_store(url)
    engine = Engine(broker=broker(server), store=store, clock=SystemClock())
    before = sum(server.snapshot()["counters"]["requests"].values())
    with timed() as t:
        await engine.start()
    requests = sum(server.snapshot()["counters"]["requests"].values()) - before
    await engine.stop()
    store.close()
    return t[0], requests


def collect(quick: bool = False, orders: int | None = None) -> list[Row]:
    n = orders or (2_000 if quick else 10_000)
    log(f"reconcile: building {n:,} orders at the simulator and in the store")
    server, answered = build_sim(n)
    oldest = min(datetime.fromisoformat(o["created_at"].replace("Z", "+00:00")) for o in answered)
    try:
        with tempfile.TemporaryDirectory(prefix="ordersync-bench-") as tmp:
            first, second = Path(tmp) / "a.db", Path(tmp) / "b.db"
            seed_store(f"sqlite:///{first}", answered, OrderStatus.NEW, time_in_force="gtc")
            shutil.copy(first, second)
            floors = []
            floor_s, listed = asyncio.run(list_floor(server, oldest))
            floors.append(floor_s)
            raw_s = asyncio.run(raw_http_floor(server, oldest))
            rec_s, requests, report = asyncio.run(reconcile_cold(server, f"sqlite:///{first}"))
            floors.append(asyncio.run(list_floor(server, oldest))[0])
            start_s, start_requests = asyncio.run(start_cold(server, f"sqlite:///{second}"))
            floors.append(asyncio.run(list_floor(server, oldest))[0])
    finally:
        server.stop()
    floor = median(floors) or 0.0
    log(
        f"reconcile: listed {listed:,} views; floor runs {', '.join(f'{f:.2f}' for f in floors)} s; "
        f"raw HTTP {raw_s:.2f} s; reconcile {rec_s:.2f} s ({requests} requests, "
        f"{report.corrections:,} corrections, {len(report.discrepancies)} discrepancies); "
        f"Engine.start {start_s:.2f} s ({start_requests} requests)"
    )
    return [
        Row(
            "4 reconcile",
            f"reconcile(dry_run=False), cold, {n:,} orders "
            f"({report.corrections:,} corrected, {requests} req)",
            num(rec_s, "s", 2),
            f"list calls alone (read_changed) {num(floor, 's', 2)}",
            ratio(rec_s, floor),
        ),
        Row(
            "4 reconcile",
            f"Engine.start() (catch-up + apply + reconcile), {start_requests} req",
            num(start_s, "s", 2),
            f"list calls alone {num(floor, 's', 2)}",
            ratio(start_s, floor),
        ),
        Row(
            "4 reconcile",
            "list calls through alpaca-py + mapping (the floor above)",
            num(floor, "s", 2),
            f"same pages, raw HTTP + json {num(raw_s, 's', 2)}",
            ratio(floor, raw_s),
        ),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 orders")
    parser.add_argument("--orders", type=int, help="orders at the simulator and in the store (10,000)")
    args = parser.parse_args()
    quiet_logs()
    print_rows("4. Start-up reconciliation", collect(args.quick, args.orders))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
