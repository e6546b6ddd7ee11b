"""Costs that follow change, not size: the engine's tick, one release pass, and the engine's memory, at
1,000 and at 10,000 open parents (issue 17 item 3).

* **tick**: every ``tick_s`` (1 s by default) the engine sends intents another process wrote,
  re-examines every active plan (release retries, unprotected-fill alerts, exit sequencing) and every
  unknown submit, and tells the poller whether anything is open. Target: <= 20 ms at 10,000 open
  parents. Beside it, its floor: one ``Transaction.open_orders()`` of the same store.
* **release pass**: ``release.release(ctx, [parent])`` for one parent of a symbol that has the same 10
  parents at both sizes (the other parents are spread over 50 other symbols). A pass that touches one
  symbol costs the same at 10,000 open parents as at 1,000: the ratio of the two is the figure.
* **RSS**: the process's resident memory with the engine and its store open, after the ticks, against
  the same process before the store was opened.

CPU time (``time.process_time``), median of repeated runs, on a SQLite store in a temporary directory
opened as ``bootstrap`` opens the engine's store (``keep_orders=True``); the engine has no broker (a
tick or this release pass makes no request when nothing is due: the parents are acknowledged, unfilled).

    python bench/bench_tick.py [--quick] [--parents N]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from common import Row, log, median, num, print_rows, quiet_logs, ratio
from ordersync.clocks import SystemClock
from ordersync.domain.ids import BrokerOrderId, ClientOrderId
from ordersync.domain.order import OrderStatus, new_order
from ordersync.domain.protection import PriceRule, ProtectionPlan
from ordersync.engine import Engine
from ordersync.engine.release import release
from ordersync.ports import JournalEntry, PlanState
from ordersync.store import SqlAlchemyStore, open_store

PLAN = ProtectionPlan(take_profit=PriceRule(price=Decimal("110")), stop_loss=PriceRule(price=Decimal("80")))
TICK_TARGET_MS = 20.0  # at 10,000 open parents (issue 17 item 3)
ONE_SYMBOL = "ONE"  # the release pass's symbol: 10 parents at every size
ON_ONE = 10


def seed(store: SqlAlchemyStore, parents: int) -> None:
    """``parents`` acknowledged limit buys, each with an active take-profit/stop plan: ``ON_ONE`` of
    them on ``ONE_SYMBOL``, the others over 50 symbols."""
    created = datetime.now(UTC) - timedelta(hours=1)
    with store.transaction() as tx:
        for i in range(parents):
            symbol = ONE_SYMBOL if i < ON_ONE else f"S{i % 50}"
            order = new_order(
                client_order_id=f"p{i}",
                symbol=symbol,
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


def cpu_ms(step: Callable[[], object], repeat: int, before: Callable[[], object] = lambda: None) -> float:
    """Median CPU milliseconds of ``step()`` over ``repeat`` runs (each after ``before()``, not timed),
    after one warm-up run."""
    before()
    step()
    samples = []
    for _ in range(repeat):
        before()
        start = time.process_time()
        step()
        samples.append((time.process_time() - start) * 1000)
    found = median(samples)
    assert found is not None
    return found


def rss_mb() -> float:
    """This process's resident set size now (Linux /proc), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Measured:
    parents: int
    tick_ms: float
    changed_tick_ms: float
    release_ms: float


def measure(parents: int, repeat: int) -> Measured:
    with tempfile.TemporaryDirectory(prefix="ordersync-bench-") as tmp:
        store = open_store(f"sqlite:///{Path(tmp) / 'tick.db'}", keep_orders=True)  # as bootstrap opens it
        try:
            seed(store, parents)
            engine = Engine(broker=None, store=store, clock=SystemClock(), stream=None)  # type: ignore[arg-type]
            engine.stream_connected = True  # no stream_down alert to write: the steady state
            loop = asyncio.new_event_loop()
            try:
                tick = cpu_ms(lambda: loop.run_until_complete(engine._tick()), repeat)
                changed = cpu_ms(
                    lambda: loop.run_until_complete(engine._tick()), repeat, lambda: change_one(store)
                )
                one = [ClientOrderId("p0")]
                pass_ms = cpu_ms(lambda: loop.run_until_complete(release(engine._ctx, one)), repeat)
            finally:
                loop.close()

        finally:
            store.close()
    log(
        f"tick: {parents:,} parents: tick {tick:.1f} ms CPU, after one change {changed:.1f} ms, "
        f"release pass (one symbol) {pass_ms:.2f} ms"
    )
    return Measured(parents, tick, changed, pass_ms)


def change_one(store: SqlAlchemyStore) -> None:
    """One order changes between two ticks, as when an event arrives: a new broker time, journaled."""
    with store.transaction() as tx:
        order = tx.get_order(ClientOrderId(f"p{ON_ONE}"))
        assert order is not None
        assert order.broker_updated_at is not None
        tx.save_order(replace(order, broker_updated_at=order.broker_updated_at + timedelta(seconds=1)))
        tx.journal(JournalEntry(order.broker_updated_at, "bench", order.client_order_id, {}))


def collect(quick: bool = False, parents: int | None = None) -> list[Row]:
    large = parents or (2_000 if quick else 10_000)
    small = max(ON_ONE, large // 10)
    repeat = 5 if quick else 15
    before = rss_in_fresh_process(0, repeat)
    rss = {n: rss_in_fresh_process(n, repeat) for n in (small, large)}
    low, high = measure(small, repeat), measure(large, repeat)
    rows: list[Row] = []
    for m in (low, high):
        n = f"{m.parents:,} open parents with plans (SQLite)"
        met = "met" if m.tick_ms <= TICK_TARGET_MS else "MISSED"
        target = f"<= {TICK_TARGET_MS:.0f} ms at 10,000: {met}" if m.parents >= 10_000 else ""
        met = "met" if m.changed_tick_ms <= TICK_TARGET_MS else "MISSED"
        changed_target = f"<= {TICK_TARGET_MS:.0f} ms at 10,000: {met}" if m.parents >= 10_000 else ""
        rows += [
            Row(
                "6 tick",
                f"engine tick CPU, quiet (nothing written since the last), {n}",
                num(m.tick_ms, "ms", 1),
                "target 20 ms",
                ratio(m.tick_ms, TICK_TARGET_MS),
                target,
            ),
            Row(
                "6 tick",
                f"engine tick CPU, one order changed since the last, {n}",
                num(m.changed_tick_ms, "ms", 1),
                "target 20 ms",
                ratio(m.changed_tick_ms, TICK_TARGET_MS),
                changed_target,
            ),
        ]
    rows.append(
        Row(
            "6 tick",
            f"release pass of one parent, its symbol {ON_ONE} parents, at {high.parents:,} open parents",
            num(high.release_ms, "ms", 2),
            f"same at {low.parents:,} open parents {num(low.release_ms, 'ms', 2)}",
            ratio(high.release_ms, low.release_ms),
            "follows change: ~1x",
        )
    )
    rows.append(
        Row(
            "6 tick",
            f"process RSS, engine open and ticked, {large:,} open parents (a fresh process each)",
            num(rss[large], "MiB"),
            f"with {small:,}: {num(rss[small], 'MiB')}; no store {num(before, 'MiB')}",
            ratio(rss[large], rss[small]),
            "reported",
        )
    )
    return rows


def rss_in_fresh_process(parents: int, repeat: int) -> float:
    """The RSS (MiB) of a new Python process that opened the engine on ``parents`` open parents and ran
    ``repeat`` ticks (0: imports only): in this process, what other benchmarks allocated would count."""
    out = subprocess.run(
        [sys.executable, __file__, "--rss-of", str(parents), "--repeat", str(repeat)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return float(out.split()[-1])


def _rss_of(parents: int, repeat: int) -> float:
    if parents == 0:
        return rss_mb()
    with tempfile.TemporaryDirectory(prefix="ordersync-bench-") as tmp:
        store = open_store(f"sqlite:///{Path(tmp) / 'tick.db'}", keep_orders=True)
        try:
            seed(store, parents)
            engine = Engine(broker=None, store=store, clock=SystemClock(), stream=None)  # type: ignore[arg-type]
            engine.stream_connected = True
            loop = asyncio.new_event_loop()
            try:
                for _ in range(repeat):
                    loop.run_until_complete(engine._tick())
            finally:
                loop.close()
            return rss_mb()
        finally:
            store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 and 2,000 parents")
    parser.add_argument(
        "--parents", type=int, help="the larger size (default 10,000); the smaller is a tenth"
    )
    parser.add_argument("--rss-of", type=int, help=argparse.SUPPRESS)  # rss_in_fresh_process
    parser.add_argument("--repeat", type=int, default=15, help=argparse.SUPPRESS)
    args = parser.parse_args()
    quiet_logs()
    if args.rss_of is not None:
        print(f"{_rss_of(args.rss_of, args.repeat):.1f}")
        return
    print_rows("6 tick", collect(args.quick, args.parents))


if __name__ == "__main__":
    main()
