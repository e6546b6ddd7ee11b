"""Reading the worker's store from outside while it runs (and after it died), and turning kills and fault
windows into the windows in which protection was impossible (invariant 9's excuses).

The driver's view of the evidence the engine leaves behind, apart from the processes and the run's logic.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select
from sqlalchemy.exc import DBAPIError

from ordersync.domain.kinds import JournalKind
from ordersync.domain.order import Order, OrderStatus
from ordersync.domain.protection import coverage
from ordersync.store import open_store
from ordersync.store import tables as t
from ordersync.store.isolation import isolated_schema
from tools.chaos.crash import CRASH_MARK
from tools.chaos.evidence import Window
from tools.chaos.results import KillReport

__all__ = [
    "StoreProbe",
    "aware",
    "classify_kill",
    "downtime_windows",
    "fault_windows",
    "fresh_store",
    "parse_time",
    "read_store",
]


@contextlib.contextmanager
def fresh_store(db_url: str | None, workdir: Path, seed: int) -> Iterator[str]:
    if db_url is None:
        yield f"sqlite:///{workdir / f'chaos-{seed}.db'}"
        return
    if not db_url.startswith("postgresql"):
        yield db_url
        return
    with isolated_schema(db_url, f"chaos_{seed}") as url:
        yield url


class StoreProbe:
    """Counts and times the driver reads from the live store (quiescence, downtime, refusals)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine = create_engine(url)

    def unsettled(self) -> int:
        """Orders still intents or unknown submits."""
        local = (OrderStatus.INTENT.value, OrderStatus.SUBMITTING.value)
        with contextlib.suppress(Exception), self._engine.connect() as conn:
            count = conn.execute(select(func.count()).where(t.orders.c.status.in_(local))).scalar_one()
            return int(count)
        return -1  # the schema is not there yet

    def reconciled_at(self) -> list[datetime]:
        """Every successful reconciliation's time (the engine's clock follows the simulator's), in order."""
        reconciled = t.journal.c.kind == JournalKind.RECONCILED
        query = select(t.journal.c.ts).where(reconciled).order_by(t.journal.c.seq)
        with self._engine.connect() as conn:
            return [aware(ts) for (ts,) in conn.execute(query)]

    def last_reconcile(self) -> int:
        """The journal sequence number of the latest reconciliation (0 before the first)."""
        query = select(func.max(t.journal.c.seq)).where(t.journal.c.kind == JournalKind.RECONCILED)
        with self._engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)

    def refusals(self) -> dict[str, int]:
        query = (
            select(t.journal.c.client_order_id, func.count())
            .where(t.journal.c.kind == JournalKind.SUBMIT_REFUSED)
            .group_by(t.journal.c.client_order_id)
        )
        with self._engine.connect() as conn:
            return {str(coid): int(n) for coid, n in conn.execute(query)}

    def close(self) -> None:
        self._engine.dispose()


def read_store(url: str) -> tuple[list[Order], list[Any]]:
    store = open_store(url, migrate=False)
    try:
        with store.transaction() as tx:
            return tx.all_orders(), tx.open_alerts()
    finally:
        store.close()


def classify_kill(report: KillReport, url: str, state: Mapping[str, Any], parent_ids: set[str]) -> None:
    try:
        orders, _ = read_store(url)
    except DBAPIError:  # killed before it had created its tables
        report.named = report.named or "store not created yet"
        return
    at_broker = {o["client_order_id"] for o in state["orders"]}
    children: dict[str, list[Order]] = {}
    for order in orders:
        if order.parent_id is not None:
            children.setdefault(order.parent_id, []).append(order)
        if order.status is OrderStatus.INTENT and order.is_child:
            report.intents += 1
        elif order.status is OrderStatus.SUBMITTING:
            if order.client_order_id in at_broker:
                report.submitting_sent += 1
            else:
                report.submitting_unsent += 1
    short: set[str] = set()
    for order in orders:
        if order.client_order_id in parent_ids and order.filled_qty > coverage(
            children.get(order.client_order_id, [])
        ):
            short.add(order.client_order_id)
        if order.client_order_id in parent_ids and order.status is OrderStatus.INTENT:
            report.parent_intents += 1
    report.unprotected = len(short)
    if report.cause != "random" and report.detail.startswith(CRASH_MARK):
        coid = report.detail.split()[-1]
        named = next((o for o in orders if o.client_order_id == coid), None)
        status = "absent" if named is None else named.status.value
        report.named = f"{status} at_broker={coid in at_broker} short={coid in short}"


def parse_time(value: object) -> datetime:
    return aware(datetime.fromisoformat(str(value).replace("Z", "+00:00")))


def aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def downtime_windows(
    kills: Sequence[KillReport], reconciled: Sequence[datetime], end: datetime
) -> list[Window]:
    """Each kill to the first reconciliation after it (a kill during a restart extends the same window)."""
    windows: list[Window] = []
    for kill in kills:
        assert kill.at is not None
        kill.ready_at = next((r for r in reconciled if r > kill.at), None)
        windows.append(Window(kill.at, kill.ready_at or end, f"engine down ({kill.cause})"))
    return windows


def fault_windows(data: Mapping[str, Any], origin: datetime) -> list[Window]:
    """The scenario's fault windows that make protection impossible: 429 storms or every request a 5xx
    on the order routes."""
    found = []
    for w in data.get("faults", {}).get("windows", []):
        routes = w.get("routes") or []
        blocking = w.get("http_429_storm") or float(w.get("http_5xx_p", 0)) >= 1
        if blocking and (not routes or any("orders" in r for r in routes)):
            start = origin + timedelta(seconds=float(w["from_s"]))
            found.append(
                Window(
                    start,
                    origin + timedelta(seconds=float(w["to_s"])),
                    "fault window",
                    frozenset(w.get("symbols", [])),
                )
            )
    return found
