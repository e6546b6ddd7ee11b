"""The simulator's own records of orders and positions, independent of ordersync's domain model.

These are plain mutable dataclasses owned by the exchange under its lock. They mirror Alpaca's fields (see
docs/alpaca.md §3) plus the bookkeeping Alpaca keeps internally: the group an order belongs to (bracket,
OCO, OTO), its role in that group, a triggered flag for stops and the trailing high-water mark. The simulator
is deliberately a separate model of the broker, so a bug in ordersync's order core cannot be mirrored here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

__all__ = [
    "OPEN_STATUSES",
    "ORDER_CLASSES",
    "ORDER_TYPES",
    "SIDES",
    "TERMINAL_STATUSES",
    "TIME_IN_FORCES",
    "Position",
    "SimOrder",
    "SymbolInfo",
]

# Alpaca's terminal statuses (docs/alpaca.md §1.1); done_for_day/calculated are not terminal.
TERMINAL_STATUSES = frozenset({"filled", "canceled", "expired", "replaced", "rejected"})
OPEN_STATUSES = frozenset(
    {
        "new",
        "partially_filled",
        "done_for_day",
        "pending_cancel",
        "pending_replace",
        "accepted",
        "pending_new",
        "accepted_for_bidding",
        "stopped",
        "suspended",
        "calculated",
        "held",
    }
)
SIDES = ("buy", "sell")
ORDER_TYPES = ("market", "limit", "stop", "stop_limit", "trailing_stop")
TIME_IN_FORCES = ("day", "gtc", "opg", "cls", "ioc", "fok")
ORDER_CLASSES = ("simple", "bracket", "oco", "oto")


@dataclass
class SymbolInfo:
    """A tradable symbol: last price, listing exchange and a stable asset id."""

    symbol: str
    price: Decimal
    exchange: str
    asset_id: str
    fractionable: bool = True


@dataclass
class SimOrder:
    """One order as the venue sees it; group legs are separate orders linked by `group_id`."""

    id: str
    client_order_id: str
    symbol: str
    asset_id: str
    side: str
    type: str
    time_in_force: str
    qty: Decimal
    created_at: datetime
    notional: Decimal | None = None  # a notional order: `qty` is derived from it at the fill
    order_class: str = "simple"
    status: str = "accepted"
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    trail_price: Decimal | None = None
    trail_percent: Decimal | None = None
    hwm: Decimal | None = None
    extended_hours: bool = False
    filled_qty: Decimal = Decimal(0)
    filled_cost: Decimal = Decimal(0)
    updated_at: datetime | None = None
    filled_at: datetime | None = None
    canceled_at: datetime | None = None
    expired_at: datetime | None = None
    failed_at: datetime | None = None
    replaced_at: datetime | None = None
    expires_at: datetime | None = None
    replaced_by: str | None = None
    replaces: str | None = None
    # Group bookkeeping: the root is the order the client POSTed; legs point at it.
    group_id: str | None = None
    role: str = "entry"  # entry | take_profit | stop_loss
    position_intent: str | None = None  # buy_to_open | buy_to_close | sell_to_open | sell_to_close
    leg_ids: list[str] = field(default_factory=list)
    triggered: bool = False
    cancel_requested: bool = False
    planned: bool = False  # filled by a scenario plan rather than by price
    # An asynchronous replace (PATCH): the old order shows `pending_replace` and remembers what it was; the
    # new order exists (readable) but neither reserves, counts nor trades until the venue confirms.
    status_before_replace: str | None = None
    replacing: bool = False
    executions: list[tuple[datetime, Decimal, Decimal]] = field(default_factory=list)  # (at, qty, price)
    # Every status the order took, with its venue time: when a bracket's legs were armed, when an exit ended;
    # a driver measures exposure (time without a live exit) from it.
    history: list[tuple[datetime, str]] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.status not in TERMINAL_STATUSES

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.filled_qty

    @property
    def filled_avg_price(self) -> Decimal | None:
        if self.filled_qty == 0:
            return None
        return self.filled_cost / self.filled_qty

    @property
    def working_status(self) -> str:
        """The status the venue works the order by: a pending replace keeps working as it was."""
        if self.status == "pending_replace" and self.status_before_replace is not None:
            return self.status_before_replace
        return self.status

    @property
    def is_leg(self) -> bool:
        return self.group_id is not None and self.group_id != self.id

    @property
    def is_live(self) -> bool:
        """Open and working at the venue: not held, not waiting for the acknowledgement."""
        return self.is_open and self.status not in ("held", "accepted", "pending_new")


@dataclass
class Position:
    """A position: signed quantity (negative = short) and average entry price."""

    symbol: str
    qty: Decimal = Decimal(0)
    avg_entry_price: Decimal = Decimal(0)

    @property
    def cost_basis(self) -> Decimal:
        return abs(self.qty) * self.avg_entry_price

    def apply_fill(self, side: str, qty: Decimal, price: Decimal) -> None:
        """Apply one execution: extend at a blended price, reduce at the same average, flip at the fill."""
        delta = qty if side == "buy" else -qty
        new_qty = self.qty + delta
        if self.qty == 0 or (self.qty > 0) == (delta > 0):
            self.avg_entry_price = (abs(self.qty) * self.avg_entry_price + qty * price) / abs(new_qty)
        elif new_qty != 0 and (new_qty > 0) != (self.qty > 0):
            self.avg_entry_price = price
        self.qty = new_qty
