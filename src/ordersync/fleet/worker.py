"""A fleet worker: one process running the engines of its share of the accounts, one engine per account.

Every ``heartbeat_s`` the worker renews its heartbeat, reads the enabled accounts and the live workers, and
computes the same assignment every other worker computes (``fleet/assignment.py``). It starts an engine for
each account newly assigned to it and stops the ones assigned elsewhere (the engine releases the account's
lease as it stops, so the new owner takes over at its next lease poll). Safety never rests on the views
agreeing: each account's engine acts only while it holds that account's lease, with the fencing token of
the account's own store (``store/lease.py``). Two workers that briefly both think an account is theirs
both wait for its lease; one gets it.

A worker that dies stops heartbeating; once its row has expired the others re-assign its accounts, and
their engines take the expired leases. Each engine has its own broker client (its own 200 requests/min
budget) and its own ``trade_updates`` connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from ordersync.config import Settings, StoreSettings, account_credentials
from ordersync.engine import Engine
from ordersync.fleet.assignment import assign
from ordersync.fleet.catalog import Catalog
from ordersync.runner import run_engine

log = structlog.get_logger("ordersync.fleet")

__all__ = ["AccountRun", "Worker"]

# builds one account's engine from its settings and id (keys looked up by the builder); returns the engine
# and a function that releases what it opened (the store's connections)
EngineFactory = Callable[[Settings, str], tuple[Engine, Callable[[], None]]]


@dataclass
class AccountRun:
    """One account's engine inside this worker."""

    account_id: str
    engine: Engine
    stop: asyncio.Event
    task: asyncio.Task[None]
    active: bool = False


@dataclass
class Worker:
    """Claims its share of the catalog's accounts and runs an engine for each; see the module docstring."""

    settings: Settings
    catalog: Catalog
    build: EngineFactory
    worker_id: str = field(
        default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    )
    runs: dict[str, AccountRun] = field(default_factory=dict)

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop``; then stop every engine (releasing their leases) and leave the catalog."""
        fleet = self.settings.fleet
        try:
            while not stop.is_set():
                self.step()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=fleet.heartbeat_s)
        finally:
            await self._stop_all()
            try:
                self.catalog.leave(self.worker_id)
            except Exception as e:  # the catalog is down: the heartbeat simply expires
                log.warning("fleet.leave_failed", worker=self.worker_id, error=str(e)[:200])

    def step(self) -> set[str]:
        """Heartbeat, recompute the assignment, start and stop engines to match it; return the share."""
        self._reap()
        try:
            self.catalog.heartbeat(self.worker_id, self.settings.fleet.worker_ttl_s)
            accounts = [a.account_id for a in self.catalog.accounts(enabled_only=True)]
            workers = self.catalog.live_workers()
        except Exception as e:  # the catalog is unreachable: keep what runs (each engine has its own lease)
            log.warning("fleet.catalog_unreachable", worker=self.worker_id, error=str(e)[:200])
            return set(self.runs)
        mine = {a for a, w in assign(accounts, workers).items() if w == self.worker_id}
        for account_id in sorted(set(self.runs) - mine):
            log.info("fleet.account_released", worker=self.worker_id, account=account_id)
            self.runs[account_id].stop.set()
        for account_id in sorted(mine - set(self.runs)):
            self._start(account_id)
        return mine

    def _start(self, account_id: str) -> None:
        try:
            engine, close = self.build(self.settings, account_id)
        except Exception as e:  # no keys, a store that does not open: alert by log, retry next heartbeat
            log.error("fleet.account_failed", worker=self.worker_id, account=account_id, error=str(e)[:200])
            return
        stop = asyncio.Event()

        def on_active() -> None:
            self.runs[account_id].active = True
            log.info("fleet.account_active", worker=self.worker_id, account=account_id)

        async def go() -> None:
            try:
                await run_engine(engine, stop, on_active=on_active)
            finally:
                close()

        # every log line of this account's engine (and of the tasks it spawns) carries ``account``
        context = contextvars.copy_context()
        context.run(structlog.contextvars.bind_contextvars, account=account_id)
        task = asyncio.get_running_loop().create_task(go(), name=f"account:{account_id}", context=context)
        self.runs[account_id] = AccountRun(account_id, engine, stop, task)
        log.info("fleet.account_claimed", worker=self.worker_id, account=account_id)

    def _reap(self) -> None:
        # an engine that ended (stopped, lease lost, crashed) leaves the table; if the account is still
        # ours the next step starts a fresh engine, which stands by for the lease like any standby
        for account_id, run in list(self.runs.items()):
            if run.task.done():
                del self.runs[account_id]
                error = None if run.task.cancelled() else run.task.exception()
                if error is not None:
                    log.error("fleet.account_crashed", account=account_id, error=repr(error)[:200])
                elif run.engine.lease_lost:
                    log.warning("fleet.account_lease_lost", account=account_id)

    async def _stop_all(self) -> None:
        for run in self.runs.values():
            run.stop.set()
        await asyncio.gather(*(run.task for run in self.runs.values()), return_exceptions=True)
        self.runs.clear()

    def active_accounts(self) -> set[str]:
        """The accounts whose engine holds its lease and has started (for status and tests)."""
        return {a for a, run in self.runs.items() if run.active and not run.task.done()}


def account_settings(settings: Settings, catalog: Catalog, account_id: str) -> Settings:
    """The settings of one account's engine: the fleet's, with the account's own store schema."""
    return settings.model_copy(update={"store": StoreSettings(url=catalog.account_url(account_id))})


def alpaca_factory(catalog: Catalog) -> EngineFactory:
    """Build real engines: the account's keys, its store schema, Alpaca (or any compatible URL).

    Each account's store keeps ``fleet.store_pool_size`` connections (the lease renews on the same pool),
    so a worker holds about that many per account it runs, not SQLAlchemy's default 5 (docs/operations.md
    §8, "Capacity"); its lease has the fleet's TTL."""
    from ordersync.bootstrap import wire
    from ordersync.store import open_store

    def build(settings: Settings, account_id: str) -> tuple[Engine, Callable[[], None]]:
        fleet = settings.fleet
        credentials = account_credentials(account_id, Path(fleet.secrets_dir) if fleet.secrets_dir else None)
        mine = account_settings(settings, catalog, account_id)
        store = open_store(
            mine.store.url,
            keep_orders=True,
            pool_size=fleet.store_pool_size,
            lease_ttl_s=fleet.lease_ttl_s,
            lease_renew_s=fleet.lease_renew_s,
        )
        try:
            engine = wire(mine, credentials, store=store).engine
        except BaseException:
            store.close()
            raise
        return engine, store.close

    return build
