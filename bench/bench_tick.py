"""The engine's periodic tick with 1,000 open parents, against one read of the open orders (its floor).

Every ``tick_s`` (1 s by default) the engine sends intents another process wrote, re-examines every
active plan (release retries, unprotected-fill alerts, exit sequencing) and every unknown submit, and
tells the poller whether anything is open. All of that needs the open orders once: one
``Transaction.open_orders()`` of the same store is the floor. The tick used to read them four times and the
plans three times (215 ms of CPU per tick at 1,000 parents, 6.06x the floor, measured at e8bc393 with the
same script); the chaos worker spent half its CPU there.

CPU time (``time.process_time``), median of repeated ticks on a SQLite store in a temporary directory;
the engine has no broker (a tick makes no request when nothing is due).

    python bench/bench_tick.py [--quick] [--parents N]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from common import Row, log, median, num, print_rows, quiet_logs, ratio
from ordersync.clocks import SystemClock
from ordersync.domain.ids import BrokerOrderId, ClientOrderId
from ordersync.domain.order import OrderStatus, new_order
from ordersync.domain.protection import PriceRule, ProtectionPlan
from ordersync.engine import Engine
from ordersync.ports import PlanState
from ordersync.store import SqlAlchemyStore, open_store

PLAN = ProtectionPlan(take_profit=PriceRule(price=Decimal("110")), stop_loss=PriceRule(price=Decimal("80")))


def seed(store: SqlAlchemyStore, parents: int) -> None:
    """``parents`` acknowledged limit buys over 50 symbols, each with an active take-profit/stop plan."""
    created = datetime.now(UTC) - timedelta(hours=1)
    with store.transaction() as tx:
        for i in range(parents):
            order = new_order(
                client_order_id=f"p{i}",
                symbol=f"S{i % 50}",
                side="buy",
                type="limit",
                qty=10,
                limit_price="90",
                time_in_force="gtc",
                created_at=created,
            )
            tx.add_order(
                replace(
                    order,
                    status=OrderStatus.NEW,
                    broker_order_id=BrokerOrderId(f"b{i}"),
                    broker_updated_at=created,
                )
            )
            tx.add_plan(PlanState(parent_id=ClientOrderId(f"p{i}"), plan=PLAN))


def cpu_ms(step: Any, repeat: int) -> float | None:
    """Median CPU milliseconds of ``step()`` over ``repeat`` runs, after one warm-up run."""
    step()
    samples = []
    for _ in range(repeat):
        start = time.process_time()
        step()
        samples.append((time.process_time() - start) * 1000)
    return median(samples)


def collect(quick: bool = False, parents: int | None = None) -> list[Row]:
    n = parents or (200 if quick else 1000)
    repeat = 5 if quick else 15
    with tempfile.TemporaryDirectory(prefix="ordersync-bench-") as tmp:
        store = open_store(f"sqlite:///{Path(tmp) / 'tick.db'}")
        try:
            seed(store, n)
            engine = Engine(broker=None, store=store, clock=SystemClock(), stream=None)  # type: ignore[arg-type]
            engine.stream_connected = True  # no stream_down alert to write: the steady state
            loop = asyncio.new_event_loop()
            try:
                tick = cpu_ms(lambda: loop.run_until_complete(engine._tick()), repeat)
            finally:
                loop.close()

            def read_open() -> None:
                with store.transaction() as tx:
                    tx.open_orders()

            floor = cpu_ms(read_open, repeat)
        finally:
            store.close()
    log(f"tick: {n:,} parents, tick {tick:.1f} ms CPU, one open-orders read {floor:.1f} ms CPU")
    return [
        Row(
            "6 tick",
            f"engine tick CPU, {n:,} open parents with plans (SQLite)",
            num(tick, "ms", 1),
            f"one open-orders read {num(floor, 'ms', 1)}",
            ratio(tick, floor),
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--parents", type=int)
    args = parser.parse_args()
    quiet_logs()
    print_rows("6 tick", collect(args.quick, args.parents))


if __name__ == "__main__":
    main()
