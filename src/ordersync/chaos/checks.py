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
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from ordersync.demo.summary import (
    TERMINAL,
    books_coverage,
    fill_protections,
    is_group_root,
    owner_of,
    percentiles,
)
from ordersync.domain.order import Order, OrderSide, OrderStatus
from ordersync.ports import Alert

__all__ = ["INVARIANTS", "MAX_REFUSALS_PER_PARENT", "Evidence", "Verdict", "Window", "check_all"]

Book = Mapping[str, Any]  # one order of GET /sim/state

INVARIANTS: Mapping[int, str] = {
    1: "no premature children",
    2: "exact coverage",
    3: "exactly once",
    4: "store matches books",
    5: "broker is the truth",
    6: "no hot loops",
    7: "orphans cleaned",
    9: "bounded delay",
}
MAX_REFUSALS_PER_PARENT = 3
# open alerts that stand for a difference between ordersync and the broker
DIFFERENCE_ALERTS = frozenset(
    {
        "position_drift",
        "foreign_order",
        "missing_at_broker",
        "stuck_unknown",
        "unprotected_position",
        "foreign_order_holds_shares",
    }
)
_ENDS = ("filled_at", "canceled_at", "expired_at", "failed_at", "replaced_at")


@dataclass(frozen=True)
class Window:
    """A stretch of virtual time in which protection was impossible: the engine down, or a blocking fault."""

    start: datetime
    end: datetime
    cause: str  # "engine down" or the fault
    symbols: frozenset[str] = frozenset()  # the symbols it blocked; empty: every symbol

    @property
    def seconds(self) -> float:
        """Its length in virtual seconds."""
        return max(0.0, (self.end - self.start).total_seconds())

    def blocks(self, symbol: str) -> bool:
        """True when it made protecting ``symbol`` impossible."""
        return not self.symbols or symbol in self.symbols


@dataclass(frozen=True)
class Evidence:
    """What the checks read: the books, the store's orders, refusals journaled per order, open alerts, and
    for invariant 9 the engine's poll interval and the windows in which protection was impossible."""

    state: Mapping[str, Any]
    parent_ids: frozenset[str]
    store_orders: Sequence[Order]
    refusals: Mapping[str, int]  # client_order_id -> submit_refused journal entries
    open_alerts: Sequence[Alert] = ()
    poll_interval_s: float | None = None  # virtual seconds; None: invariant 9 is not judged
    downtime: Sequence[Window] = ()  # SIGKILL -> the restarted engine's first successful reconciliation
    fault_windows: Sequence[Window] = ()  # scheduled faults that block the order routes


@dataclass
class Verdict:
    """Violations per invariant (1-7) and the figures the driver prints."""

    violations: dict[int, list[str]] = field(default_factory=lambda: {n: [] for n in INVARIANTS})
    figures: dict[str, int | str] = field(default_factory=dict)
    # fill -> protect from the books, in the simulator's virtual time (ms): p50, p99, max, n
    fill_to_protect_ms: dict[str, float | None] = field(default_factory=dict)
    # the same less the part of each stretch in which the engine was down or a fault window blocked it
    fill_to_protect_own_ms: dict[str, float | None] = field(default_factory=dict)
    fills_in_downtime: int = 0  # fills whose wait overlapped engine downtime

    @property
    def fill_to_protect_own_p99_s(self) -> float | None:
        """The p99 of fill -> protect less engine downtime and blocking fault windows (virtual s)."""
        p99 = self.fill_to_protect_own_ms.get("p99")
        return None if p99 is None else p99 / 1000

    @property
    def fill_to_protect_p99_s(self) -> float | None:
        """The p99 of fill -> protect in virtual seconds (None without fills)."""
        p99 = self.fill_to_protect_ms.get("p99")
        return None if p99 is None else p99 / 1000

    @property
    def total(self) -> int:
        """Return the number of violations over all invariants."""
        return sum(len(v) for v in self.violations.values())


def check_all(evidence: Evidence) -> Verdict:
    """Check every invariant; return the violations and the run's figures."""
    books = _Books(evidence.state, evidence.parent_ids)
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
    v[9] += _bounded_delay(books, evidence, verdict)
    verdict.figures = _figures(books, evidence, verdict)
    return verdict


# -- the books, grouped -----------------------------------------------------------------------------------


class _Books:
    def __init__(self, state: Mapping[str, Any], parent_ids: frozenset[str]) -> None:
        orders: list[Book] = list(state["orders"])
        self.state = state
        self.orders = orders
        by_id = {o["id"]: o for o in orders}
        self.parent: dict[str, Book] = {}
        self.parent_copies: Counter[str] = Counter()
        members: dict[str, dict[str, list[Book]]] = defaultdict(dict)
        self.owner: dict[str, str] = {}
        for o in orders:
            coid = o["client_order_id"]
            if coid in parent_ids:
                self.parent[coid] = o
                self.parent_copies[coid] += 1
                continue
            pid = owner_of(o, by_id, set(parent_ids))
            if pid is None:
                continue
            self.owner[o["id"]] = pid
            group = o["sim"].get("group_id") or o["id"]
            members[pid].setdefault(group, []).append(o)
        # each group: its root first, then its legs
        self.groups: dict[str, list[list[Book]]] = {
            pid: [sorted(g, key=lambda m: not is_group_root(m)) for g in groups.values()]
            for pid, groups in members.items()
        }


def _ts(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))


def _ended_at(order: Book) -> datetime | None:
    ends = [t for t in (_ts(order.get(k)) for k in _ENDS) if t is not None]
    return min(ends) if ends else None


def _filled_by(order: Book, at: datetime) -> Decimal:
    executions = order["sim"].get("executions", [])
    return sum((Decimal(e["qty"]) for e in executions if _ts(e["at"]) <= at), Decimal(0))  # type: ignore[operator]


def _group_cover_at(group: Sequence[Book], at: datetime) -> Decimal:
    root = group[0]
    if _ts(root["created_at"]) > at:  # type: ignore[operator]
        return Decimal(0)
    qty = max(Decimal(m["qty"]) for m in group)
    for member in group:
        ended = _ended_at(member)
        still_open = member["status"] not in TERMINAL if ended is None else ended > at
        if still_open:
            return qty
    return min(qty, sum((_filled_by(m, at) for m in group), Decimal(0)))


def _roots(groups: Sequence[Sequence[Book]]) -> list[Book]:
    return [g[0] for g in groups]


# -- invariants -------------------------------------------------------------------------------------------


def _premature(pid: str, parent: Book | None, groups: Sequence[Sequence[Book]]) -> list[str]:
    """(1) At each child's submission, what children cover must not exceed what the broker had filled."""
    found: list[str] = []
    for root in _roots(groups):
        at = _ts(root["submitted_at"])
        assert at is not None
        filled = Decimal(0) if parent is None else _filled_by(parent, at)
        covered = sum((_group_cover_at(g, at) for g in groups), Decimal(0))
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
    for root in _roots(groups):
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


def _store_matches(books: _Books, store: Mapping[str, Order]) -> list[str]:
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


def _alerts(alerts: Iterable[Alert], books: _Books, store: Mapping[str, Order]) -> list[str]:
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


def _alert_holds(alert: Alert, books: _Books, store: Mapping[str, Order]) -> bool:
    if alert.kind == "unprotected_position":
        parent = books.parent.get(alert.key)
        filled = Decimal(0) if parent is None else Decimal(parent["filled_qty"])
        return books_coverage([m for g in books.groups.get(alert.key, []) for m in g]) < filled
    if alert.kind == "position_drift":
        return any(v.startswith(f"{alert.key}:") for v in _positions(books.state, store.values()))
    if alert.kind == "stuck_unknown":
        order = store.get(alert.key)
        return order is not None and order.status is OrderStatus.SUBMITTING
    if alert.kind == "missing_at_broker":
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


def _bounded_delay(books: _Books, evidence: Evidence, verdict: Verdict) -> list[str]:
    """(9) Each fill is protected within 2 x the poll interval plus the overlap of its wait with engine
    downtime and blocking fault windows; fills the broker's books show, times in its virtual clock."""
    end = _ts(evidence.state["now"])
    assert end is not None
    members = {pid: [m for g in gs for m in g] for pid, gs in books.groups.items()}
    found: list[str] = []
    overall: list[float] = []
    own: list[float] = []
    in_downtime = 0
    for pid, at, covered_at in fill_protections(list(books.parent.values()), members):
        done = covered_at or end  # never covered: unprotected until the end of the run
        symbol = str(books.parent[pid].get("symbol", ""))
        down = _overlap_s(at, done, evidence.downtime)
        excused = _overlap_s(
            at, done, [*evidence.downtime, *(w for w in evidence.fault_windows if w.blocks(symbol))]
        )
        delay = (done - at).total_seconds()
        overall.append(delay * 1000)
        own.append((delay - excused) * 1000)
        in_downtime += down > 0
        if evidence.poll_interval_s is None:
            continue
        bound = 2 * evidence.poll_interval_s + excused
        if delay > bound:
            protected = "never" if covered_at is None else f"at {covered_at:%H:%M:%S.%f}"[:-3]
            found.append(
                f"{pid}: fill at {at:%H:%M:%S.%f}"[:-3] + f" protected {protected}: {delay:.1f} s > bound "
                f"{bound:.1f} s (2 x poll {evidence.poll_interval_s:.1f} s + {excused:.1f} s impossible)"
            )
    verdict.fill_to_protect_ms = percentiles(overall)
    verdict.fill_to_protect_own_ms = percentiles(own)
    verdict.fills_in_downtime = in_downtime
    return found


def _overlap_s(start: datetime, end: datetime, windows: Iterable[Window]) -> float:
    """Seconds of [start, end] inside the union of ``windows``."""
    spans = sorted((max(start, w.start), min(end, w.end)) for w in windows)
    total = timedelta(0)
    reach: datetime | None = None
    for lo, hi in spans:
        if reach is not None:
            lo = max(lo, reach)
        if hi > lo:
            total += hi - lo
        reach = hi if reach is None else max(reach, hi)
    return total.total_seconds()


def _seconds(latency: Mapping[str, float | None]) -> str:
    return "/".join(
        "-" if latency[k] is None else f"{(latency[k] or 0) / 1000:.1f}" for k in ("p50", "p99", "max")
    )


def _figures(books: _Books, evidence: Evidence, verdict: Verdict) -> dict[str, int | str]:
    counters = evidence.state["counters"]
    by_code: dict[str, int] = counters["rejections"]["by_code"]
    by_message: dict[str, int] = counters["rejections"]["by_message"]
    groups = [g for gs in books.groups.values() for g in gs]
    return {
        "parents at the broker": len(books.parent),
        "parent fills (executions)": sum(len(p["sim"].get("executions", [])) for p in books.parent.values()),
        "parents filled in full": sum(1 for p in books.parent.values() if p["status"] == "filled"),
        "parents dead unfilled": sum(
            1 for p in books.parent.values() if p["status"] in TERMINAL and Decimal(p["filled_qty"]) == 0
        ),
        "children submitted": len(groups),
        "of them OCO": sum(1 for g in groups if len(g) > 1),
        "children that traded": sum(1 for g in groups if any(Decimal(m["filled_qty"]) > 0 for m in g)),
        "broker requests": sum(counters["requests"].values()),
        "error answers by code (404: lookups)": ", ".join(f"{c} {n}" for c, n in sorted(by_code.items()))
        or "none",
        "40310000 refusals": by_code.get("40310000", 0),
        "duplicate client_order_id refusals": sum(
            n for m, n in by_message.items() if "client_order_id must be unique" in m
        ),
        "refusals journaled": sum(evidence.refusals.values()),
        "fill-to-protect p50/p99/max (virtual s)": _seconds(verdict.fill_to_protect_ms),
        "  the same less engine downtime and fault windows": _seconds(verdict.fill_to_protect_own_ms),
        "  fills that waited through engine downtime": verdict.fills_in_downtime,
        "  bound: 2 x poll interval (virtual s)": "-"
        if evidence.poll_interval_s is None
        else f"{2 * evidence.poll_interval_s:.1f}",
        "  engine downtime (virtual s, SIGKILL to first reconcile)": ", ".join(
            f"{w.seconds:.0f}" for w in evidence.downtime
        )
        or "none",
        "open alerts": ", ".join(
            f"{k} {n}" for k, n in sorted(Counter(a.kind for a in evidence.open_alerts).items())
        )
        or "none",
    }
