"""What `analyze --verify` found at the broker: per symbol, per parent, and the read budget it spent."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

from ordersync.domain.events import BrokerOrderView
from ordersync.forensics.report import Cause

OPEN_STATUSES: Final = frozenset(
    {"new", "accepted", "pending_new", "partially_filled", "held", "pending_replace", "pending_cancel"}
)
PAGE: Final = 500
SYMBOLS_PER_READ: Final = 100  # keeps the query string well under any URL limit
BUDGET_PER_MINUTE: Final = 200  # Alpaca's documented request budget (docs/alpaca.md)
LOG_SAYS: Final = {
    Cause.SELL_BEFORE_FILL: "sell-before-fill",
    Cause.RESERVED_BY_OPEN_ORDER: "shares reserved by another open order",
    Cause.OVERSIZED_SELL: "a sell larger than the free shares",
    Cause.MIXED: "mixed causes",
    Cause.UNDETERMINED: "an undetermined cause",
    Cause.NONE: "no refusal",
}


@dataclass(frozen=True, slots=True)
class Holder:
    """An open sell holding shares of a symbol now: `remaining` shares, `ours` when the log names it."""

    order: BrokerOrderView
    remaining: Decimal
    ours: bool


@dataclass(frozen=True, slots=True)
class SymbolAtBroker:
    """One affected symbol now: the position, the open sells holding shares, the shares left unprotected."""

    symbol: str
    qty: Decimal
    qty_available: Decimal | None
    holders: tuple[Holder, ...]
    held: Decimal
    unprotected: Decimal


@dataclass(frozen=True, slots=True)
class ParentCheck:
    """A parent row of the report, as the broker shows it now, with a verdict on the log's cause.

    `outcome` is "confirmed", "corrected" or "unchecked" (the broker does not know the order, or the
    budget did not cover it); `verdict` says it in words.
    """

    order_id: str
    symbol: str | None
    log_cause: Cause
    order: BrokerOrderView | None
    outcome: str
    verdict: str


@dataclass(slots=True)
class ReadBudget:
    """At most `max_requests` reads; `spent` counts them; `on_read(spent, max_requests)` follows them."""

    max_requests: int
    spent: int = 0
    on_read: Callable[[int, int], None] | None = None

    def take(self) -> bool:
        if self.spent >= self.max_requests:
            return False
        self.spent += 1
        if self.on_read is not None:
            self.on_read(self.spent, self.max_requests)
        return True


@dataclass(frozen=True, slots=True)
class BrokerCheck:
    """The validation at the broker: per parent, per symbol, what was unknown, what it cost."""

    parents: tuple[ParentCheck, ...]
    symbols: tuple[SymbolAtBroker, ...]
    unknown_orders: tuple[str, ...]
    unread_orders: tuple[str, ...]  # not read: the request budget ran out first
    requests: int
    max_requests: int = 50
    positions_read: bool = True
    orders: dict[str, BrokerOrderView] = field(default_factory=dict)

    @property
    def unprotected_now(self) -> bool:
        """True while any affected symbol holds shares no open sell covers: `--verify` exits 1."""
        return any(s.unprotected > 0 for s in self.symbols)

    @property
    def budget_share(self) -> str:
        """The stated share of the 200/min budget this check may spend, e.g. "25%"."""
        return f"{Decimal(100 * self.max_requests) / BUDGET_PER_MINUTE:.0f}%"
