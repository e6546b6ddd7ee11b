"""The chaos driver: simulator + engine worker in separate processes, SIGKILLs, then every invariant checked.

``python -m tools.chaos --seed S --parents N [--kills K] [--db URL]``

1. generate a seeded scenario (``generate.py``) and serve it with ``ordersync sim serve --clock flowing``,
   paced in lockstep with the worker (``lockstep.py``): the market's clock jumps (at most ``--step-s``
   virtual seconds) whenever the worker is quiet, and flows at real speed while it works, restarts or is
   down; ``--pace fast`` serves ``fast:N`` instead (``fastclock.py``: the schedule takes ``--schedule-s``
   real seconds, and CPU starvation becomes market time);
2. start the worker (``worker.py``: the real engine over alpaca-py, the trade_updates stream and the SQL
   store), SIGKILL it at K seeded-random moments of the market's clock and restart it each time
   (``--crash`` makes it kill itself at a named point first, see ``worker.CRASH_POINTS``);
3. after the schedule, wait for quiescence: no intent or unknown submit in the store, no venue timer
   pending, every parent's coverage at the broker unchanged over several samples;
4. stop the worker with SIGTERM, then check the invariants (``checks.py``) against the simulator's
   books and the store, and print the counts. Exit code 0 only with 0 violations.

Engine downtime, for invariant 9: each kill's moment on the simulator's clock (when the driver killed the
worker, or saw it dead) to the first ``reconciled`` journal entry after it (the restarted engine's first
successful reconciliation, stamped with the simulator's time). The clock is never jumped while the worker
is down, so a restart costs its real seconds in market time, 1 for 1. The report shows every window, the
fill->protect figures with and without them, and each restart's cost.

Seeded: the scenario, its fault sequence and the kill moments come from the seed, so a failure replays
(the interleaving of threads and sockets is not, so a replay hits the same moments only approximately).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from ordersync.demo.books import books_coverage
from ordersync.sim.process import end_process
from tools.chaos.checks import check_all
from tools.chaos.crash import CrashPlan
from tools.chaos.evidence import Evidence
from tools.chaos.fastclock import FastPacer, fast_options
from tools.chaos.generate import generate, schedule_end_s, write_scenario
from tools.chaos.grouping import Books
from tools.chaos.lockstep import Pacer
from tools.chaos.probe import (
    StoreProbe,
    classify_kill,
    downtime_windows,
    fault_windows,
    fresh_store,
    parse_time,
    read_store,
)
from tools.chaos.processes import Sim, Worker
from tools.chaos.report import render
from tools.chaos.results import P99_TARGET_S, ChaosOptions, ChaosResult, KillReport
from tools.chaos.worker import START_FAILED, worker_options

__all__ = ["P99_TARGET_S", "ChaosOptions", "ChaosResult", "KillReport", "main", "render", "run_chaos"]

SAMPLE_S = 1.5
STABLE_SAMPLES = 3  # quiescence: this many equal samples with everything covered
GIVE_UP_SAMPLES = 10  # ... or this many equal samples with something still short (then the checks say what)


# -- the run ----------------------------------------------------------------------------------------------


def _signature(state: Mapping[str, Any], parent_ids: frozenset[str]) -> tuple[tuple[str, str, str], ...]:
    books = Books(state, parent_ids)
    rows = []
    for pid in sorted(parent_ids):
        parent = books.parent.get(pid)
        covered = books_coverage([m for g in books.groups.get(pid, []) for m in g])
        rows.append((pid, "-" if parent is None else str(parent["filled_qty"]), str(covered)))
    return tuple(rows)


def _all_covered(signature: Sequence[tuple[str, str, str]]) -> bool:
    return all(
        Decimal(covered) == Decimal(0 if filled == "-" else filled) for _, filled, covered in signature
    )


def run_chaos(options: ChaosOptions) -> ChaosResult:
    """Run one chaos run end to end and return what it found (see the module docstring)."""
    started = time.monotonic()
    owned_dir = options.workdir is None
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix=f"ordersync-chaos-{options.seed}-"))
    workdir.mkdir(parents=True, exist_ok=True)
    data = generate(options.spec())
    parent_ids = frozenset(p["id"] for p in data["parents"])
    scenario = write_scenario(data, workdir / f"chaos-{options.seed}.yaml")
    end_s = schedule_end_s(data)
    rng = random.Random(f"kills-{options.seed}")
    kill_times = sorted(rng.uniform(0.05, 0.95) * end_s for _ in range(options.kills))  # virtual s
    restart_delays = [rng.uniform(0.1, 1.0) for _ in range(options.kills + len(options.crashes))]
    timings: dict[str, float] = {}
    kills: list[KillReport] = []
    failures: list[str] = []
    start_failures: list[str] = []
    factor = max(1.0, end_s / options.schedule_s)
    fast = options.pace == "fast"
    sim = Sim(scenario, f"fast:{factor:.4f}" if fast else "flowing", workdir / "sim.log")
    result: ChaosResult | None = None
    try:
        origin = str(sim.state()["started_at"])
        origin_at = parse_time(origin)
        pacer = FastPacer(sim.base_url, factor) if fast else Pacer(sim.http, workdir, options.step_s)
        began_at = pacer.now()
        t0 = time.monotonic()
        with fresh_store(options.db_url, workdir, options.seed) as url:
            probe = StoreProbe(url)
            worker = Worker(sim, url, scenario, origin, pacer, workdir / "worker.log")
            crashes = list(options.crashes)
            worker.start(crashes.pop(0) if crashes else None)
            assert worker.process is not None

            def restart(cause: str, detail: str) -> None:
                report = KillReport(round(time.monotonic() - t0, 2), cause, detail, at=pacer.now())
                classify_kill(report, url, sim.state(), set(parent_ids))
                kills.append(report)
                time.sleep(restart_delays[min(len(kills), len(restart_delays)) - 1])
                report.restarted_at = pacer.now()
                worker.start(crashes.pop(0) if crashes else None)

            def watch_worker() -> None:
                assert worker.process is not None
                code = worker.process.poll()
                if code is None:
                    return
                line = worker.crash_line()
                if code == -signal.SIGKILL and line is not None:
                    restart(line.split()[1], line)
                elif code == START_FAILED:  # restarted as a process supervisor would; reported
                    start_failures.append(worker.start_error())
                    restart("start_failed", start_failures[-1])
                else:
                    failures.append(f"worker exited by itself with code {code}: {worker.tail()[-600:]}")
                    restart("exited", f"code {code}")

            for at in kill_times:
                pacer.run_until(origin_at + timedelta(seconds=at), watch_worker)
                assert worker.process is not None
                if worker.process.poll() is None:
                    worker.process.kill()
                    worker.process.wait()
                    restart("random", "SIGKILL from the driver")
            pacer.run_until(origin_at + timedelta(seconds=end_s), watch_worker)
            timings["schedule"] = round(time.monotonic() - t0, 1)
            quiescent = _quiesce(sim, probe, parent_ids, options.quiesce_timeout_s, pacer, watch_worker)
            timings["quiescence"] = round(time.monotonic() - t0 - timings["schedule"], 1)
            assert worker.process is not None
            code = end_process(worker.process, signal.SIGTERM, 30)
            if code != 0:
                failures.append(
                    f"worker did not stop cleanly on SIGTERM (code {code}): {worker.tail()[-600:]}"
                )
            state = sim.state()
            (workdir / "books.json").write_text(json.dumps(state), encoding="utf-8")
            orders, alerts = read_store(url)
            downtime = downtime_windows(kills, probe.reconciled_at(), parse_time(state["now"]))
            evidence = Evidence(
                state,
                parent_ids,
                orders,
                probe.refusals(),
                alerts,
                poll_interval_s=(fast_options(factor) if fast else worker_options()).poll_interval_s,
                downtime=downtime,
                fault_windows=fault_windows(data, origin_at),
            )
            verdict = check_all(evidence)
            (workdir / "violations.txt").write_text(
                "".join(f"({n}) {v}\n" for n, found in verdict.violations.items() for v in found),
                encoding="utf-8",
            )
            probe.close()
            faults = dict(state["counters"]["faults"])
            scheduled = len(data.get("faults", {}).get("stream_drop_at_s", []))
            timings["total"] = round(time.monotonic() - started, 1)
            virtual_s = (pacer.now() - began_at).total_seconds()
            timings["virtual"] = round(virtual_s, 1)
            timings["of it jumped"] = round(pacer.jumped_s, 1)
            timings["jumps"] = pacer.steps
            timings["jumping"] = round(pacer.advance_real_s, 1)
            pacer.close()
            result = ChaosResult(
                options,
                virtual_s / max(1e-9, time.monotonic() - t0),
                verdict,
                kills,
                max(0, worker.starts - 1),
                failures,
                faults,
                scheduled,
                quiescent,
                timings,
                workdir,
                start_failures,
                downtime,
            )
            return result
    finally:
        sim.stop()
        if owned_dir and result is not None and result.ok:
            shutil.rmtree(workdir, ignore_errors=True)


def _quiesce(
    sim: Sim,
    probe: StoreProbe,
    parent_ids: frozenset[str],
    timeout_s: float,
    pacer: Pacer | FastPacer,
    watch: Any,
) -> bool:
    deadline = time.monotonic() + timeout_s
    previous: tuple[tuple[str, str, str], ...] | None = None
    same = 0
    while time.monotonic() < deadline:
        watch()
        state = sim.state()
        signature = _signature(state, parent_ids)
        quiet = probe.unsettled() == 0 and not state["pending_timers"]
        same = same + 1 if quiet and signature == previous else 0
        previous = signature
        if (same >= STABLE_SAMPLES and _all_covered(signature)) or same >= GIVE_UP_SAMPLES:
            # the engine's alerts are re-examined by its reconciliation: let one run after the books settled
            seen = probe.last_reconcile()
            while probe.last_reconcile() == seen and time.monotonic() < deadline:
                pacer.run_for(0.25, watch)
            pacer.run_for(SAMPLE_S, watch)  # and a few ticks after it
            return True
        pacer.run_for(SAMPLE_S, watch)
    return False


def _crash_plan(text_: str) -> CrashPlan:
    point, _, rest = text_.partition(":")
    role, _, nth = rest.partition(":")
    return CrashPlan(point, role or "any", int(nth or 1))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m tools.chaos``; returns the exit code (0: no violation)."""
    parser = argparse.ArgumentParser(prog="python -m tools.chaos", description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--parents", type=int, default=1000)
    parser.add_argument("--kills", type=int, default=6)
    parser.add_argument(
        "--db", default=None, help="store URL; PostgreSQL gets a fresh schema (default: SQLite)"
    )
    parser.add_argument(
        "--step-s", type=float, default=5.0, help="virtual seconds per jump of the lockstep clock"
    )
    parser.add_argument(
        "--crash", action="append", default=[], help="POINT[:ROLE[:N]]: the worker kills itself there first"
    )
    parser.add_argument("--pace", choices=("lockstep", "fast"), default="lockstep", help="the market's clock")
    parser.add_argument(
        "--schedule-s", type=float, default=45.0, help="--pace fast: real seconds for the schedule"
    )
    parser.add_argument(
        "--span-s", type=float, default=None, help="virtual seconds over which parents are submitted"
    )
    parser.add_argument("--no-faults", action="store_true")
    parser.add_argument(
        "--no-delay-bound", action="store_true", help="report invariant 9 (bounded delay) without judging it"
    )
    parser.add_argument("--workdir", type=Path, default=None, help="keep scenario, logs and store here")
    ns = parser.parse_args(argv)
    options = ChaosOptions(
        seed=ns.seed,
        parents=ns.parents,
        kills=ns.kills,
        db_url=ns.db,
        step_s=ns.step_s,
        pace=ns.pace,
        schedule_s=ns.schedule_s,
        span_s=ns.span_s,
        crashes=tuple(_crash_plan(c) for c in ns.crash),
        workdir=ns.workdir,
        faults=not ns.no_faults,
        judge_delay=not ns.no_delay_bound,
    )
    result = run_chaos(options)
    sys.stdout.write(render(result) + "\n")
    return 0 if result.ok else 1
