"""The invariants of docs/architecture.md §2 (1-7 and 9), judged from the simulator's own books and the
worker's store.

The broker's books (``GET /sim/state``) are the truth: which orders exist, when each was submitted, every
execution with its venue time. The store is what ordersync believes after all the crashes. Children are tied
to their parent by client_order_id (``<parent>~<role><attempt>``) and OCO stop legs through their group, with
the demo's own helpers, so the chaos run and ``ordersync demo`` count coverage the same way.

Invariant 9 (bounded delay) is judged per fill: from the execution's venue time to the moment live exits
of ours covered it, at most two poll intervals plus the part of that stretch during which protection was
impossible: the engine was down (SIGKILL to the restarted engine's first successful reconciliation) or a
fault window blocked the broker's order routes (a 429 storm, all 5xx). Both the raw figure (p99 overall)
and the engine's own share (excluding those windows) are reported; neither hides the other.

Each check returns the violations it found as one-line strings naming the parent or order, so a failure
says where to look (``SELECT * FROM journal WHERE client_order_id LIKE '<parent>%'``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from ordersync.demo.books import TERMINAL, books_coverage, filled_by, is_group_root, ts
from ordersync.domain.kinds import AlertKind
from ordersync.domain.order import Order, OrderSide, OrderStatus
from ordersync.ports import Alert
from tools.chaos.delay_check import bounded_delay, figures
from tools.chaos.evidence import (
    DIFFERENCE_ALERTS,
    INVARIANTS,
    MAX_REFUSALS_PER_PARENT,
    Evidence,
    Verdict,
    Window,
)
from tools.chaos.grouping import Book, Books, group_cover_at, roots

__all__ = ["INVARIANTS", "MAX_REFUSALS_PER_PARENT", "Evidence", "Verdict", "Window", "check_all"]

_Books = Books  # the driver's name for it before the split


def check_all(evidence: Evidence) -> Verdict:
    """Check every invariant; return the violations and the run's figures."""
    books = Books(evidence.state, evidence.parent_ids)
    store: dict[str, Order] = {o.client_order_id: o for o in evidence.store_orders}
    verdict = Verdict()
    v = verdict.violations
    for pid in sorted(evidence.parent_ids):
        parent = books.parent.get(pid)
        groups = books.groups.get(pid, [])
        v[1] += _premature(pid, parent, groups)
        v[2] += _coverage_exact(pid, parent, groups)
        v[3] += _exactly_once(pid, parent, groups, store)
        v[7] += _orphans(pid, parent, groups, store)
    v[4] += _store_matches(books, store)
    v[5] += _positions(evidence.state, evidence.store_orders)
    v[5] += _alerts(evidence.open_alerts, books, store)
    v[6] += _hot_loops(evidence.refusals, evidence.parent_ids)
    v[9] += bounded_delay(books, evidence, verdict)
    verdict.figures = figures(books, evidence, verdict)
    return verdict


# -- invariants -------------------------------------------------------------------------------------------


def _premature(pid: str, parent: Book | None, groups: Sequence[Sequence[Book]]) -> list[str]:
    """(1) At each child's submission, what children cover must not exceed what the broker had filled."""
    found: list[str] = []
    for root in roots(groups):
        at = ts(root["submitted_at"])
        filled = Decimal(0) if parent is None else filled_by(parent, at)
        covered = sum((group_cover_at(g, at) for g in groups), Decimal(0))
        if covered > filled:
            found.append(
                f"{pid}: {root['client_order_id']} submitted at {root['submitted_at']} brought coverage to "
                f"{covered} while the broker had filled {filled}"
            )
    return found


def _coverage_exact(pid: str, parent: Book | None, groups: Sequence[Sequence[Book]]) -> list[str]:
    """(2) At quiescence coverage equals the parent's filled quantity."""
    filled = Decimal(0) if parent is None else Decimal(parent["filled_qty"])
    covered = books_coverage([m for g in groups for m in g])
    if covered != filled:
        state = "none" if parent is None else parent["status"]
        return [f"{pid}: covered {covered} != filled {filled} (parent {state}, {len(groups)} child groups)"]
    return []


def _exactly_once(
    pid: str, parent: Book | None, groups: Sequence[Sequence[Book]], store: Mapping[str, Order]
) -> list[str]:
    """(3) One broker order per parent, and every child at the broker is an intent the store holds."""
    found: list[str] = []
    local = store.get(pid)
    if parent is None and not (local is not None and local.status is OrderStatus.REJECTED):
        status = "absent" if local is None else local.status.value
        found.append(f"{pid}: never reached the broker (store: {status})")
    for root in roots(groups):
        if root["client_order_id"] not in store:
            found.append(
                f"{pid}: broker order {root['client_order_id']} ({root['id']}) is no intent of the store"
            )
    return found


def _orphans(
    pid: str, parent: Book | None, groups: Sequence[Sequence[Book]], store: Mapping[str, Order]
) -> list[str]:
    """(7) A parent dead with zero fill has no children and no live intents; no OCO sells twice."""
    found: list[str] = []
    dead = parent is not None and parent["status"] in TERMINAL and Decimal(parent["filled_qty"]) == 0
    if dead:
        if groups:
            found.append(f"{pid}: {parent['status'] if parent else ''} unfilled, yet {len(groups)} children")
        live = [o.client_order_id for o in store.values() if o.parent_id == pid and not o.is_terminal]
        if live:
            found.append(f"{pid}: dead unfilled parent with live children in the store: {live}")
    for group in groups:
        sold = sum((Decimal(m["filled_qty"]) for m in group), Decimal(0))
        if sold > max(Decimal(m["qty"]) for m in group):
            found.append(f"{pid}: group {group[0]['client_order_id']} sold {sold}, more than its quantity")
    return found


def _store_matches(books: Books, store: Mapping[str, Order]) -> list[str]:
    """(4) Every order of ours at the broker is in the store with the same status and filled quantity."""
    found: list[str] = []
    ours = [o for o in books.orders if o["client_order_id"] in books.parent or o["id"] in books.owner]
    at_broker = {o["client_order_id"] for o in ours}
    for o in ours:
        local = store.get(o["client_order_id"])
        filled = Decimal(o["filled_qty"])
        if local is None:
            is_leg = not is_group_root(o)
            if is_leg and filled == 0 and (o["status"] == "held" or o["status"] in TERMINAL):
                continue  # an OCO stop leg that never traded: nothing to learn from it
            found.append(
                f"{o['client_order_id']}: {o['status']} filled {filled} at the broker, absent locally"
            )
        elif local.status.value != o["status"] or local.filled_qty != filled:
            found.append(
                f"{o['client_order_id']}: broker {o['status']} filled {filled}, "
                f"store {local.status.value} filled {local.filled_qty}"
            )
    for coid, local in store.items():
        if local.status.is_local:
            found.append(f"{coid}: still {local.status.value} in the store at quiescence")
        elif local.broker_order_id is not None and coid not in at_broker:
            found.append(f"{coid}: {local.status.value} in the store, unknown to the broker")
    return found


def _positions(state: Mapping[str, Any], orders: Iterable[Order]) -> list[str]:
    """(5) The positions our fills imply are the broker's positions."""
    expected: dict[str, Decimal] = defaultdict(Decimal)
    for order in orders:
        sign = 1 if order.side is OrderSide.BUY else -1
        expected[order.symbol] += sign * order.filled_qty
    actual = {p["symbol"]: Decimal(p["qty"]) for p in state["positions"]}
    return [
        f"{symbol}: the store's fills imply {expected.get(symbol, Decimal(0))}, the broker holds "
        f"{actual.get(symbol, Decimal(0))}"
        for symbol in sorted(set(expected) | set(actual))
        if expected.get(symbol, Decimal(0)) != actual.get(symbol, Decimal(0))
    ]


def _alerts(alerts: Iterable[Alert], books: Books, store: Mapping[str, Order]) -> list[str]:
    """(5) No difference alert is open at quiescence: one whose condition still holds is a persistent
    difference; one whose condition has cleared is stale (raised, then never resolved: a false alarm that
    an operator would have to clear by hand)."""
    found = []
    for alert in alerts:
        if alert.kind not in DIFFERENCE_ALERTS:
            continue
        holds = _alert_holds(alert, books, store)
        what = "open alert, still true" if holds else "stale alert (condition cleared, never resolved)"
        found.append(f"{what}: {alert.kind} {alert.key} raised {alert.raised_at:%H:%M:%S}: {alert.message}")
    return found


def _alert_holds(alert: Alert, books: Books, store: Mapping[str, Order]) -> bool:
    if alert.kind == AlertKind.UNPROTECTED_POSITION:
        parent = books.parent.get(alert.key)
        filled = Decimal(0) if parent is None else Decimal(parent["filled_qty"])
        return books_coverage([m for g in books.groups.get(alert.key, []) for m in g]) < filled
    if alert.kind == AlertKind.POSITION_DRIFT:
        return any(v.startswith(f"{alert.key}:") for v in _positions(books.state, store.values()))
    if alert.kind == AlertKind.STUCK_UNKNOWN:
        order = store.get(alert.key)
        return order is not None and order.status is OrderStatus.SUBMITTING
    if alert.kind == AlertKind.MISSING_AT_BROKER:
        order = store.get(alert.key)
        at_broker = any(o["client_order_id"] == alert.key for o in books.orders)
        return order is not None and order.is_open and not at_broker
    return True  # foreign orders: no such order exists in a chaos run, so any is real


def _hot_loops(refusals: Mapping[str, int], parent_ids: frozenset[str]) -> list[str]:
    """(6) Refusals per parent (its own and its children's) stay under a small cap."""
    per_parent: Counter[str] = Counter()
    for coid, n in refusals.items():
        head = coid.split("~", 1)[0]
        if head in parent_ids:
            per_parent[head] += n
    return [
        f"{pid}: {n} refusals (cap {MAX_REFUSALS_PER_PARENT})"
        for pid, n in sorted(per_parent.items())
        if n > MAX_REFUSALS_PER_PARENT
    ]
