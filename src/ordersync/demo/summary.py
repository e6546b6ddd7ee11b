"""The demo's summary, computed from the simulator's own books: the broker is the judge, not the client.

Children are tied to their parent by client_order_id (``<parent>~...`` for ordersync, ``naive-<parent>-``
for the baseline, and an OCO leg through its group). Coverage of a parent = open children in full plus
what finished children filled, exactly as DESIGN.md invariant 2 counts it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

TERMINAL = {"filled", "canceled", "expired", "replaced", "rejected"}


@dataclass
class Summary:
    """The figures DESIGN.md §3 promises for ``ordersync demo --json``."""

    mode: str
    scenario: str
    parents: int = 0
    children_submitted: int = 0
    broker_rejections: int = 0
    insufficient_qty_rejections: int = 0
    unprotected_qty: str = "0"
    overprotected_qty: str = "0"
    duplicate_submissions: int = 0
    discrepancies: int = 0
    fill_to_protect_ms: dict[str, float | None] = field(default_factory=dict)
    broker_requests: int = 0
    alerts: dict[str, int] = field(default_factory=dict)  # raised during the run, by kind
    virtual_duration_s: float = 0.0
    real_duration_s: float = 0.0

    @property
    def problems(self) -> bool:
        """True when the run shows the incident's symptoms (exit code 1)."""
        return bool(
            self.insufficient_qty_rejections
            or Decimal(self.unprotected_qty)
            or Decimal(self.overprotected_qty)
            or self.duplicate_submissions
            or self.discrepancies
        )

    def as_dict(self) -> dict[str, Any]:
        """Return the summary as a JSON-ready dict."""
        return asdict(self)


def parent_of(coid: str, parent_ids: set[str]) -> str | None:
    """Return the scenario parent a child belongs to, from its client_order_id."""
    if "~" in coid:
        head = coid.split("~", 1)[0]
        return head if head in parent_ids else None
    if coid.startswith("naive-"):
        head = coid[len("naive-") :].rsplit("-", 2)[0]
        return head if head in parent_ids else None
    return None


def summarize_books(
    summary: Summary, state: Mapping[str, Any], parent_ids: set[str], end: datetime
) -> Summary:
    """Fill ``summary`` from the simulator's state (GET /sim/state)."""
    orders: list[dict[str, Any]] = state["orders"]
    by_id = {o["id"]: o for o in orders}
    counters = state["counters"]
    by_code: dict[str, int] = counters["rejections"]["by_code"]
    summary.broker_rejections = sum(by_code.values())
    summary.insufficient_qty_rejections = by_code.get("40310000", 0)
    summary.broker_requests = sum(counters["requests"].values())
    parents = [o for o in orders if o["client_order_id"] in parent_ids]
    summary.parents = len(parents)
    children: dict[str, list[dict[str, Any]]] = {}
    for o in orders:
        pid = owner_of(o, by_id, parent_ids)
        if pid is not None:
            children.setdefault(pid, []).append(o)
    summary.children_submitted = sum(1 for kids in children.values() for o in kids if is_group_root(o))
    under, over = Decimal(0), Decimal(0)
    for parent in parents:
        filled = Decimal(parent["filled_qty"])
        covered = books_coverage(children.get(parent["client_order_id"], []))
        under += max(Decimal(0), filled - covered)
        over += max(Decimal(0), covered - filled)
    summary.unprotected_qty, summary.overprotected_qty = str(under), str(over)
    summary.duplicate_submissions = _duplicates(parents, parent_ids)
    summary.fill_to_protect_ms = fill_to_protect(parents, children, end)
    return summary


def owner_of(order: Mapping[str, Any], by_id: Mapping[str, Any], parent_ids: set[str]) -> str | None:
    """Return the parent a broker order (or a leg, through its group) belongs to."""
    group = order["sim"].get("group_id")
    if group and group in by_id and group != order["id"]:
        return parent_of(by_id[group]["client_order_id"], parent_ids)
    return parent_of(order["client_order_id"], parent_ids)


def is_group_root(order: Mapping[str, Any]) -> bool:
    """True for a simple order or the root of a group (not a leg)."""
    group = order["sim"].get("group_id")
    return group is None or group == order["id"]


def books_coverage(children: Sequence[Mapping[str, Any]]) -> Decimal:
    """Return what broker-side children cover (open groups in full, ended ones by their fills)."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for child in children:
        groups.setdefault(child["sim"].get("group_id") or child["id"], []).append(child)
    total = Decimal(0)
    for members in groups.values():
        qty = max(Decimal(m["qty"]) for m in members)
        if any(m["status"] not in TERMINAL for m in members):
            total += qty
        else:
            total += min(qty, sum((Decimal(m["filled_qty"]) for m in members), Decimal(0)))
    return total


def _duplicates(parents: Sequence[Mapping[str, Any]], parent_ids: set[str]) -> int:
    seen: dict[str, int] = {}
    for parent in parents:
        seen[parent["client_order_id"]] = seen.get(parent["client_order_id"], 0) + 1
    return sum(n - 1 for n in seen.values())


def fill_to_protect(
    parents: Sequence[Mapping[str, Any]], children: Mapping[str, Sequence[Mapping[str, Any]]], end: datetime
) -> dict[str, float | None]:
    """Return p50/p99/max of the time from each fill to the moment accepted children covered it (ms).

    A fill never covered counts until ``end`` (the position stayed unprotected for the whole run).
    """
    samples: list[float] = []
    for parent in parents:
        kids = [k for k in children.get(parent["client_order_id"], []) if is_group_root(k)]
        accepted = sorted((_ts(k["submitted_at"]), Decimal(k["qty"])) for k in kids)
        cumulative = Decimal(0)
        for execution in parent["sim"].get("executions", []):
            cumulative += Decimal(execution["qty"])
            at = _ts(execution["at"])
            covered_at = _covered_at(accepted, cumulative, at)
            samples.append(((covered_at or end) - at).total_seconds() * 1000)
    return percentiles(samples)


def _covered_at(
    accepted: Sequence[tuple[datetime, Decimal]], need: Decimal, since: datetime
) -> datetime | None:
    total = Decimal(0)
    for at, qty in accepted:
        total += qty
        if total >= need:
            return max(at, since)
    return None


def percentiles(samples: Sequence[float]) -> dict[str, float | None]:
    """Return p50, p99 and max of ``samples`` (nearest rank), None when empty."""
    if not samples:
        return {"p50": None, "p99": None, "max": None, "n": 0}
    ordered = sorted(samples)

    def rank(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, max(0, round(p * len(ordered) + 0.5) - 1))], 1)

    return {"p50": rank(0.50), "p99": rank(0.99), "max": round(ordered[-1], 1), "n": len(ordered)}


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
