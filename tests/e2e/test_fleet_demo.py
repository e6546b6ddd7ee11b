"""`ordersync demo --accounts 6 --workers 3`: the many-account demo as a person runs it, with real processes.

One simulator process serves six accounts, three `ordersync run --worker` processes share them on
PostgreSQL, one of them is SIGKILLed once fills began on its accounts. The demo's own verdict is checked
against its JSON: exit 0, a worker killed and its accounts taken over, every account's figures 0, and the
totals the sums of the accounts' figures.
"""

from __future__ import annotations

import json
import subprocess
from decimal import Decimal

import pytest
from processes import ORDERSYNC
from sqlalchemy import create_engine, text

from ordersync.demo.schema import DemoFleet, DemoOutput

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
ZERO = ("insufficient_qty_rejections", "duplicate_submissions", "discrepancies")
ZERO_QTY = ("unprotected_qty", "overprotected_qty")


def _schemas(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            # the demo's catalog schema and its accounts' stores (named after demo-001...)
            query = "SELECT nspname FROM pg_namespace WHERE nspname ~ '^ordersync_(demo|acct_demo)_'"
            rows = conn.execute(text(query))
            return {str(r[0]) for r in rows}
    finally:
        engine.dispose()


def test_six_accounts_on_three_workers_survive_a_killed_worker(postgres_url: str) -> None:
    server = postgres_url.split("?")[0]  # the demo makes its own schemas on the test server
    before = _schemas(server)
    done = subprocess.run(
        [*ORDERSYNC, "demo", "--accounts", "6", "--workers", "3", "--json", "--db", server],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    fleet = DemoOutput.model_validate_json(done.stdout).root
    assert isinstance(fleet, DemoFleet)
    assert sorted(fleet.accounts) == [f"demo-{i:03d}" for i in range(1, 7)]
    killed = fleet.killed_worker
    assert killed is not None
    assert killed.accounts
    assert killed.fills_before > 0
    assert killed.takeover_s is not None, "the surviving workers took the killed worker's accounts over"
    assert "SIGKILLed worker" in done.stderr, "progress lines while it runs"
    for name, account in fleet.accounts.items():
        assert account.parents == 13, name
        assert all(getattr(account, f) == 0 for f in ZERO), (name, account)
        assert all(Decimal(getattr(account, f)) == 0 for f in ZERO_QTY), (name, account)
        assert account.errors == [], name
    total = fleet.total
    assert total is not None
    assert fleet.failing_accounts == []
    assert fleet.errors == []
    summed = json.loads(done.stdout)["accounts"].values()
    for figure in ("parents", "children_submitted", "broker_rejections", "broker_requests", *ZERO):
        assert getattr(total, figure) == sum(a[figure] for a in summed), figure
    assert Decimal(total.unprotected_share_s) == sum(Decimal(a["unprotected_share_s"]) for a in summed)
    assert total.fill_to_protect_ms.n == sum(a["fill_to_protect_ms"]["n"] for a in summed) > 0
    assert _schemas(server) == before, "the catalog and every account schema dropped at the end"
