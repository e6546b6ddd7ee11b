"""Bounded exponential backoff: how long to wait before attempt ``n`` (no hot loops, invariant 6)."""

from __future__ import annotations


def backoff_s(attempt: int, base_s: float, cap_s: float) -> float:
    """Return the wait before retry ``attempt`` (1-based): base, 2x base, 4x base ... capped at ``cap_s``."""
    if attempt < 1:
        return 0.0
    return float(min(cap_s, base_s * 2.0 ** min(attempt - 1, 30)))
