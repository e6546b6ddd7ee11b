"""Reading the simulator's books (``GET /sim/state``): which parent an order belongs to, its exits grouped
(an OCO pair, a bracket's legs, a simple order), and the coverage of a parent, now or at any moment.

One computation of coverage for every judge: the demo summary, the chaos checks and the end-to-end tests
count it as docs/architecture.md §2, invariant 2 does: live exits in full (a group reserves its shares
once), ended ones by what they sold. The broker's books, not the client's belief, are the evidence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

__all__ = [
    "TERMINAL",
    "ExitGroup",
    "books_coverage",
    "ended_at",
    "exit_groups",
    "filled_by",
    "is_group_root",
    "owner_of",
    "parent_of",
    "ts",
]


TERMINAL = {"filled", "canceled", "expired", "replaced", "rejected"}


_ENDS = ("filled_at", "canceled_at", "expired_at", "failed_at", "replaced_at")


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def ended_at(order: Mapping[str, Any]) -> datetime | None:
    if order["status"] not in TERMINAL:
        return None
    ends = [ts(order[k]) for k in _ENDS if order.get(k)]
    return min(ends) if ends else ts(order["updated_at"])


def filled_by(order: Mapping[str, Any], at: datetime) -> Decimal:
    executions = order["sim"].get("executions", [])
    return sum((Decimal(e["qty"]) for e in executions if ts(e["at"]) <= at), Decimal(0))


def parent_of(coid: str, parent_ids: set[str]) -> str | None:
    """Return the scenario parent a child belongs to, from its client_order_id."""
    if "~" in coid:
        head = coid.split("~", 1)[0]
        return head if head in parent_ids else None
    if coid.startswith("naive-"):
        head = coid[len("naive-") :].rsplit("-", 2)[0]
        return head if head in parent_ids else None
    return None


def owner_of(order: Mapping[str, Any], by_id: Mapping[str, Any], parent_ids: set[str]) -> str | None:
    """Return the parent a broker order belongs to: by its client_order_id, a leg through its group, and an
    exit that replaced one of a parent's exits (a PATCH, ours or a person's: Alpaca gives the replacement a
    new id and client_order_id and points it at its predecessor with ``replaces``) through that chain.

    A replaced *entry*'s successor is not a child: it stays unattributed, as before."""
    seen: set[str] = set()
    while order["id"] not in seen:
        seen.add(order["id"])
        group = order["sim"].get("group_id")
        if group and group in by_id and group != order["id"]:
            order = by_id[group]  # a leg: its group's root decides
            if order["client_order_id"] in parent_ids:
                return str(order["client_order_id"])  # a bracket's legs belong to their entry
            continue
        owner = parent_of(order["client_order_id"], parent_ids)
        predecessor = by_id.get(order.get("replaces") or "")
        if owner is not None or predecessor is None or predecessor["client_order_id"] in parent_ids:
            return owner
        order = predecessor
    return None


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


@dataclass(frozen=True)
class ExitGroup:
    """One exit at the broker (a simple order, an OCO pair, a bracket's legs) and when it was live."""

    members: tuple[Mapping[str, Any], ...]
    live_from: datetime | None  # accepted (a bracket's legs: released when the entry completely filled)
    live_until: datetime | None  # every member ended

    @property
    def qty(self) -> Decimal:
        return max(Decimal(m["qty"]) for m in self.members)

    def sold_by(self, at: datetime) -> Decimal:
        return sum((filled_by(m, at) for m in self.members), Decimal(0))

    def cover_at(self, at: datetime) -> Decimal:
        """Shares this exit protects at ``at``: its quantity while live, what it sold otherwise."""
        if (
            self.live_from is not None
            and self.live_from <= at
            and (self.live_until is None or at < self.live_until)
        ):
            return self.qty
        return min(self.qty, self.sold_by(at))

    def moments(self) -> list[datetime]:
        """Every moment its cover may change."""
        points = [t for t in (self.live_from, self.live_until) if t is not None]
        return points + [ts(e["at"]) for m in self.members for e in m["sim"].get("executions", [])]


def exit_groups(parent: Mapping[str, Any], children: Sequence[Mapping[str, Any]]) -> list[ExitGroup]:
    """Return the parent's exits at the broker, one group per OCO pair / bracket legs / simple order."""
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for child in children:
        grouped.setdefault(child["sim"].get("group_id") or child["id"], []).append(child)
    found = []
    for key, members in grouped.items():
        ends = [ended_at(m) for m in members]
        live_until = None if any(e is None for e in ends) else max(e for e in ends if e is not None)
        if key == parent["id"]:  # a bracket's or OTO's legs: released once the entry completely filled
            live_from = (
                ts(parent["filled_at"]) if parent["status"] == "filled" and parent.get("filled_at") else None
            )
            if live_from is not None and live_until is not None and live_until <= live_from:
                live_from = None  # ended with a partly filled entry: never live
        else:
            roots = [m for m in members if is_group_root(m)] or members
            live_from = ts(roots[0].get("submitted_at") or roots[0]["created_at"])
        found.append(ExitGroup(tuple(members), live_from, live_until))
    return found
