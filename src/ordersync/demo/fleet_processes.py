"""The fleet demo's processes and PostgreSQL objects: one simulator, a catalog, W workers, and their clean-up.

Everything the demo creates is its own: a temporary folder (the scenario with the keys, the secrets folder,
the workers' config and logs, all owner-only), a catalog schema with a unique name on the given server and
one schema per account (``Catalog.add``). ``close`` ends the processes it started (by their handles) and drops
the schemas, unless ``keep`` (then it says where they are). Keys are written only to the secrets folder and
the simulator's scenario file: never printed, never in a command line, never in the config.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from ordersync.demo.fleet_scenario import FleetScenario, scenario_text
from ordersync.fleet.catalog import Catalog, account_store_url
from ordersync.sim.process import end_process, ordersync_command, start_simulator_process

__all__ = ["FleetProcesses"]

# The workers' config: the fleet's defaults (heartbeat 1 s, worker TTL 5 s; a shorter TTL makes a worker
# whose event loop lags on a loaded machine look dead, and the others' takeovers of its live accounts churn),
# the engine's defaults but for the poll: with the stream up it is the safety net, and 50 engines polling
# every 2 s is most of the simulator's work on a 2-core machine.
POLL_INTERVAL_S = 5.0
APPLICATION = "ordersync-fleet-demo"
IDLE_SESSION_MS = 10000
CONNECTIONS_EVERY_S = 0.5


class FleetProcesses:
    """A simulator process, a catalog on its own schema, and the worker processes of one fleet demo."""

    def __init__(self, pg_url: str, fleet: FleetScenario, *, keep: bool = False) -> None:
        self.keep = keep
        self.fleet = fleet
        self.workdir = Path(tempfile.mkdtemp(prefix="ordersync-fleet-demo-"))  # mode 0700
        self.schema = f"ordersync_demo_{uuid.uuid4().hex[:12]}"
        self._admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
        with self._admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{self.schema}"'))
        separator = "&" if "?" in pg_url else "?"
        # Every connection of the demo and its workers says whose it is (pg_stat_activity.application_name),
        # which the demo's peak counts, and the server closes one left idle (IDLE_SESSION_MS; a pool
        # replaces a closed one at its next checkout): each account's store keeps fleet.store_pool_size (1)
        # connections between uses. The account stores inherit both (``account_store_url``).
        options = f"-cidle_session_timeout%3D{IDLE_SESSION_MS}+-csearch_path%3D{self.schema}"
        self.catalog_url = f"{pg_url}{separator}application_name={APPLICATION}&options={options}"
        self.catalog = Catalog(self.catalog_url)
        self.sim: subprocess.Popen[bytes] | None = None
        self.base = ""
        self.workers: list[subprocess.Popen[bytes]] = []
        self.http = httpx.Client(timeout=30)
        self._holders: dict[str, int | None] = {}
        self.store_schemas: list[str] = []  # remembered as made: dropped even if the catalog cannot be read
        # the most connections seen at once while the workers ran: this demo's (its application_name) and
        # the server's (anyone's), sampled every CONNECTIONS_EVERY_S by a thread of ours
        self.peak_connections = (0, 0)
        self._sampling = threading.Event()
        self._sampler: threading.Thread | None = None

    def connection_budget(self) -> tuple[int, int]:
        """The server's ``max_connections`` and how many are in use now (by anyone)."""
        with self._admin.connect() as conn:
            limit = int(conn.execute(text("SHOW max_connections")).scalar() or 0)
            used = int(conn.execute(text("SELECT count(*) FROM pg_stat_activity")).scalar() or 0)
        return limit, used

    # -- the simulator ----------------------------------------------------------------------------------

    def start_simulator(self) -> str:
        """Start ``ordersync sim serve --clock real`` on the fleet's scenario; return its base URL."""
        path = self.workdir / "scenario.yaml"
        path.touch(mode=0o600)
        path.write_text(scenario_text(self.fleet), encoding="utf-8")
        self.sim, port = start_simulator_process(
            path, clock="real", log_path=self.workdir / "sim.log", env=os.environ
        )
        self.base = f"http://127.0.0.1:{port}"
        self.http = httpx.Client(base_url=self.base, timeout=30)
        return self.base

    def state(self, account: str) -> dict[str, Any]:
        """One account's books (``GET /sim/state?account=``)."""
        answer = self.http.get("/sim/state", params={"account": account})
        answer.raise_for_status()
        state: dict[str, Any] = answer.json()
        return state

    def set_price(self, symbol: str, price: str) -> None:
        self.http.post("/sim/price", json={"symbol": symbol, "price": price}).raise_for_status()

    # -- accounts and workers ---------------------------------------------------------------------------

    def register_accounts(self) -> dict[str, str]:
        """Write each account's keys to the secrets folder and add it to the catalog; return its store URL."""
        secrets = self.workdir / "secrets"
        urls: dict[str, str] = {}
        for account in self.fleet.accounts:
            folder = secrets / account.name
            folder.mkdir(parents=True, mode=0o700)
            for name, value in (("key_id", account.key_id), ("secret_key", account.secret_key)):
                (folder / name).touch(mode=0o600)
                (folder / name).write_text(value, encoding="utf-8")
            added = self.catalog.add(account.name, datetime.now(UTC))
            self.store_schemas.append(added.store_schema)
            self.catalog.set_enabled(account.name, False)  # until every worker is up: see enable_accounts
            urls[account.name] = account_store_url(self.catalog_url, added.store_schema)
        config = {
            "broker": {"base_url": self.base, "stream_url": self.base.replace("http", "ws") + "/stream"},
            "store": {"url": self.catalog_url},
            "engine": {"poll_interval_s": POLL_INTERVAL_S},
            "metrics": {"enabled": False},
            "fleet": {"secrets_dir": str(secrets)},
        }
        self.config = self.workdir / "worker.yaml"
        self.config.write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
        return urls

    def start_workers(self, count: int) -> None:
        """Start ``count`` ``ordersync run --worker`` processes, each logging to its own file."""
        for _ in range(count):
            log = self.workdir / f"worker-{len(self.workers) + 1}.log"
            command = [*ordersync_command(), "run", "--worker", "--config", str(self.config)]
            command += ["--log-format", "console", "--log-level", "warning"]
            with log.open("wb") as handle:  # the child keeps its own descriptor
                self.workers.append(subprocess.Popen(command, stdout=handle, stderr=handle))

    def live_workers(self) -> int:
        with contextlib.suppress(SQLAlchemyError):
            return len(self.catalog.live_workers())
        return 0

    def enable_accounts(self) -> None:
        """Enable every account at once, once every worker is live.

        Accounts enabled before the workers start are all claimed by whichever worker comes up first, then
        handed over as the others join: every handover starts an engine beside the one stopping, and 50
        accounts doing that together ran a shared PostgreSQL server (100 connections) out of connections.
        """
        for account in self.fleet.accounts:
            self.catalog.set_enabled(account.name, True)

    def holders(self) -> dict[str, int | None]:
        """Each account's worker pid (from the holder of its lease, ``host:pid:nonce``); None: nobody.

        A read the server refuses (a shared server out of connections for a moment) is the last one.
        """
        with contextlib.suppress(SQLAlchemyError):
            self._holders = self._read_holders()
        return dict(self._holders)

    def _read_holders(self) -> dict[str, int | None]:
        return {
            account: None if holder is None else int(holder.split(":")[1])
            for account, (holder, _) in self.catalog.states().items()
        }

    def kill(self, pid: int) -> None:
        """SIGKILL one of our workers: no goodbye, its heartbeat and its accounts' leases just expire."""
        for proc in self.workers:
            if proc.pid == pid:
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
                return
        raise ValueError(f"{pid} is not one of the demo's workers")

    def stop_workers(self) -> None:
        """SIGTERM every live worker: each stops its engines, releasing their leases, and leaves."""
        for proc in self.workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.workers:
            end_process(proc, wait_s=20)
        self._stop_sampling()

    def start_sampling(self) -> None:
        """Sample the connections (ours, everyone's) until the workers stop: ``peak_connections``."""
        query = text("SELECT count(*) FILTER (WHERE application_name = :app), count(*) FROM pg_stat_activity")

        def sample() -> None:
            while not self._sampling.wait(CONNECTIONS_EVERY_S):
                with contextlib.suppress(SQLAlchemyError), self._admin.connect() as conn:
                    ours, everyone = conn.execute(query, {"app": APPLICATION}).one()
                    self.peak_connections = (
                        max(self.peak_connections[0], int(ours)),
                        max(self.peak_connections[1], int(everyone)),
                    )

        self._sampler = threading.Thread(target=sample, name="connections", daemon=True)
        self._sampler.start()

    def _stop_sampling(self) -> None:
        self._sampling.set()
        if self._sampler is not None:
            self._sampler.join(timeout=5)

    def worker_logs(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.workdir.glob("worker-*.log")))

    # -- the end ----------------------------------------------------------------------------------------

    def close(self) -> str | None:
        """End our processes; drop our schemas and folder unless ``keep``; return what was kept, if any."""
        self._stop_sampling()
        for proc in self.workers:
            end_process(proc)
        if self.sim is not None:
            end_process(self.sim)
        self.http.close()
        schemas = list(self.store_schemas)
        self.catalog.close()
        if self.keep:
            self._admin.dispose()
            return (
                f"kept: catalog schema {self.schema}, {len(schemas)} account schemas; "
                f"`ordersync accounts list --config {self.workdir / 'worker.yaml'}`"
            )
        left = [*schemas, self.schema]
        for _attempt in range(5):  # a shared server may refuse a connection for a moment
            with contextlib.suppress(SQLAlchemyError), self._admin.connect() as conn:
                while left:
                    conn.execute(text(f'DROP SCHEMA IF EXISTS "{left[0]}" CASCADE'))
                    left.pop(0)
            if not left:
                break
            time.sleep(1.0)
        self._admin.dispose()
        shutil.rmtree(self.workdir, ignore_errors=True)
        return (
            f"could not drop {len(left)} schemas, e.g. {left[0]} (DROP SCHEMA ... CASCADE)" if left else None
        )
