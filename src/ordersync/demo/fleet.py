"""``ordersync demo --accounts N --workers W``: the seed incident on N accounts, W real workers, one killed.

The run, in order (each step a progress line):

1. one ``ordersync sim serve`` process serves the N accounts, each with its own keys and books and its own
   variation of the fill plans (``fleet_scenario.py``), on a compressed timeline in real time;
2. the accounts are registered in a catalog on PostgreSQL (a schema of its own, one schema per account store;
   keys in a temporary secrets folder), and W ``ordersync run --worker`` processes share them out;
3. once every account is active, each account's platform records the scenario's entries with their plans in
   the account's store (``record_parent``, what ``ordersync submit`` does); the demo plays the price moves;
4. when fills have begun on the accounts of the worker running the most of them, that worker is SIGKILLed;
   the others take its accounts over (its heartbeat and the accounts' leases expire) while fills go on;
5. when the timeline is over and every fill is protected (or a deadline passes), the workers stop, and each
   account is judged from its books at the simulator and a dry-run reconcile of its store
   (``fleet_summary.py``); exit 0 only if every account's figures are 0.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.engine import make_url

from ordersync.demo.entries import entry_order, plan_for
from ordersync.demo.fleet_processes import FleetProcesses
from ordersync.demo.fleet_scenario import TIMELINE_S, FleetScenario, fleet_scenario
from ordersync.demo.fleet_summary import (
    FleetSummary,
    KilledWorker,
    fill_delays_ms,
    judge_books,
    reconcile_account,
    totals,
)
from ordersync.sim.scenarios import Scenario

__all__ = ["DemoFailed", "FleetOptions", "run_fleet_demo"]

Progress = Callable[[str], None]
T = TypeVar("T")
CONNECTIONS_PER_ACCOUNT = 1  # fleet.store_pool_size: what each account's store keeps (docs §8, Capacity)
SUBMIT_EVERY_S = 0.4  # real seconds between two accounts' platforms recording their entries


class DemoFailed(RuntimeError):
    """The fleet could not be set up or never reached a state to judge (one line; nothing was judged)."""


@dataclass(frozen=True)
class FleetOptions:
    """How to run the fleet demo."""

    accounts: int
    workers: int
    db_url: str
    keep: bool = False
    timeline_s: float = TIMELINE_S
    kill_after: float = 0.25  # the kill comes once this share of the timeline has passed (and fills began)
    active_timeout_s: float = 240.0  # real seconds for every account to become active
    settle_timeout_s: float = 120.0  # real seconds after the timeline for every fill to be protected
    progress_every_s: float = 5.0


def _fills(state: dict[str, Any], parent_ids: set[str]) -> int:
    return sum(
        len(o["sim"].get("executions", [])) for o in state["orders"] if o["client_order_id"] in parent_ids
    )


def _uncovered(state: dict[str, Any], parent_ids: set[str], end: datetime) -> Decimal:
    summary = judge_books("", "", state, parent_ids, end)
    return Decimal(summary.unprotected_qty) + Decimal(summary.overprotected_qty)


class _Run:
    """One fleet demo in progress: the processes, the timeline, the kill."""

    def __init__(
        self, fleet: FleetScenario, options: FleetOptions, procs: FleetProcesses, say: Progress
    ) -> None:
        self.fleet, self.options, self.procs, self.say = fleet, options, procs, say
        self.names = [a.name for a in fleet.accounts]
        self.ids = fleet.parent_ids
        self.t0 = 0.0
        self.moves = list(fleet.price_moves)
        self.killed: KilledWorker | None = None
        self._killed_at = 0.0
        self._last_say = 0.0

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def wait_active(self) -> None:
        began = time.monotonic()
        while True:
            holders = self.procs.holders()
            active = sum(1 for h in holders.values() if h is not None)
            pids = {h for h in holders.values() if h is not None}
            if active == len(self.names) and len(pids) == self.options.workers:
                self.say(
                    f"all {active} accounts active on {len(pids)} workers ({time.monotonic() - began:.0f} s)"
                )
                return
            if any(p.poll() is not None for p in self.procs.workers):
                raise DemoFailed(f"a worker exited while starting; see its log in {self.procs.workdir}")
            if time.monotonic() - began > self.options.active_timeout_s:
                raise DemoFailed(
                    f"only {active} of {len(self.names)} accounts active on {len(pids)} workers after "
                    f"{self.options.active_timeout_s:.0f} s"
                )
            self._every(f"starting: {active}/{len(self.names)} accounts active on {len(pids)} workers")
            time.sleep(0.5)

    def submit_entries(self, urls: dict[str, str]) -> None:
        """Each account's platform records the scenario's entries with their plans in the account's store,
        one account every ``SUBMIT_EVERY_S``: the accounts' engines then send their 13 entries (and protect
        their first fills) a little apart, as users' activity is, instead of all 50 at the same instant,
        which took more PostgreSQL connections at once than a default server has (each engine uses a second
        one while it is busy)."""
        from ordersync.store import open_store

        for index, name in enumerate(self.names):
            while self.elapsed() < index * SUBMIT_EVERY_S:
                self.play_prices()
                time.sleep(0.05)
            store = _retrying(functools.partial(open_store, urls[name], migrate=False))  # add() migrated it
            try:
                for parent in self.fleet.parents_of(name):
                    _retrying(functools.partial(_record, store, parent))
            finally:
                store.close()
            self.play_prices()
        self.say(f"recorded {len(self.ids)} entries with plans in each of {len(self.names)} accounts")

    def play_prices(self) -> None:
        while self.moves and self.moves[0][0] <= self.elapsed():
            _, symbol, price = self.moves.pop(0)
            self.procs.set_price(symbol, str(price))

    def _every(self, line: str) -> None:
        if time.monotonic() - self._last_say >= self.options.progress_every_s:
            self._last_say = time.monotonic()
            self.say(line)

    def run_timeline(self) -> None:
        """Play the timeline; kill the busiest worker once fills began on its accounts."""
        kill_at = self.options.kill_after * self.fleet.timeline_s
        while self.elapsed() < self.fleet.timeline_s or self.moves:
            self.play_prices()
            if self.killed is None and self.elapsed() >= kill_at:
                self._try_kill()
            self._watch_takeover()
            self._every(self._line())
            time.sleep(0.2)
        if self.killed is None:  # fills never began on its accounts: the demo proved nothing
            raise DemoFailed("no fill reached the accounts of any worker before the timeline ended")

    def _line(self) -> str:
        holders = self.procs.holders()
        active = sum(1 for h in holders.values() if h is not None)
        kill = "" if self.killed is None else f", worker {self.killed.pid} killed at {self.killed.at_s:.0f} s"
        at = f"{self.elapsed():.0f}/{self.fleet.timeline_s:.0f} s"
        return f"{at}: {active}/{len(self.names)} accounts active{kill}"

    def _try_kill(self) -> None:
        by_pid: dict[int, list[str]] = {}
        for name, pid in self.procs.holders().items():
            if pid is not None:
                by_pid.setdefault(pid, []).append(name)
        if not by_pid:
            return
        pid, accounts = max(by_pid.items(), key=lambda kv: (len(kv[1]), -kv[0]))
        fills = sum(_fills(self.procs.state(a), self.ids) for a in accounts)
        if fills == 0:
            return
        self.procs.kill(pid)
        self._killed_at = time.monotonic()
        self.killed = KilledWorker(pid, sorted(accounts), round(self.elapsed(), 1), fills)
        self.say(f"SIGKILLed worker {pid} running {len(accounts)} accounts, after {fills} fills on them")
        if all(p.poll() is not None for p in self.procs.workers):  # --workers 1: nobody left to take over
            self.procs.start_workers(1)
            self.say("no worker left: a new one starts, as a supervisor would restart it")

    def _watch_takeover(self) -> None:
        killed = self.killed
        if killed is None or killed.takeover_s is not None:
            return
        holders = self.procs.holders()
        if all(holders.get(a) not in (None, killed.pid) for a in killed.accounts):
            killed.takeover_s = round(time.monotonic() - self._killed_at, 1)
            self.say(
                f"other workers run all {len(killed.accounts)} of its accounts after {killed.takeover_s} s"
            )

    def settle(self) -> list[str]:
        """Wait until no planned fill is pending and every account's fills are covered, twice running."""
        began, calm = time.monotonic(), 0
        while time.monotonic() - began < self.options.settle_timeout_s:
            self._watch_takeover()
            timers = self.procs.state(self.names[0])["pending_timers"]  # the market's: every account's
            planned = sum(1 for t in timers if str(t["label"]).startswith("plan"))
            uncovered = len(self.names)
            if not planned:  # every book is read only once no fill is due: the simulator serves the workers
                end = datetime.now(UTC)
                uncovered = sum(1 for n in self.names if _uncovered(self.procs.state(n), self.ids, end))
            taken_over = self.killed is not None and self.killed.takeover_s is not None
            calm = calm + 1 if not planned and not uncovered and taken_over else 0
            if calm >= 2:
                return []
            covered = "" if planned else f", {uncovered} accounts with fills not yet covered"
            self._every(f"settling: {planned} planned fills pending{covered}")
            time.sleep(2.0)
        return [f"not settled after {self.options.settle_timeout_s:.0f} s: fills still uncovered or pending"]

    def judge(self) -> tuple[dict[str, Any], list[float]]:
        from ordersync.config import account_credentials, load_settings
        from ordersync.fleet.worker import account_settings

        settings = load_settings(self.procs.config)
        secrets = settings.fleet.secrets_dir
        summaries: dict[str, Any] = {}
        delays: list[float] = []
        end = datetime.now(UTC)
        for name in self.names:
            state = self.procs.state(name)
            summaries[name] = judge_books(name, self.fleet.scenario.name, state, self.ids, end)
            delays += fill_delays_ms(state, self.ids, end)

        def reconcile(name: str) -> None:
            credentials = account_credentials(name, Path(secrets) if secrets else None)
            account = account_settings(settings, self.procs.catalog, name)
            reconcile_account(summaries[name], account, credentials)

        # the workers have stopped: the accounts' stores are free, a few reconciles at a time
        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="reconcile") as pool:
            for index, _ in enumerate(pool.map(reconcile, self.names), 1):
                self._every(f"judging: {index}/{len(self.names)} accounts reconciled")
        if self.killed is not None:
            self.killed.fills_after = (
                sum(_fills(self.procs.state(a), self.ids) for a in self.killed.accounts)
                - self.killed.fills_before
            )
        return summaries, delays


def _record(store: Any, parent: Any) -> None:
    from ordersync.domain.errors import ConcurrencyConflict
    from ordersync.engine import record_parent

    now = datetime.now(UTC)
    with contextlib.suppress(ConcurrencyConflict):  # recorded by an attempt whose answer was lost
        record_parent(store, entry_order(parent, now), plan_for(parent), now)


def _wait_workers(procs: FleetProcesses, options: FleetOptions) -> None:
    began = time.monotonic()
    while procs.live_workers() < options.workers:
        if any(p.poll() is not None for p in procs.workers):
            raise DemoFailed(f"a worker exited while starting; see its log in {procs.workdir}")
        if time.monotonic() - began > options.active_timeout_s:
            raise DemoFailed(f"{options.workers} workers not live after {options.active_timeout_s:.0f} s")
        time.sleep(0.3)


def _retrying(call: Callable[[], T], attempts: int = 6) -> T:
    """``call()``, again after a pause while a shared PostgreSQL server refuses connections for a moment."""
    from sqlalchemy.exc import OperationalError

    for attempt in range(1, attempts + 1):
        try:
            return call()
        except OperationalError:
            if attempt == attempts:
                raise
            time.sleep(min(2.0, 0.5 * attempt))
    raise AssertionError("unreachable")


def database_of(url: str) -> str:
    """The server and database of ``url``, without user or password (what the summary may show)."""
    parsed = make_url(url)
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database or ''}"


def run_fleet_demo(scenario: Scenario, options: FleetOptions, say: Progress) -> FleetSummary:
    """Run the fleet demo and return its summary (see the module docstring).

    Raises:
        DemoFailed: the fleet could not start or never got to the kill (one line).
        UnsupportedFleetScenario: the scenario cannot run on many accounts in real time.
    """
    started = time.monotonic()
    fleet = fleet_scenario(scenario, options.accounts, timeline_s=options.timeline_s)
    summary = FleetSummary(
        scenario.name, options.workers, database_of(options.db_url), compression=fleet.compression
    )
    procs = FleetProcesses(options.db_url, fleet, keep=options.keep)
    try:
        limit, used = procs.connection_budget()
        need = CONNECTIONS_PER_ACCOUNT * options.accounts + 2 * options.workers + 10
        if limit - used < need:  # measured at 50/4: 57 at peak, the busy engines' second ones included
            say(
                f"warning: PostgreSQL has {limit - used} of {limit} connections free; {options.accounts} "
                f"accounts take about {need} at their busiest: engines may fail to connect and lose leases"
            )
        procs.start_simulator()
        say(
            f"simulator serving {options.accounts} accounts, "
            f"the {scenario.name} timeline in ~{fleet.timeline_s:.0f} s"
        )
        urls = procs.register_accounts()
        say(
            f"{options.accounts} accounts registered in a catalog on {summary.database} (a store schema each)"
        )
        procs.start_workers(options.workers)
        procs.start_sampling()
        _wait_workers(procs, options)
        procs.enable_accounts()
        run = _Run(fleet, options, procs, say)
        run.wait_active()
        run.t0 = time.monotonic()
        run.submit_entries(urls)
        run.run_timeline()
        summary.errors += run.settle()
        summary.killed = run.killed
        procs.stop_workers()
        ours, everyone = procs.peak_connections
        say(
            f"workers stopped; PostgreSQL connections at peak: {ours} of this demo's, {everyone} on the "
            f"server (max_connections {limit}); judging every account from its books and its store"
        )
        accounts, delays = run.judge()
        summary.accounts = accounts
        summary.total = totals(scenario.name, list(accounts.values()), delays)
        logs = procs.worker_logs()
        if any(a.secret_key in logs for a in fleet.accounts):
            summary.errors.append("a secret key appeared in a worker's log")
    finally:
        kept = procs.close()
        if kept:
            say(kept)
    summary.real_duration_s = round(time.monotonic() - started, 1)
    return summary
