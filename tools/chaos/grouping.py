"""The simulator's books grouped the way the chaos checks judge them: each parent's child groups (root
first, then its legs) and what a group covered at any past moment.

Ownership (``owner_of``), group roots and the books' terminal statuses come from ``ordersync.demo.books``,
so chaos and the demo attribute orders alike. The point-in-time cover stays the chaos checks' own, on
purpose: ``demo.books.ExitGroup.cover_at`` takes a group as live from its root's ``submitted_at`` (else
``created_at``), gives a bracket's legs life only from the entry's complete fill, and dates a terminal
order with no end stamp by ``updated_at``; invariant 1 (no premature children) counts a group from its
root's ``created_at`` and an ended order only by its end stamps. Switching would change what the check
accepts, so the two stay apart.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from ordersync.demo.books import TERMINAL, filled_by, is_group_root, owner_of, ts

__all__ = ["Book", "Books", "ended_at", "group_cover_at", "roots"]

Book = Mapping[str, Any]  # one order of GET /sim/state

_ENDS = ("filled_at", "canceled_at", "expired_at", "failed_at", "replaced_at")


class Books:
    """The books of one run: parents by client_order_id, and each parent's child groups."""

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


def ended_at(order: Book) -> datetime | None:
    """The earliest end stamp an order carries, whatever its status (None: it carries none).

    Unlike ``demo.books.ended_at`` (None for an order not terminal, ``updated_at`` when a terminal one
    carries no end stamp): the checks read an order as ended only by its end stamps."""
    ends = [ts(order[k]) for k in _ENDS if order.get(k) is not None]
    return min(ends) if ends else None


def group_cover_at(group: Sequence[Book], at: datetime) -> Decimal:
    """Shares ``group`` covered at ``at``: its quantity while a member was open, what it sold otherwise
    (nothing before its root was created)."""
    root = group[0]
    if ts(root["created_at"]) > at:
        return Decimal(0)
    qty = max(Decimal(m["qty"]) for m in group)
    for member in group:
        ended = ended_at(member)
        still_open = member["status"] not in TERMINAL if ended is None else ended > at
        if still_open:
            return qty
    return min(qty, sum((filled_by(m, at) for m in group), Decimal(0)))


def roots(groups: Sequence[Sequence[Book]]) -> list[Book]:
    return [g[0] for g in groups]
