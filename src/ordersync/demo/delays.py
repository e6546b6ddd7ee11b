"""How long each fill waited for its protection, from the simulator's books: the demo's ``fill_to_protect_ms``
and the chaos check of the bounded delay (docs/architecture.md §2, invariant 9) read the same figures.

A fill is protected at the moment live exits of the parent first cover its cumulative filled quantity.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from ordersync.demo.books import exit_groups, ts


def fill_to_protect(
    parents: Sequence[Mapping[str, Any]], children: Mapping[str, Sequence[Mapping[str, Any]]], end: datetime
) -> dict[str, float | None]:
    """Return p50/p99/max of the time from each fill to the moment live exits covered it (ms).

    A fill never covered counts until ``end`` (the position stayed unprotected for the whole run).
    """
    samples = [
        ((covered_at or end) - at).total_seconds() * 1000
        for _, at, covered_at in fill_protections(parents, children)
    ]
    return percentiles(samples)


def fill_protections(
    parents: Sequence[Mapping[str, Any]], children: Mapping[str, Sequence[Mapping[str, Any]]]
) -> list[tuple[str, datetime, datetime | None]]:
    """Return every fill of ``parents`` as (parent client_order_id, fill time, time live exits covered it).

    The cover time is None for a fill no exit ever covered.
    """
    found: list[tuple[str, datetime, datetime | None]] = []
    for parent in parents:
        groups = exit_groups(parent, children.get(parent["client_order_id"], []))
        accepted = sorted((g.live_from, g.qty) for g in groups if g.live_from is not None)
        cumulative = Decimal(0)
        for execution in parent["sim"].get("executions", []):
            cumulative += Decimal(execution["qty"])
            at = ts(execution["at"])
            found.append((parent["client_order_id"], at, _covered_at(accepted, cumulative, at)))
    return found


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
