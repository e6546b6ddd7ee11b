"""The account's books: orders, symbols and prices, positions and cash, and the quantity reserved by orders.

`Book` is plain state plus queries; it never emits events or schedules anything (that is `exchange.py`). The
one rule that matters most here is Alpaca's reservation of shares by open sell orders (docs/alpaca.md
§6.3): `held_for_orders` is the quantity still to be sold by open sell orders, and `qty_available` is the
position minus it. A group of exits on the same shares (an OCO pair, or a bracket's take-profit and stop-loss
once the entry has filled) reserves its quantity once, not once per leg: the group counts for the largest
remaining leg. Bracket and OTO legs reserve nothing while the entry is still working, because there are no
shares yet."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from .model import Position, SimOrder, SymbolInfo
from .wire import CODE_UNPROCESSABLE, ApiError

__all__ = ["SHORT_COLLAR", "Book", "Reservation", "buy_collar"]

SHORT_COLLAR = Decimal("1.03")  # a short sale is valued at least 3 % above the price


def buy_collar(price: Decimal) -> Decimal:
    """The factor a market or stop buy is valued at above `price`: 4 % under $50, 2.5 % from $50 (Alpaca's
    orders docs, "Buying Power" and "Stop Order")."""
    return Decimal("1.04") if price < 50 else Decimal("1.025")


def _opens_short(order: SimOrder) -> bool:
    return order.side == "sell" and order.position_intent == "sell_to_open"


@dataclass(frozen=True)
class Reservation:
    """Shares of one symbol reserved by open sells: total held and the order ids holding them."""

    held: Decimal
    related_orders: list[str]


class Book:
    """Orders, symbols, positions and cash of the one simulated account."""

    def __init__(
        self,
        cash: Decimal,
        symbols: Iterable[SymbolInfo] | dict[str, SymbolInfo],
        positions: Iterable[Position] = (),
        margin_multiplier: int = 1,
    ) -> None:
        self.cash = cash
        self.margin_multiplier = margin_multiplier
        self.multiplier_cap = margin_multiplier  # the `max_margin_multiplier` configuration
        self.orders: dict[str, SimOrder] = {}
        self.by_client_id: dict[str, str] = {}
        # A dict is used as given: accounts of one market share its symbols and prices.
        self.symbols: dict[str, SymbolInfo] = (
            symbols if isinstance(symbols, dict) else {s.symbol: s for s in symbols}
        )
        self.positions: dict[str, Position] = {p.symbol: p for p in positions if p.qty != 0}

    def add(self, order: SimOrder) -> None:
        self.orders[order.id] = order
        self.by_client_id[order.client_order_id] = order.id

    def get(self, order_id: str) -> SimOrder:
        """Return the order with this id.

        Raises:
            ApiError: 404 40410000 "order not found".
        """
        order = self.orders.get(order_id)
        if order is None:
            raise ApiError.not_found()
        return order

    def get_by_client_id(self, client_order_id: str) -> SimOrder:
        order_id = self.by_client_id.get(client_order_id)
        if order_id is None:
            raise ApiError.not_found()
        return self.orders[order_id]

    def symbol(self, symbol: str) -> SymbolInfo:
        """Return a tradable symbol.

        Raises:
            ApiError: 422 42210000 when the symbol is unknown ([UNCONFIRMED] wording).
        """
        info = self.symbols.get(symbol)
        if info is None:
            raise ApiError.unprocessable(f'asset "{symbol}" not found', code=CODE_UNPROCESSABLE)
        return info

    def price(self, symbol: str) -> Decimal:
        return self.symbol(symbol).price

    def open_orders(self, symbol: str | None = None) -> list[SimOrder]:
        return [o for o in self.orders.values() if o.is_open and (symbol is None or o.symbol == symbol)]

    def position_qty(self, symbol: str) -> Decimal:
        position = self.positions.get(symbol)
        return position.qty if position else Decimal(0)

    def root(self, order: SimOrder) -> SimOrder:
        return self.orders[order.group_id] if order.group_id else order

    def siblings(self, order: SimOrder) -> list[SimOrder]:
        """Other exit legs of the same group (empty for simple orders and entries)."""
        if order.group_id is None or order.role == "entry":
            return []
        root = self.root(order)
        members = [root, *(self.orders[i] for i in root.leg_ids)]
        return [o for o in members if o.id != order.id and o.role != "entry"]

    def exits_active(self, order: SimOrder) -> bool:
        """True when an exit leg's shares exist: OCO always, bracket/OTO once the entry has fully filled."""
        root = self.root(order)
        return root.role != "entry" or root.status == "filled"

    def reserves_shares(self, order: SimOrder) -> bool:
        if order.replacing:
            return False  # its predecessor reserves until the replace is confirmed
        return order.side == "sell" and order.is_open and (order.role == "entry" or self.exits_active(order))

    def reservation(self, symbol: str, exclude: Iterable[str] = ()) -> Reservation:
        """Shares of `symbol` held by open sell orders, counting each exit group once."""
        skipped = set(exclude)
        per_group: dict[str, Decimal] = {}
        for order in self.open_orders(symbol):
            if order.id in skipped or not self.reserves_shares(order):
                continue
            key = self.root(order).id if order.role != "entry" else order.id
            per_group[key] = max(per_group.get(key, Decimal(0)), order.remaining)
        return Reservation(sum(per_group.values(), Decimal(0)), list(per_group))

    @property
    def multiplier(self) -> int:
        """The multiplier in force: the account's, capped by the `max_margin_multiplier` configuration."""
        return min(self.margin_multiplier, self.multiplier_cap)

    def order_value(
        self, side: str, kind: str, qty: Decimal, limit: Decimal | None, stop: Decimal | None, symbol: str
    ) -> Decimal:
        """What an opening order costs in buying power, as Alpaca values it (docs/simulator.md, "Account
        configuration"): a buy at its limit; a market (or trailing) buy 4 % above the price under $50 and
        2.5 % above from $50; a stop buy the same collar above its stop; a short sale at the larger of its
        limit and 3 % above the price."""
        price = self.price(symbol)
        if side == "sell":
            return qty * max(limit or Decimal(0), price * SHORT_COLLAR)
        if kind in ("limit", "stop_limit") and limit is not None:
            return qty * limit
        base = stop if kind == "stop" and stop is not None else price
        return qty * base * buy_collar(base)

    def buying_power(self) -> Decimal:
        """What new buys may cost: cash (a cash account) or multiplier x equity less the market value already
        held (a margin account, 2x or 4x), less the value of open buys and open short sales."""
        reserved = sum(
            (
                self.order_value(o.side, o.type, o.remaining, o.limit_price, o.stop_price, o.symbol)
                for o in self.open_orders()
                if not o.replacing and (o.side == "buy" or (o.role == "entry" and _opens_short(o)))
            ),
            Decimal(0),
        )
        if self.multiplier == 1:
            return self.cash - reserved
        exposure = sum((abs(p.qty) * self.price(p.symbol) for p in self.positions.values()), Decimal(0))
        return max(self.multiplier * self.equity() - exposure - reserved, Decimal(0))

    def equity(self) -> Decimal:
        """Cash plus the market value of every position (short positions count negative)."""
        return self.cash + sum((p.qty * self.price(p.symbol) for p in self.positions.values()), Decimal(0))

    def apply_fill(self, order: SimOrder, qty: Decimal, price: Decimal) -> Position:
        """Book one execution into the position and cash; return the position after it."""
        position = self.positions.setdefault(order.symbol, Position(order.symbol))
        position.apply_fill(order.side, qty, price)
        self.cash += -qty * price if order.side == "buy" else qty * price
        if position.qty == 0:
            del self.positions[order.symbol]
        return position
