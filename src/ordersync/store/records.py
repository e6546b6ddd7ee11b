"""The small tables of a transaction: protection plans, alerts, cursors (one statement per call).

A base of ``SqlAlchemyTransaction``, apart from the orders, fills and journal, whose batching is what the
transaction module is about.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from ordersync.domain.ids import ClientOrderId
from ordersync.ports import Alert, PlanState
from ordersync.store import tables as t
from ordersync.store.mapping import plan_to_row, row_to_alert, row_to_plan
from ordersync.store.reads import Decoded, read_active_plans


class Records:
    """Plans, alerts and cursors over the transaction's connection."""

    _conn: Connection
    _decoded: Decoded | None

    # -- plans ---------------------------------------------------------------------------------------

    def add_plan(self, state: PlanState) -> None:
        self._wrote("plan", state.parent_id)
        self._conn.execute(insert(t.plans).values(plan_to_row(state)))

    def save_plan(self, state: PlanState) -> None:
        self._wrote("plan", state.parent_id)
        row = plan_to_row(state)
        self._conn.execute(update(t.plans).where(t.plans.c.parent_id == state.parent_id).values(row))

    def get_plan(self, parent_id: ClientOrderId) -> PlanState | None:
        row = self._conn.execute(select(t.plans).where(t.plans.c.parent_id == parent_id)).mappings().first()
        return None if row is None else row_to_plan(row)

    def active_plans(self) -> list[PlanState]:
        if self._decoded is not None:
            return read_active_plans(self._conn, self._decoded)
        query = select(t.plans).where(t.plans.c.done.is_(False)).order_by(t.plans.c.parent_id)
        return [row_to_plan(r) for r in self._conn.execute(query).mappings()]

    def _wrote(self, kind: str, key: str) -> None:
        # before the write: a many-row read patches this row in afterwards (``reads.Decoded``)
        if self._decoded is not None:
            self._decoded.wrote(kind, key)

    # -- alerts, cursors -----------------------------------------------------------------------------

    def raise_alert(self, alert: Alert) -> bool:
        """Open an alert unless the same (kind, key) is already open; return True if it was new."""
        if self._open_alert_id(alert.kind, alert.key) is not None:
            return False
        self._conn.execute(
            insert(t.alerts).values(
                kind=alert.kind, key=alert.key, message=alert.message, raised_at=alert.raised_at
            )
        )
        return True

    def resolve_alert(self, kind: str, key: str, at: datetime) -> bool:
        alert_id = self._open_alert_id(kind, key)
        if alert_id is None:
            return False
        self._conn.execute(update(t.alerts).where(t.alerts.c.id == alert_id).values(resolved_at=at))
        return True

    def open_alerts(self) -> list[Alert]:
        query = select(t.alerts).where(t.alerts.c.resolved_at.is_(None)).order_by(t.alerts.c.id)
        return [row_to_alert(r) for r in self._conn.execute(query).mappings()]

    def _open_alert_id(self, kind: str, key: str) -> int | None:
        query = select(t.alerts.c.id).where(
            t.alerts.c.kind == kind, t.alerts.c.key == key, t.alerts.c.resolved_at.is_(None)
        )
        found = self._conn.execute(query).scalar()
        return None if found is None else int(found)

    def get_cursor(self, name: str) -> str | None:
        value = self._conn.execute(select(t.cursors.c.value).where(t.cursors.c.name == name)).scalar()
        return None if value is None else str(value)

    def set_cursor(self, name: str, value: str) -> None:
        updated = self._conn.execute(update(t.cursors).where(t.cursors.c.name == name).values(value=value))
        if updated.rowcount == 0:
            self._conn.execute(insert(t.cursors).values(name=name, value=value))
