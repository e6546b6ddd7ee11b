"""The chaos run's two processes seen from the driver: the simulator (its HTTP control API) and the engine
worker (started, restarted, its log read for crash marks and start failures).

Process plumbing apart from the run's logic: the driver decides when to kill and restart, this knows how.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from ordersync.sim.process import end_process, start_simulator_process
from tools.chaos.crash import CRASH_MARK, CrashPlan
from tools.chaos.fastclock import FastPacer
from tools.chaos.lockstep import Pacer
from tools.chaos.parents import write_parents
from tools.chaos.probe import parse_time
from tools.chaos.worker import SPAWNED_AT

__all__ = ["KEY", "PROFILE_ENV", "SECRET", "Sim", "Worker", "sim_env"]

KEY, SECRET = "chaos-key", "chaos-secret"  # the simulator's own test keys, never real ones
PROFILE_ENV = "ORDERSYNC_CHAOS_PROFILE"  # a directory: run every worker under cProfile, profiles there
# the repository's root: ``tools`` is not installed, so the worker finds ``tools.chaos.worker`` from there
ROOT = Path(__file__).resolve().parents[2]


def sim_env() -> dict[str, str]:
    no_proxy = ",".join(filter(None, ["127.0.0.1,localhost", os.environ.get("NO_PROXY", "")]))
    return {**os.environ, "APCA_API_KEY_ID": KEY, "APCA_API_SECRET_KEY": SECRET, "NO_PROXY": no_proxy}


class Sim:
    """The simulator process and an HTTP client to its control API."""

    def __init__(self, scenario: Path, clock: str, log_path: Path) -> None:
        self.log_path = log_path
        self.process, self.port = start_simulator_process(
            scenario, clock=clock, log_path=log_path, env=sim_env()
        )
        self.http = httpx.Client(base_url=self.base_url, timeout=30)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def stream_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/stream"

    def now(self) -> datetime:
        """The simulator's virtual time."""
        return parse_time(self.http.get("/sim/clock").json()["now"])

    def state(self) -> dict[str, Any]:
        response = self.http.get("/sim/state")
        response.raise_for_status()
        state: dict[str, Any] = response.json()
        return state

    def stop(self) -> None:
        self.http.close()
        end_process(self.process, signal.SIGTERM, 10)


class Worker:
    """The engine worker process: one command line, started again after each death."""

    def __init__(
        self, sim: Sim, db_url: str, scenario: Path, origin: str, pacer: Pacer | FastPacer, log_path: Path
    ) -> None:
        self._base = [sys.executable, "-m", "tools.chaos.worker", "--base-url", sim.base_url]
        parents = write_parents(scenario, scenario.with_suffix(".parents.json"))
        self._base += ["--stream-url", sim.stream_url, "--db", db_url, "--parents", str(parents)]
        self._base += ["--origin", origin]
        if isinstance(pacer, Pacer):  # the worker reads the market's time from the pacer's clock file
            self._base += ["--clock-file", str(pacer.clock_path), "--status-file", str(pacer.status_path)]
        else:  # synced once here: a restarted worker follows the fast clock without asking it first
            at, mono = pacer.clock.anchor
            self._base += ["--factor", f"{pacer.factor:.4f}", "--clock-anchor", f"{at.isoformat()}@{mono!r}"]
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._log_offset = 0

    def start(self, crash: CrashPlan | None) -> None:
        command = list(self._base)
        profile_dir = os.environ.get(PROFILE_ENV)
        if profile_dir:  # each worker start under cProfile (written on SIGTERM, lost on SIGKILL)
            out = Path(profile_dir) / f"worker-{self.starts + 1}.prof"
            command[1:1] = ["-m", "cProfile", "-o", str(out)]
        if crash is not None:
            command += ["--crash-at", crash.point, "--crash-role", crash.role, "--crash-nth", str(crash.nth)]
        with self.log_path.open("ab") as log:
            log.write(f"\n== worker start {self.starts + 1} crash={crash}\n".encode())
            self._log_offset = log.tell()
            paths = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
            env = {
                **sim_env(),
                "PYTHONPATH": os.pathsep.join(paths),
                SPAWNED_AT: repr(time.time()),
            }  # the worker logs its start-up phases from here
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.starts += 1

    def crash_line(self) -> str | None:
        with self.log_path.open("rb") as log:
            log.seek(self._log_offset)
            for line in log.read().decode(errors="replace").splitlines():
                if line.startswith(CRASH_MARK):
                    return line
        return None

    def start_error(self) -> str:
        with self.log_path.open("rb") as log:
            log.seek(self._log_offset)
            lines = log.read().decode(errors="replace").splitlines()
        found = [line for line in lines if "chaos.start_failed" in line]
        return found[-1][:300] if found else "no chaos.start_failed line"

    def tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-2000:]
