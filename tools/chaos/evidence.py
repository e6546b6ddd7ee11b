"""What the chaos checks read and what they return: the evidence of a run, the windows in which protection
was impossible, and the verdict per invariant.

Plain data, apart from the checks themselves, so the driver (which gathers the evidence and prints the
verdict) and each check module share one vocabulary without importing one another.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ordersync.domain.kinds import AlertKind
from ordersync.domain.order import Order
from ordersync.ports import Alert

__all__ = ["DIFFERENCE_ALERTS", "INVARIANTS", "MAX_REFUSALS_PER_PARENT", "Evidence", "Verdict", "Window"]

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
        AlertKind.POSITION_DRIFT,
        AlertKind.FOREIGN_ORDER,
        AlertKind.MISSING_AT_BROKER,
        AlertKind.STUCK_UNKNOWN,
        AlertKind.UNPROTECTED_POSITION,
        AlertKind.FOREIGN_ORDER_HOLDS_SHARES,
    }
)


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
