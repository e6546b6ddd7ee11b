"""alpaca-py order requests for a scenario parent, shared by the baseline platforms."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from alpaca.trading.enums import OrderClass, OrderSide, TimeInForce
from alpaca.trading.requests import (
    LimitOrderRequest,
    MarketOrderRequest,
    OrderRequest,
    StopLossRequest,
    TakeProfitRequest,
)

from ordersync.domain.protection import tick_round
from ordersync.sim.scenarios import Scenario


def entry_request(parent: Any, **extra: Any) -> OrderRequest:
    """Return the parent's entry order (market or limit), with ``extra`` fields (order class, legs)."""
    common = {
        "symbol": parent.symbol,
        "qty": float(parent.qty),
        "side": OrderSide(parent.side),
        "client_order_id": parent.id,
        "time_in_force": TimeInForce(parent.time_in_force),
        **extra,
    }
    if parent.type == "limit":
        return LimitOrderRequest(**common, limit_price=float(parent.limit_price))
    return MarketOrderRequest(**common)


def exit_side(parent: Any) -> OrderSide:
    """Return the side that closes the parent's position."""
    return OrderSide.SELL if parent.side == "buy" else OrderSide.BUY


@dataclass(frozen=True)
class Exits:
    """A parent's exits at concrete prices (offsets resolved against a base price)."""

    take_profit: Decimal | None = None
    stop_price: Decimal | None = None
    stop_limit: Decimal | None = None  # a stop-limit's limit
    trail_percent: Decimal | None = None  # a trailing stop (percent or price)
    trail_price: Decimal | None = None

    @property
    def trailing(self) -> bool:
        return self.trail_percent is not None or self.trail_price is not None


def resolve_exits(parent: Any, base: Decimal) -> Exits:
    """Return the parent's exits; an offset is a fraction of ``base`` (the fill price) away, protectively."""
    sign = 1 if parent.side == "buy" else -1
    tp, sl = parent.take_profit, parent.stop_loss

    def away(offset: Decimal, direction: int) -> Decimal:
        return tick_round(base * (1 + direction * Decimal(offset)))

    take_profit = None
    if tp is not None:
        take_profit = Decimal(tp.limit_price) if tp.limit_price is not None else away(tp.offset, sign)
    if sl is None:
        return Exits(take_profit=take_profit)
    if sl.trail_percent is not None or sl.trail_price is not None:
        return Exits(take_profit, trail_percent=sl.trail_percent, trail_price=sl.trail_price)
    stop = Decimal(sl.stop_price) if sl.stop_price is not None else away(sl.offset, -sign)
    limit = sl.limit_price
    if limit is None and sl.limit_offset is not None:
        limit = away(sl.limit_offset, -sign)
    return Exits(take_profit, stop, None if limit is None else Decimal(limit))


def entry_base(parent: Any, market_price: Decimal) -> Decimal:
    """The price an exit offset is taken from before any fill is known: the entry limit, else the market."""
    return Decimal(parent.limit_price) if parent.limit_price is not None else market_price


def bracket_request(parent: Any, market_price: Decimal) -> tuple[OrderRequest, str | None]:
    """Return the parent as one Alpaca bracket (both exits) or OTO (one exit), and a note on what could not
    ride with it: the legs' prices are fixed at submission (an offset is taken from the entry's limit, or
    the market for a market entry), and a trailing stop cannot be a bracket leg (docs/alpaca.md §6)."""
    exits = resolve_exits(parent, entry_base(parent, market_price))
    extra: dict[str, Any] = {}
    note = None
    if exits.take_profit is not None:
        extra["take_profit"] = TakeProfitRequest(limit_price=float(exits.take_profit))
    if exits.trailing:
        note = f"{parent.id}: a trailing stop cannot be a bracket leg; sent without it"
    elif exits.stop_price is not None:
        extra["stop_loss"] = StopLossRequest(
            stop_price=float(exits.stop_price),
            limit_price=None if exits.stop_limit is None else float(exits.stop_limit),
        )
    if not extra:
        return entry_request(parent), note
    order_class = OrderClass.BRACKET if len(extra) == 2 else OrderClass.OTO
    return entry_request(parent, order_class=order_class, **extra), note


def parents_of(scenario: Scenario) -> list[Any]:
    """Return the scenario's parents in submission order."""
    return sorted(scenario.parents, key=lambda p: (p.submit_at_s, p.id))
