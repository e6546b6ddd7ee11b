"""Workers share the accounts of a catalog on PostgreSQL; a worker that leaves hands its accounts over.

Real pieces end to end, in one process: the catalog and every account's store on PostgreSQL (one schema per
account), the simulator serving four accounts with their own keys and books, engines built by the fleet's own
factory (alpaca-py REST, our stream client) from keys in a secrets folder. The simulator's books judge:
every account's fill is protected once, by whichever worker holds the account.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from ordersync.config import FleetSettings, Settings, load_settings
from ordersync.demo.books import books_coverage
from ordersync.engine import record_parent
from ordersync.fleet.catalog import Catalog
from ordersync.fleet.worker import Worker, alpaca_factory
from ordersync.sim.clock import RealClock
from ordersync.sim.scenarios import parse_scenario
from ordersync.sim.server import SimServer
from ordersync.store import open_store
from ordersync.testing import resting_parent, wait_until_async

pytestmark = [pytest.mark.postgres]
ACCOUNTS = ["acct-001", "acct-002", "acct-003", "acct-004"]


@pytest.fixture
def simulator() -> Iterator[SimServer]:
    scenario = parse_scenario(
        {
            "name": "fleet",
            "symbols": {"OKE": {"price": "72.10"}},
            "latency": {"ack_s": 0.02, "cancel_s": 0.05},
            "accounts": {"count": len(ACCOUNTS), "key_prefix": "acct"},
        }
    )
    with SimServer(scenario, RealClock()) as sim:
        yield sim


def _settings(tmp_path: Path, sim: SimServer, catalog: Catalog) -> Settings:
    secrets = tmp_path / "secrets"
    for account in ACCOUNTS:  # the simulator's generated keys: id = name, secret = name + "-secret"
        (secrets / account).mkdir(parents=True)
        (secrets / account / "key_id").write_text(account)
        (secrets / account / "secret_key").write_text(f"{account}-secret\n")
    base = load_settings(None)
    return base.model_copy(
        update={
            "broker": base.broker.model_copy(update={"base_url": sim.base_url, "stream_url": sim.stream_url}),
            "store": base.store.model_copy(update={"url": catalog.url}),
            "engine": base.engine.model_copy(
                update={"poll_interval_s": 0.5, "tick_s": 0.2, "reconcile_interval_s": 2.0}
            ),
            "fleet": FleetSettings(secrets_dir=str(secrets), heartbeat_s=0.3, worker_ttl_s=1.5),
        }
    )


def _submit(catalog: Catalog, account_id: str, parent: str) -> None:
    store, now = open_store(catalog.account_url(account_id)), datetime.now(UTC)
    try:
        record_parent(store, *resting_parent(parent, now), now)
    finally:
        store.close()


def _covered(sim: SimServer, account: str, parent: str) -> Decimal:
    orders = sim.snapshot(account=account)["orders"]
    by_id = {o["id"]: o for o in orders}
    roots = [o for o in orders if o["client_order_id"].startswith(parent + "~")]
    return books_coverage([m for root in roots for m in (root, *(by_id[i] for i in root["sim"]["leg_ids"]))])


async def test_two_workers_split_the_accounts_and_one_takes_all_when_the_other_leaves(
    tmp_path: Path, simulator: SimServer, catalog: Catalog
) -> None:
    for account in ACCOUNTS:
        catalog.add(account, datetime.now(UTC))
    settings = _settings(tmp_path, simulator, catalog)
    first = Worker(settings, catalog, alpaca_factory(catalog), worker_id="w-first")
    second = Worker(settings, catalog, alpaca_factory(catalog), worker_id="w-second")
    stop_first, stop_second = asyncio.Event(), asyncio.Event()
    tasks = [asyncio.create_task(first.run(stop_first)), asyncio.create_task(second.run(stop_second))]
    try:
        # the first to heartbeat may run all four for a moment; then they settle two and two, never shared
        await wait_until_async(
            lambda: (
                len(first.active_accounts()) == len(second.active_accounts()) == 2
                and not first.active_accounts() & second.active_accounts()
            ),
            20,
            "an even split, every account active on exactly one worker",
        )

        for account in ACCOUNTS:
            _submit(catalog, account, "p1")
        await wait_until_async(
            lambda: all(
                any(o["client_order_id"] == "p1" for o in simulator.snapshot(account=a)["orders"])
                for a in ACCOUNTS
            ),
            20,
            "every account's parent at the broker",
        )
        for account in ACCOUNTS:
            simulator.fill(client_order_id="p1", qty=Decimal("4"), account=account)
        await wait_until_async(
            lambda: all(_covered(simulator, a, "p1") == 4 for a in ACCOUNTS), 20, "protection everywhere"
        )

        moved = set(first.active_accounts())
        stop_first.set()  # a clean stop: it leaves the catalog and releases its accounts' leases
        await tasks[0]
        await wait_until_async(
            lambda: second.active_accounts() == set(ACCOUNTS), 20, "the survivor to run every account"
        )
        for account in sorted(moved):
            simulator.fill(client_order_id="p1", qty=Decimal("6"), account=account)
        await wait_until_async(
            lambda: all(_covered(simulator, a, "p1") == 10 for a in moved),
            20,
            "the moved accounts' new fills",
        )
        for account in ACCOUNTS:  # exactly once: no duplicate children, nothing refused
            state = simulator.snapshot(account=account)
            assert not state["counters"]["rejections"]["by_code"], (account, state["counters"]["rejections"])
            assert _covered(simulator, account, "p1") == (10 if account in moved else 4)

        quiet = sorted(set(ACCOUNTS) - moved)[0]  # 4 of its 10 shares filled so far
        catalog.set_enabled(quiet, False)  # an operator stops protecting one account
        await wait_until_async(
            lambda: second.active_accounts() == set(ACCOUNTS) - {quiet}, 20, "its engine to stop"
        )
        simulator.fill(client_order_id="p1", qty=Decimal("6"), account=quiet)
        await asyncio.sleep(2.0)  # four poll intervals of the others: nobody acts on a disabled account
        assert quiet not in second.runs
        assert _covered(simulator, quiet, "p1") == 4
    finally:
        stop_first.set()
        stop_second.set()
        await asyncio.gather(*tasks, return_exceptions=True)
