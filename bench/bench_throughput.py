"""Throughput: trade_updates events applied and durably journaled per second, against merely parsing them.

The frames are the simulator's own: an in-process ``Exchange`` (the simulator's broker model) acknowledges
and fills orders in parts, and every trade_updates message it publishes is serialized exactly as the
simulator's stream hub does (``new``, several ``partial_fill``, ``fill``; a tenth of them duplicated, as
Alpaca does, some after the terminal event). The same orders are in the store beforehand, as the engine
holds them after their POST was answered (``accepted``, broker id known).

* floor: parse only, through the stream client's own path (``AlpacaStream._parse``: orjson or
  ``json``, then the fast direct mapping ``parse.fast_observation``);
* ordersync: the same parse, then the writer's batch apply (``Engine._apply_batch``: batches of
  ``EngineOptions.batch_max`` observations, each batch one transaction that reads the batch's orders in
  one query, applies every observation through ``context.apply_observation`` and journals it, fills and
  journal rows written at commit, open orders kept in memory by the store between batches as
  ``bootstrap`` opens it for the engine, from the first batch on: the run starts where ``Engine.start``
  leaves the store, whose ``startup.resume`` has read the open orders), on SQLite (a file, WAL,
  synchronous=FULL as the store configures it)
  and on PostgreSQL. The release gate is not part of this figure (benchmark 1 covers it): the engine's
  ``on_dirty`` hook is a no-op here;
* previous path, side by side on the same store: the parse through alpaca-py's ``TradeUpdate`` model and
  ``mapping.observation`` (what the stream client did before the fast parse) and a batch apply that reads
  each order when its first event comes, from the database (what the writer did before it read a batch's
  orders at once and kept them). The store's own commit path is today's in both (COPY on PostgreSQL).

    python bench/bench_throughput.py                 # 20,000 events on SQLite and PostgreSQL
    python bench/bench_throughput.py --events 5000 --profile /tmp/apply.html   # pyinstrument of the apply
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from alpaca.trading.models import TradeUpdate

from common import (
    Row,
    log,
    median,
    num,
    postgres_url,
    print_rows,
    quiet_logs,
    ratio,
    seed_store,
    sqlite_url,
    timed,
)
from ordersync.brokers.alpaca import AlpacaStream
from ordersync.brokers.alpaca.mapping import observation
from ordersync.clocks import SystemClock
from ordersync.domain.events import OrderObserved
from ordersync.domain.order import OrderStatus
from ordersync.engine import Engine
from ordersync.engine.context import apply_observation
from ordersync.engine.startup import resume
from ordersync.sim.clock import SteppedClock
from ordersync.sim.exchange import Exchange
from ordersync.sim.order_request import parse_order_request
from ordersync.sim.scenarios import parse_scenario
from ordersync.store import open_store

TARGETS = {"sqlite": 20_000, "pg": 10_000}  # events/s (issue 17's targets on this machine)
SYMBOLS = ("OKE", "KMI", "ET", "VZ", "EPD", "WMB", "MPLX", "PAA", "T", "PFE", "F", "O")
FILLS_PER_ORDER = 5  # 4 partial fills and the final fill, after the `new`
DUPLICATE_P = 0.1
START = datetime(2025, 10, 10, 14, 30, tzinfo=UTC)


@dataclass
class Workload:
    frames: list[bytes]
    orders: list[dict[str, Any]]  # the simulator's order JSON at submission (the POST answer)
    executions: int


class _Capture:
    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def publish(self, message: dict[str, Any]) -> None:
        # byte for byte what StreamHub.publish puts on the wire
        self.frames.append(json.dumps(message, separators=(",", ":")).encode())


def generate(events: int, seed: int = 1) -> Workload:
    """Return about ``events`` trade_updates frames from the simulator's broker model, with duplicates."""
    per_order = 1 + FILLS_PER_ORDER
    n_orders = max(1, round(events / (1 + DUPLICATE_P) / per_order))
    rng = random.Random(seed)
    scenario = parse_scenario(
        {
            "symbols": {s: {"price": "50"} for s in SYMBOLS},
            "start": START.isoformat(),
            "seed": seed,
            "cash": "1000000000000",
        }
    )
    clock = SteppedClock(START)
    sink = _Capture()
    exchange = Exchange(scenario.exchange_config(), clock, sink)
    orders: list[dict[str, Any]] = []
    wave = 250  # orders in flight together, so events of different orders interleave as on a busy stream
    for first in range(0, n_orders, wave):
        batch = []
        for i in range(first, min(n_orders, first + wave)):
            body = {
                "symbol": SYMBOLS[i % len(SYMBOLS)],
                "qty": "100",
                "side": "buy",
                "type": "limit",
                "limit_price": "40",
                "time_in_force": "day",
                "client_order_id": f"bench-{i:06d}",
            }
            batch.append(exchange.submit(parse_order_request(body)))
        orders += batch
        clock.advance(0.001)  # the acks (`new`)
        for _ in range(FILLS_PER_ORDER):
            for order in rng.sample(batch, len(batch)):
                clock.advance(0.0005)
                exchange.manual_fill(order["id"], None, Decimal(20), Decimal("39.99"))
    frames = _with_duplicates(sink.frames, rng)
    return Workload(frames, orders, n_orders * FILLS_PER_ORDER)


def _with_duplicates(frames: list[bytes], rng: random.Random) -> list[bytes]:
    out: list[bytes] = []
    pending: list[tuple[int, bytes]] = []
    for i, frame in enumerate(frames):
        out.append(frame)
        if rng.random() < DUPLICATE_P:
            pending.append((i + rng.randint(0, 20), frame))  # redelivered a little later
        out += [f for due, f in pending if due <= i]
        pending = [(due, f) for due, f in pending if due > i]
    return out + [f for _, f in pending]


def parse_all(stream: AlpacaStream, frames: Sequence[bytes]) -> list[OrderObserved]:
    parsed = [stream._parse(f) for f in frames]
    return [p for p in parsed if isinstance(p, OrderObserved)]


def parse_all_previous(stream: AlpacaStream, frames: Sequence[bytes]) -> list[OrderObserved]:
    """The stream client's parse before the fast path: json, alpaca-py's TradeUpdate, the mapping."""
    clock = SystemClock()
    return [observation(TradeUpdate(**json.loads(f)["data"]), clock.now()) for f in frames]


async def _apply_batch_previous(engine: Engine, observations: list[OrderObserved]) -> None:
    """The writer's batch apply before it read a batch's orders at once: one read per order, on demand."""
    with engine._ctx.store.transaction() as tx:
        for obs in observations:
            apply_observation(engine._ctx, tx, obs)


class _NoBroker:
    """The apply path never calls the broker (the release gate is switched off for this figure)."""


async def apply_all(
    url: str, frames: Sequence[bytes], batch: int | None = None, previous: bool = False
) -> tuple[float, int]:
    """Parse and apply ``frames`` through the engine's writer path; return (seconds, journal rows).

    ``previous``: through the previous parse and per-order reads instead (see the module docstring)."""
    clock = SystemClock()
    store = open_store(url, keep_orders=not previous)  # as bootstrap opens the engine's store
    engine = Engine(broker=_NoBroker(), store=store, clock=clock)  # type: ignore[arg-type]
    engine._ctx.on_dirty = lambda: None  # no release tasks: this measures apply + journal only
    stream = AlpacaStream("k", "s", clock=clock)
    size = batch or engine._ctx.options.batch_max
    if not previous:
        resume(engine._ctx)  # what Engine.start reads first: the open orders, which the store then keeps
    with timed() as t:
        for start in range(0, len(frames), size):
            if previous:
                await _apply_batch_previous(engine, parse_all_previous(stream, frames[start : start + size]))
            else:
                await engine._apply_batch(list(parse_all(stream, frames[start : start + size])))
    journaled = len(store.read_journal(limit=10**9))
    _check(store)
    store.close()
    return t[0], journaled


def _check(store: Any) -> None:
    with store.transaction() as tx:
        orders = tx.all_orders()
    wrong = [o for o in orders if o.status is not OrderStatus.FILLED or o.filled_qty != Decimal(100)]
    if wrong:
        sys.exit(f"apply went wrong: {len(wrong)} orders not filled 100, e.g. {wrong[0]}")


def floor_rate(frames: Sequence[bytes], repeats: int = 3) -> list[float]:
    """Return parse-only rates (events/s) of ``repeats`` runs, after one warm-up run."""
    stream = AlpacaStream("k", "s", clock=SystemClock())
    parse_all(stream, frames[:1000])
    rates = []
    for _ in range(repeats):
        with timed() as t:
            parse_all(stream, frames)
        rates.append(len(frames) / t[0])
    return rates


def backend_rates(
    backend: str, work: Workload, repeats: int, tmp: Path
) -> tuple[list[float], list[float]] | None:
    """Return the apply rates (events/s) of ``repeats`` runs of the current and of the previous path,
    alternately, each on a fresh store; None if the database is unreachable."""
    rates: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(repeats):
        for previous in (False, True):
            with sqlite_url(tmp) if backend == "sqlite" else postgres_url() as url:
                if url is None:
                    return None
                seed_store(url, work.orders, OrderStatus.ACCEPTED, created_at=START)
                seconds, journaled = asyncio.run(apply_all(url, work.frames, previous=previous))
            rates[previous].append(len(work.frames) / seconds)
            if journaled != len(work.frames):
                sys.exit(f"{backend}: {journaled} journal rows for {len(work.frames)} events")
    for previous, runs in rates.items():
        name = "previous path" if previous else "ordersync"
        log(f"throughput: {backend}: {name} {', '.join(f'{r:,.0f}' for r in runs)} events/s")
    return rates[False], rates[True]


def collect(
    quick: bool = False, events: int | None = None, backends: Sequence[str] = ("sqlite", "pg")
) -> list[Row]:
    n = events or (5_000 if quick else 20_000)
    repeats = 1 if quick else 3
    log(f"throughput: generating ~{n:,} trade_updates frames from the simulator model")
    work = generate(n)
    log(f"throughput: {len(work.frames):,} frames for {len(work.orders):,} orders, {repeats} runs each")
    floors = floor_rate(work.frames)
    measured: dict[str, tuple[list[float], list[float]] | None] = {}
    with tempfile.TemporaryDirectory(prefix="ordersync-bench-") as tmp:
        for backend in backends:
            measured[backend] = backend_rates(backend, work, repeats, Path(tmp))
    floors += floor_rate(work.frames)  # before and after: the floor brackets the measured runs
    floor = median(floors)
    log(f"throughput: parse-only floor runs {', '.join(f'{r:,.0f}' for r in floors)} /s")
    rows: list[Row] = []
    for backend, both in measured.items():
        name = "SQLite (WAL, synchronous=FULL)" if backend == "sqlite" else "PostgreSQL"
        if both is None:
            rows.append(Row("2 throughput", name, "unreachable", "-", "n/a"))
            continue
        rates, previous_rates = both
        rate, previous = median(rates), median(previous_rates)
        target = f">= {TARGETS[backend]:,}/s: {'met' if (rate or 0) >= TARGETS[backend] else 'MISSED'}"
        runs = f"median of {len(rates)}" if len(rates) > 1 else "1 run"
        measure = f"events applied+journaled/s, {name}, {len(work.frames):,} events, {runs}"
        rows.append(
            Row(
                "2 throughput",
                measure,
                num(rate, "/s"),
                f"issue 17 target {TARGETS[backend]:,}/s",
                ratio(rate, TARGETS[backend]),
                target,
            )
        )
        rows.append(
            Row(
                "2 throughput",
                measure,
                num(rate, "/s"),
                f"previous path {num(previous, '/s')}",
                ratio(rate, previous),
            )
        )
        rows.append(
            Row(
                "2 throughput", measure, num(rate, "/s"), f"parse only {num(floor, '/s')}", ratio(rate, floor)
            )
        )
    return rows


def profile(events: int, out: Path) -> None:
    """Write a pyinstrument profile of the SQLite apply path to ``out`` (HTML) and print its text."""
    from pyinstrument import Profiler

    work = generate(events)
    with tempfile.TemporaryDirectory(prefix="ordersync-bench-") as tmp, sqlite_url(Path(tmp)) as url:
        seed_store(url, work.orders, OrderStatus.ACCEPTED, created_at=START)
        profiler = Profiler(interval=0.0005)
        profiler.start()
        asyncio.run(apply_all(url, work.frames))
        profiler.stop()
    out.write_text(profiler.output_html())
    print(profiler.output_text(unicode=False, color=False, show_all=False))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 events")
    parser.add_argument("--events", type=int, help="about this many events (default 20,000)")
    parser.add_argument("--backend", choices=("sqlite", "pg", "both"), default="both")
    parser.add_argument("--profile", type=Path, help="profile the SQLite apply (pyinstrument) into this HTML")
    args = parser.parse_args()
    quiet_logs()
    if args.profile:
        profile(args.events or 20_000, args.profile)
        return 0
    backends = ("sqlite", "pg") if args.backend == "both" else (args.backend,)
    print_rows("2. Throughput", collect(args.quick, args.events, backends))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
