"""What a scenario sets on one account's broker model (``ExchangeConfig``, its fill plans and price path), and
what every account of one simulator shares (``Market``: the clock, the symbols, one lock, one scheduler).

Plain values, apart from ``Exchange`` so the scenario models can build them without the broker's machinery.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from .checks import Policy
from .clock import SimClock
from .model import SymbolInfo
from .order_request import OrderSpec
from .scheduler import Scheduler
from .serialize import ACCOUNT_ID, ACCOUNT_NUMBER
from .venue import Latency

__all__ = ["ExchangeConfig", "FillPlan", "FillStep", "Market", "PricePoint"]


@dataclass(frozen=True)
class FillStep:
    after_s: float
    qty: Decimal
    price: Decimal | None = None


@dataclass(frozen=True)
class FillPlan:
    steps: tuple[FillStep, ...] = ()
    cancel_after_s: float | None = None
    expire_after_s: float | None = None
    reject_after_s: float | None = None


@dataclass(frozen=True)
class PricePoint:
    at_s: float
    symbol: str
    price: Decimal


@dataclass(frozen=True)
class ExchangeConfig:
    """Everything a scenario sets on the broker model."""

    symbols: Sequence[SymbolInfo]
    cash: Decimal = Decimal(1_000_000)
    policy: Policy = field(default_factory=Policy)
    latency: Latency = field(default_factory=Latency)
    plans: Mapping[str, FillPlan] = field(default_factory=dict)
    prices: Sequence[PricePoint] = ()
    positions: Sequence[tuple[str, Decimal, Decimal]] = ()  # (symbol, signed qty, avg entry price)
    margin_multiplier: int = 1
    foreign_orders: Sequence[OrderSpec] = ()  # other applications' open orders at the start
    calendar: bool = False  # market sessions on the NYSE calendar (False: always open)
    done_for_day: bool = False  # partially filled GTC orders go `done_for_day` at the close
    account_id: str = ACCOUNT_ID
    account_number: str = ACCOUNT_NUMBER


class Market:
    """What every account of one simulator shares: the clock, the symbols and their prices, the start time,
    and one lock and one scheduler, so a price move or a clock step reaches every account's books in one
    consistent pass (and a stepped clock walks one timeline)."""

    def __init__(self, clock: SimClock, symbols: Sequence[SymbolInfo]) -> None:
        self.clock = clock
        self.symbols: dict[str, SymbolInfo] = {s.symbol: s for s in symbols}
        self.lock = threading.RLock()
        self.scheduler = Scheduler()
        self.started_at = clock.now()
