"""Crash injection for the chaos worker: it SIGKILLs itself at a named moment, to prove recovery from each.

A concept apart from running the worker, so the moments and how they are caught read in one place.
``--crash-at POINT`` makes the worker SIGKILL itself at a named moment, for the crash-recovery tests
(docs/architecture.md invariant 4; the engine is not changed, the broker and store it is given are wrapped):

* ``parent_committed``: a parent and its plan are committed, its POST not sent yet;
* ``intent_committed``: a child intent is committed by the release gate, its POST not sent yet;
* ``before_post``: the order is journaled ``submitting``, the POST not sent;
* ``after_post``: the broker accepted the POST, its answer not applied;
* ``fill_committed``: a parent's fill is committed, the release gate has not acted on it yet.

``--crash-role`` (``parent``/``child``/``any``) filters the order concerned, ``--crash-nth`` picks the
n-th matching moment. Before dying the worker writes ``chaos-crash <point> <client_order_id>`` to stderr.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

from ordersync.domain.events import BrokerOrderView
from ordersync.domain.kinds import JournalKind
from ordersync.domain.order import Order
from ordersync.ports import Broker, JournalEntry, Store, Transaction

__all__ = ["CRASH_MARK", "CRASH_POINTS", "CrashPlan", "CrashingBroker", "CrashingStore", "Trigger"]

CRASH_POINTS = ("parent_committed", "intent_committed", "before_post", "after_post", "fill_committed")
CRASH_MARK = "chaos-crash"


@dataclass(frozen=True, slots=True)
class CrashPlan:
    """Where the worker kills itself: the ``nth`` moment at ``point`` concerning an order of ``role``."""

    point: str
    role: str = "any"
    nth: int = 1

    def __post_init__(self) -> None:
        if self.point not in CRASH_POINTS:
            raise ValueError(
                f"unknown crash point {self.point!r} (expected one of {', '.join(CRASH_POINTS)})"
            )
        if self.role not in ("any", "parent", "child") or self.nth < 1:
            raise ValueError(
                f"crash role must be any/parent/child and nth >= 1, were {self.role}, {self.nth}"
            )


class Trigger:
    """Counts the moments matching a CrashPlan and SIGKILLs this process at the chosen one."""

    def __init__(self, plan: CrashPlan | None, parent_ids: set[str]) -> None:
        self.plan = plan
        self._parent_ids = parent_ids
        self._seen = 0

    def at(self, point: str, coid: str) -> None:
        plan = self.plan
        if plan is None or plan.point != point:
            return
        is_parent = coid in self._parent_ids
        if (plan.role == "parent" and not is_parent) or (plan.role == "child" and is_parent):
            return
        self._seen += 1
        if self._seen == plan.nth:
            sys.stderr.write(f"{CRASH_MARK} {point} {coid}\n")
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGKILL)


class _SpyTransaction:
    """A Transaction that notes what it journals, so the store can crash right after the commit."""

    def __init__(self, tx: Transaction, parent_ids: set[str]) -> None:
        self._tx = tx
        self._parent_ids = parent_ids
        self.moments: list[tuple[str, str]] = []

    def __getattr__(self, name: str) -> Any:  # everything but the journal goes straight through
        return getattr(self._tx, name)

    def journal(self, entry: JournalEntry) -> None:
        coid = entry.client_order_id or ""
        if entry.kind == JournalKind.PARENT_CREATED:
            self.moments.append(("parent_committed", coid))
        elif entry.kind == JournalKind.CHILD_RELEASED:
            self.moments.append(("intent_committed", coid))
        elif (
            entry.kind == JournalKind.OBSERVED
            and coid in self._parent_ids
            and entry.payload.get("outcome") == "applied"
            and "execution_id" in entry.payload
        ):
            self.moments.append(("fill_committed", coid))
        self._tx.journal(entry)


class CrashingStore:
    """The Store port around a real store: after a commit that wrote a chosen moment, SIGKILL."""

    def __init__(self, store: Store, trigger: Trigger, parent_ids: set[str]) -> None:
        self._store = store
        self._trigger = trigger
        self._parent_ids = parent_ids

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def transaction(self) -> AbstractContextManager[Transaction]:
        return self._transaction()

    @contextmanager
    def _transaction(self) -> Iterator[Transaction]:
        with self._store.transaction() as tx:
            spy = _SpyTransaction(tx, self._parent_ids)
            yield spy
        for point, coid in spy.moments:  # committed: the moment is durable, what follows it is not
            self._trigger.at(point, coid)


class CrashingBroker:
    """The Broker port around AlpacaBroker: SIGKILL just before a POST or just after its answer."""

    def __init__(self, broker: Broker, trigger: Trigger) -> None:
        self._broker = broker
        self._trigger = trigger

    def __getattr__(self, name: str) -> Any:
        return getattr(self._broker, name)

    async def submit(self, order: Order) -> BrokerOrderView:
        self._trigger.at("before_post", order.client_order_id)
        view = await self._broker.submit(order)
        self._trigger.at("after_post", order.client_order_id)
        return view
