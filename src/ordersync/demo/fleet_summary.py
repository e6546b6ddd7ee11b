"""The fleet demo's verdict: each account judged as the single-account demo judges its one, and the totals.

Per account the figures are ``summarize_books``'s, read from that account's books at the simulator (the
broker is the judge), plus what the account's own store says once the workers stopped: the discrepancies
and corrections of a dry-run reconcile (what ``ordersync reconcile --dry-run`` prints) and the alerts the
journal recorded. The totals add the counts and quantities up; their fill->protect percentiles are over
every account's fills together, not an average of percentiles.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from ordersync.demo.books import owner_of
from ordersync.demo.delays import fill_protections, percentiles
from ordersync.demo.summary import Summary, summarize_books

__all__ = ["FleetSummary", "KilledWorker", "judge_books", "reconcile_account", "totals"]

_OPENING = threading.Lock()
COUNTS = (
    "parents",
    "children_submitted",
    "broker_rejections",
    "insufficient_qty_rejections",
    "wash_trade_rejections",
    "duplicate_submissions",
    "discrepancies",
    "broker_requests",
)
QUANTITIES = (
    "unprotected_qty",
    "overprotected_qty",
    "unprotected_share_s",
    "others_qty",
    "exits_on_others_qty",
    "operator_unprotected_qty",
)


@dataclass
class KilledWorker:
    """The worker the demo SIGKILLed, and what it ran then."""

    pid: int
    accounts: list[str]
    at_s: float  # real seconds after the first submission
    fills_before: int  # fills its accounts had received when it died
    fills_after: int = 0  # fills its accounts received after it died (the survivors protected them)
    takeover_s: float | None = None  # until every one of its accounts was active on another worker


@dataclass
class FleetSummary:
    """``ordersync demo --accounts N --workers W``: every account's summary and the totals."""

    scenario: str
    workers: int
    database: str  # the server and database (never a password), where the demo's schemas lived
    accounts: dict[str, Summary] = field(default_factory=dict)
    total: Summary | None = None
    killed: KilledWorker | None = None
    compression: float = 1.0  # scenario seconds per real second
    real_duration_s: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def failing(self) -> list[str]:
        """The accounts whose figures show the incident's symptoms."""
        return [name for name, summary in self.accounts.items() if summary.problems]

    @property
    def problems(self) -> bool:
        """True unless every account's figures are 0, a worker was killed, and nothing failed."""
        return bool(self.failing or self.errors or self.killed is None or not self.accounts)

    def as_dict(self) -> dict[str, Any]:
        """The JSON the schema's ``DemoFleet`` describes."""
        return {
            "mode": "fleet",
            "scenario": self.scenario,
            "workers": self.workers,
            "database": self.database,
            "compression": round(self.compression, 3),
            "killed_worker": None if self.killed is None else asdict(self.killed),
            "accounts": {name: s.as_dict() for name, s in self.accounts.items()},
            "total": None if self.total is None else self.total.as_dict(),
            "failing_accounts": self.failing,
            "real_duration_s": self.real_duration_s,
            "errors": list(self.errors),
        }


def judge_books(
    name: str, scenario: str, state: dict[str, Any], parent_ids: set[str], end: datetime
) -> Summary:
    """One account's summary from its books at the simulator (``GET /sim/state?account=``)."""
    summary = Summary(mode="safe", scenario=f"{scenario} ({name})")
    return summarize_books(summary, state, parent_ids, end)


def fill_delays_ms(state: dict[str, Any], parent_ids: set[str], end: datetime) -> list[float]:
    """Every fill's wait for protection in one account (ms; one never covered counts until ``end``)."""
    orders: list[dict[str, Any]] = state["orders"]
    by_id = {o["id"]: o for o in orders}
    parents = [o for o in orders if o["client_order_id"] in parent_ids]
    children: dict[str, list[dict[str, Any]]] = {}
    for order in orders:
        if order["client_order_id"] not in parent_ids:
            owner = owner_of(order, by_id, parent_ids)
            if owner is not None:
                children.setdefault(owner, []).append(order)
    return [
        ((covered or end) - at).total_seconds() * 1000
        for _, at, covered in fill_protections(parents, children)
    ]


def reconcile_account(summary: Summary, settings: Any, credentials: Any) -> None:
    """Add the account store's view: a dry-run reconcile's discrepancies and corrections, the alerts raised.

    Runs after the workers stopped, on the account's own store and keys, as ``ordersync reconcile
    --dry-run`` would; a reconcile that cannot read the broker is an error of the account, not a pass.
    """
    from ordersync.bootstrap import build_engine
    from ordersync.demo.safe_run import alerts_raised

    try:
        with _OPENING:  # opening a store runs Alembic, whose command context is process-global
            engine, store, _ = build_engine(settings, credentials, with_lease=False)
    except Exception as e:  # the account's row says so; the other accounts are still judged
        summary.errors.append(f"final reconcile: cannot open the store: {type(e).__name__}: {str(e)[:160]}")
        return
    try:
        report = asyncio.run(engine.watch.reconcile(dry_run=True))
        summary.discrepancies = len(report.discrepancies) + report.corrections
        summary.alerts = alerts_raised(store)
    except Exception as e:  # one account's failed read is reported in its row, not a crash
        summary.errors.append(f"final reconcile failed: {type(e).__name__}: {str(e)[:160]}")
    finally:
        store.close()


def totals(scenario: str, summaries: list[Summary], delays_ms: list[float]) -> Summary:
    """The fleet's totals: counts and quantities added up, fill->protect over every account's fills."""
    total = Summary(mode="safe", scenario=f"{scenario} (all accounts)")
    for key in COUNTS:
        setattr(total, key, sum(int(getattr(s, key)) for s in summaries))
    for key in QUANTITIES:
        value = sum((Decimal(getattr(s, key)) for s in summaries), Decimal(0))
        setattr(total, key, f"{value.normalize():f}" if value else "0")
    for summary in summaries:
        for kind, n in summary.alerts.items():
            total.alerts[kind] = total.alerts.get(kind, 0) + n
        for kind, n in summary.faults.items():
            total.faults[kind] = total.faults.get(kind, 0) + n
        total.errors.extend(f"{summary.scenario}: {e}" for e in summary.errors)
    total.fill_to_protect_ms = percentiles([round(d, 1) for d in delays_ms])
    return total
