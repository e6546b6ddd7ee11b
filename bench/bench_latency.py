"""Fill-to-protect latency: from a broker fill event to the child that covers it being accepted (POST 200).

One small scenario (four symbols, parents filling in two or three parts, a take-profit and a stop-loss on
each) is written to a temporary YAML file and run with the demo runner (``run_demo``) in one process:

* ordersync, stream up: the engine hears fills on the trade_updates stream;
* ordersync, stream down: the engine's stream URL points at a closed port for the whole run, so it never
  connects and learns fills only from its poller (the demo engine polls every 30 s, like the naive
  platform; ``ordersync run`` defaults to 2 s);
* ordersync, stream silent: connected, but the simulator drops every event (``drop_event_p: 1.0``), so
  the engine must notice the silence (``stream_silence_s``) before it polls;
* naive: the seed's platform (docs/architecture.md §9): children sent at once, refused, retried on its 30 s
  polling cycle;
* competent list poller (``demo/poller.py``): one order listing every 5 s, exits for each newly polled
  fill (what a careful platform without a stream builds);
* floor: one bare POST round trip (alpaca-py -> simulator -> back) on the same simulator, the least any
  client spends placing a child once it knows of a fill.

Latency is read from the simulator's books (``Summary.fill_to_protect_ms``: each execution's venue time to
the ``submitted_at`` of the accepted children that cover it), in the demo's virtual time: it flows at real
speed while anything is happening and jumps over idle stretches (see ``ordersync/demo/conductor.py``),
so it holds real processing and round trips plus every modelled wait (poll cycles, backoffs).

    python bench/bench_latency.py
    python bench/bench_latency.py --baseline main   # stream up: this tree against main, side by side
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any
from unittest import mock

import yaml
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, TimeInForce
from alpaca.trading.requests import LimitOrderRequest

import ordersync.bootstrap as bootstrap
import ordersync.demo.run as demo_run
from common import Row, log, median, num, percentile, print_rows, quiet_logs, ratio, timed
from ordersync.brokers.alpaca import AlpacaStream
from ordersync.demo.run import DemoOptions, run_demo
from ordersync.demo.summary import Summary
from ordersync.domain.kinds import JournalKind
from ordersync.sim.clock import FlowingClock
from ordersync.sim.scenarios import Scenario, load_scenario
from ordersync.sim.server import SimServer
from ordersync.store import open_store

KEY, SECRET = "bench-key", "bench-secret"


def scenario_data(faults: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return the latency scenario: 4 symbols, 4 parents, 10 partial fills, TP+SL on every parent."""

    def parent(
        pid: str, symbol: str, qty: int, at: int, fills: list[tuple[int, int]], tp: str, sl: str
    ) -> Any:
        return {
            "id": pid,
            "symbol": symbol,
            "qty": str(qty),
            "submit_at_s": at,
            "fills": [{"after_s": s, "qty": str(q)} for s, q in fills],
            "take_profit": {"limit_price": tp},
            "stop_loss": {"stop_price": sl},
        }

    data: dict[str, Any] = {
        "name": "bench-latency",
        "seed": 3,
        "start": "2025-10-10T15:59:00Z",
        "rate_limit_per_min": 200,
        "latency": {"ack_s": 0.05, "fill_s": 0.05, "cancel_s": 0.1},
        "symbols": {
            s: {"price": p} for s, p in (("OKE", "72.10"), ("KMI", "27.40"), ("ET", "17.10"), ("VZ", "40.20"))
        },
        "parents": [
            parent("a1", "OKE", 30, 5, [(40, 10), (130, 10), (260, 10)], "76.00", "68.50"),
            parent("a2", "KMI", 50, 12, [(75, 20), (200, 30)], "28.80", "25.00"),
            parent("a3", "ET", 90, 20, [(33, 30), (97, 30), (301, 30)], "18.00", "16.20"),
            parent("a4", "VZ", 40, 31, [(58, 15), (177, 25)], "42.20", "38.20"),
        ],
    }
    if faults:
        data["faults"] = faults
    return data


def write_scenario(folder: Path, name: str, faults: dict[str, Any] | None = None) -> Scenario:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(scenario_data(faults), sort_keys=False), encoding="utf-8")
    return load_scenario(path)


def closed_port_url() -> str:
    """A websocket URL nothing listens on (connection refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"ws://127.0.0.1:{port}/stream"


@contextmanager
def stream_unreachable() -> Iterator[None]:
    """Make the demo engine's stream point at a closed port: it never connects, so only the poller works."""
    dead = closed_port_url()

    def factory(*args: Any, **kwargs: Any) -> AlpacaStream:
        kwargs["url"] = dead
        return AlpacaStream(*args, **kwargs)

    with mock.patch.object(bootstrap, "AlpacaStream", factory):  # the one composition root builds it
        yield


def demo(scenario: Scenario, mode: str, db_url: str | None = None) -> Summary:
    with timed() as t:
        summary = asyncio.run(run_demo(scenario, DemoOptions(mode=mode, db_url=db_url)))
    f = summary.fill_to_protect_ms
    log(
        f"latency: {mode} run: p50 {f.get('p50')} p99 {f.get('p99')} ms over {f.get('n')} fills, "
        f"{summary.broker_requests} requests, unprotected {summary.unprotected_qty}, {t[0]:.1f} s real"
    )
    if summary.unprotected_qty != "0" and mode == "safe":
        log(f"latency: WARNING: ordersync left {summary.unprotected_qty} unprotected")
    return summary


def stages(db_url: str) -> dict[str, float]:
    """Median milliseconds of each stage between a fill and its child's POST, from the run's journal.

    Journal timestamps are the engine clock (the demo's virtual time, flowing at real speed while busy):
    fill at the venue -> observation applied (stream delivery, parse, queue) -> child released (writer
    commit, release pass: its reads and decision, a position read only off the common path) -> submit sent
    (the same release transaction writes both since the fill path was shortened; before, a transaction of
    the sender's) -> POST answered (the release commit, the POST and its answer).
    """
    store = open_store(db_url, migrate=False)
    try:
        entries = store.read_journal(limit=10**7)
    finally:
        store.close()
    marks: dict[str, list[float]] = {"applied": [], "released": [], "sent": [], "answered": []}
    released: dict[str, list[tuple[Any, str]]] = {}  # parent -> [(ts, child)]
    sent: dict[str, Any] = {}
    answered: dict[str, Any] = {}
    fills = []
    for e in entries:
        if (
            e.kind == JournalKind.OBSERVED
            and e.payload.get("event") in ("fill", "partial_fill")
            and "~" not in str(e.client_order_id)
        ):
            fills.append((e.client_order_id, _at(e.payload["ts_event"]), e.ts))
        elif e.kind == JournalKind.CHILD_RELEASED:
            released.setdefault(str(e.payload.get("parent")), []).append((e.ts, str(e.client_order_id)))
        elif e.kind == JournalKind.SUBMIT_SENT:
            sent.setdefault(str(e.client_order_id), e.ts)
        elif e.kind == JournalKind.SUBMIT_ACCEPTED:
            answered.setdefault(str(e.client_order_id), e.ts)
    for parent, venue_at, applied_at in fills:
        later = [(ts, child) for ts, child in released.get(str(parent), []) if ts >= applied_at]
        if not later or later[0][1] not in sent or later[0][1] not in answered:
            continue
        released_at, child = later[0]
        steps = (venue_at, applied_at, released_at, sent[child], answered[child])
        for name, (a, b) in zip(marks, pairwise(steps), strict=True):
            marks[name].append((b - a).total_seconds() * 1000)
    return {k: median(v) or 0.0 for k, v in marks.items()}


def _at(value: Any) -> Any:
    return value if not isinstance(value, str) else datetime.fromisoformat(value.replace("Z", "+00:00"))


async def _post_round_trips(server: SimServer, n: int) -> list[float]:
    client = TradingClient(KEY, SECRET, url_override=server.base_url)
    client._retry = 0
    samples = []
    for i in range(n + 3):
        request = LimitOrderRequest(
            symbol="OKE",
            qty=1,
            side=OrderSide.BUY,
            time_in_force=TimeInForce.GTC,
            limit_price=10.0,  # far below the market: stays open
            client_order_id=f"floor-{i}",
        )
        with timed() as t:
            await asyncio.to_thread(client.submit_order, request)  # as AlpacaBroker sends it
        if i >= 3:  # the first requests open the connection
            samples.append(t[0] * 1000)
    return samples


def floor_ms(scenario: Scenario, n: int = 60) -> tuple[float, float]:
    """Return p50/p99 (ms) of a bare POST round trip on a simulator running ``scenario``."""
    clock = FlowingClock(scenario.start or demo_run.DEFAULT_START)
    unlimited = scenario.model_copy(update={"rate_limit_per_min": 1_000_000})  # n may exceed 200/min
    server = SimServer(unlimited, clock, api_key=KEY, secret_key=SECRET)
    server.start()
    try:
        samples = asyncio.run(_post_round_trips(server, n))
    finally:
        server.stop()
    p50, p99 = percentile(samples, 0.5) or 0.0, percentile(samples, 0.99) or 0.0
    log(f"latency: floor: POST round trip p50 {p50:.2f} ms, p99 {p99:.2f} ms over {n}")
    return p50, p99


def _pair(f: dict[str, float | None], unit: str = "ms") -> str:
    return f"{num(f.get('p50'), digits=1)} / {num(f.get('p99'), digits=1)} {unit}"


def _ratios(a: dict[str, float | None], b: dict[str, float | None]) -> str:
    return f"{ratio(a.get('p50'), b.get('p50'))} / {ratio(a.get('p99'), b.get('p99'))}"


def collect(quick: bool = False) -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="ordersync-bench-") as tmp:
        folder = Path(tmp)
        plain = write_scenario(folder, "latency")
        silent = write_scenario(folder, "latency-silent", {"seed": 1, "drop_event_p": 1.0})
        fp50, fp99 = floor_ms(plain, 50 if quick else 300)
        floor = {"p50": fp50, "p99": fp99}
        naive = demo(plain, "naive").fill_to_protect_ms
        poller = demo(plain, "poller").fill_to_protect_ms  # the competent list poller, every 5 s
        up_db = f"sqlite:///{folder / 'up.db'}"
        up = demo(plain, "safe", up_db).fill_to_protect_ms
        split = stages(up_db)
        log(
            "latency: stream up, median ms per stage: fill -> applied {applied:.1f}, -> child released "
            "{released:.1f}, -> submit sent {sent:.1f}, -> POST answered {answered:.1f}".format(**split)
        )
        with stream_unreachable():
            down = demo(plain, "safe").fill_to_protect_ms
        runs = [("stream up", up), ("stream down (poller only)", down)]
        if not quick:
            runs.append(("stream silent (events dropped)", demo(silent, "safe").fill_to_protect_ms))
    n = up.get("n")
    for name, figures in runs:
        rows.append(
            Row(
                "1 latency",
                f"fill->protect p50 / p99, {name}, {n} fills",
                _pair(figures),
                f"naive (30 s polling) {_pair(naive)}",
                _ratios(figures, naive),
            )
        )
        rows.append(
            Row(
                "1 latency",
                f"fill->protect p50 / p99, {name}",
                _pair(figures),
                f"competent list poller (5 s) {_pair(poller)}",
                _ratios(figures, poller),
            )
        )
        rows.append(
            Row(
                "1 latency",
                f"fill->protect p50 / p99, {name}",
                _pair(figures),
                f"floor: one POST round trip {_pair(floor)}",
                _ratios(figures, floor),
            )
        )
    return rows


def stream_up(folder: Path) -> dict[str, float | None]:
    """One stream-up run of this tree's ordersync: fill->protect p50/p99 (ms)."""
    figures = demo(
        write_scenario(folder, "latency"), "safe", f"sqlite:///{folder / 'up.db'}"
    ).fill_to_protect_ms
    return {"p50": figures.get("p50"), "p99": figures.get("p99")}


def _baseline_run(src: Path) -> dict[str, float | None]:
    # the same script, with ``src`` first on the path: the baseline's ordersync, this run's scenario and clock
    env = {**os.environ, "PYTHONPATH": str(src)}
    done = subprocess.run(
        [sys.executable, __file__, "--stream-up-json"], env=env, capture_output=True, text=True, check=True
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _export(ref: str, into: Path) -> Path:
    """The ``src`` tree of git ``ref``, extracted into ``into`` (nothing in the repository changes)."""
    root = Path(__file__).resolve().parent.parent
    archive = subprocess.run(["git", "-C", str(root), "archive", ref, "src"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into / "src"


def compare(ref: str, rounds: int) -> list[Row]:
    """This tree against git ``ref``, stream up, alternating ``rounds`` runs each, with one floor."""
    with tempfile.TemporaryDirectory(prefix="ordersync-bench-") as tmp:
        folder = Path(tmp)
        src = _export(ref, folder)
        fp50, fp99 = floor_ms(write_scenario(folder, "floor"), 300)
        ours: list[dict[str, float | None]] = []
        theirs: list[dict[str, float | None]] = []
        for i in range(rounds):  # alternated, so a busy moment of the machine hits both sides alike
            theirs.append(_baseline_run(src))
            run_dir = folder / f"run{i}"
            run_dir.mkdir()
            ours.append(stream_up(run_dir))
            log(f"latency: round {i + 1}: {ref} {_pair(theirs[-1])}, this tree {_pair(ours[-1])}")
    floor = {"p50": fp50, "p99": fp99}
    rows = []
    for name, runs in (
        (f"this tree, median of {rounds} runs", ours),
        (f"{ref}, median of {rounds} runs", theirs),
    ):
        figures = {k: median([r[k] for r in runs if r[k] is not None]) for k in ("p50", "p99")}
        rows.append(
            Row(
                "1 latency",
                f"fill->protect p50 / p99, stream up, {name}",
                _pair(figures),
                f"floor: one POST round trip {_pair(floor)}",
                _ratios(figures, floor),
            )
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="skip the silent-stream run, fewer floor samples"
    )
    parser.add_argument(
        "--baseline",
        metavar="REF",
        help="stream up only: this tree against git REF (e.g. main), alternating runs, one floor",
    )
    parser.add_argument("--rounds", type=int, default=3, help="runs per side with --baseline (default 3)")
    parser.add_argument("--stream-up-json", action="store_true", help=argparse.SUPPRESS)  # one side's run
    args = parser.parse_args()
    quiet_logs()
    if args.stream_up_json:
        with tempfile.TemporaryDirectory(prefix="ordersync-bench-") as tmp:
            print(json.dumps(stream_up(Path(tmp))))
        return 0
    if args.baseline:
        print_rows(f"1. Fill-to-protect latency against {args.baseline}", compare(args.baseline, args.rounds))
        return 0
    print_rows("1. Fill-to-protect latency", collect(args.quick))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
