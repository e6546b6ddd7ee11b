"""Bounded exponential backoff: how long to wait before attempt ``n`` (no hot loops, invariant 6)."""

from __future__ import annotations

from collections.abc import Iterable

from ordersync.domain.kinds import HoldReason
from ordersync.domain.protection import Hold
from ordersync.engine.options import EngineOptions


def backoff_s(attempt: int, base_s: float, cap_s: float) -> float:
    """Return the wait before retry ``attempt`` (1-based): base, 2x base, 4x base ... capped at ``cap_s``."""
    if attempt < 1:
        return 0.0
    return float(min(cap_s, base_s * 2.0 ** min(attempt - 1, 30)))


def short_shares_backoff_s(holds: Iterable[Hold], attempt: int, options: EngineOptions) -> float | None:
    """Return the wait before the next release of a plan held for lack of shares (None: not so held).

    A position read that failed (a 5xx) is weather, retried at a lookup's pace; shares held by other
    orders are retried at the slower refusal pace.
    """
    kinds = {h.kind for h in holds}
    if not any(k.waits_for_shares for k in kinds):
        return None
    if HoldReason.AVAILABLE_UNKNOWN in kinds:
        return backoff_s(attempt, options.lookup_backoff_base_s, options.lookup_backoff_cap_s)
    return backoff_s(attempt, options.release_backoff_base_s, options.release_backoff_cap_s)
