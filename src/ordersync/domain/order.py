"""The order entity: Alpaca's statuses, sides, types and time in force, with Decimal quantities.

An ``Order`` is immutable: it changes only through ``lifecycle.apply`` (broker observations) or the
explicit local steps in ``lifecycle`` (submit sent, submit settled), which return a new ``Order``. That
keeps every state the store journals a plain value, comparable after a crash and restart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import TypeVar

from ordersync.domain.errors import InvalidOrder
from ordersync.domain.ids import BrokerOrderId, ClientOrderId, ExecutionId, Symbol, validate_client_order_id


class OrderStatus(StrEnum):
    """Alpaca's order statuses (docs/alpaca.md, 1.1) plus two local states before the broker knows."""

    # local: journaled, not yet sent / sent with the outcome not yet known (never "failed" on a timeout)
    INTENT = "intent"
    SUBMITTING = "submitting"
    # Alpaca
    PENDING_REVIEW = "pending_review"
    ACCEPTED = "accepted"
    PENDING_NEW = "pending_new"
    ACCEPTED_FOR_BIDDING = "accepted_for_bidding"
    HELD = "held"
    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    DONE_FOR_DAY = "done_for_day"
    CALCULATED = "calculated"
    STOPPED = "stopped"
    SUSPENDED = "suspended"
    PENDING_CANCEL = "pending_cancel"
    PENDING_REPLACE = "pending_replace"
    FILLED = "filled"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REPLACED = "replaced"
    REJECTED = "rejected"

    @property
    def is_terminal(self) -> bool:
        """True when Alpaca sends no more updates (done_for_day/calculated are not terminal)."""
        return self in TERMINAL_STATUSES

    @property
    def is_local(self) -> bool:
        """True before the broker has acknowledged the order."""
        return self in (OrderStatus.INTENT, OrderStatus.SUBMITTING)


TERMINAL_STATUSES = frozenset(
    {
        OrderStatus.FILLED,
        OrderStatus.CANCELED,
        OrderStatus.EXPIRED,
        OrderStatus.REPLACED,
        OrderStatus.REJECTED,
    }
)
BROKER_STATUSES = frozenset(s for s in OrderStatus if not s.is_local)


class OrderSide(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def opposite(self) -> OrderSide:
        """Return the side that closes a position opened by this side."""
        return OrderSide.SELL if self is OrderSide.BUY else OrderSide.BUY


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"
    TRAILING_STOP = "trailing_stop"


class TimeInForce(StrEnum):
    DAY = "day"
    GTC = "gtc"
    OPG = "opg"
    CLS = "cls"
    IOC = "ioc"
    FOK = "fok"


class OrderRole(StrEnum):
    """Why ordersync holds the order: a parent entry or one of its dependent (protective) orders."""

    ENTRY = "entry"
    TAKE_PROFIT = "tp"
    STOP_LOSS = "sl"
    OCO = "oco"  # take-profit + stop-loss on the same shares, reserved once
    EXIT = "exit"  # a market order that closes what protection has not (flatten / manual exit)


_E = TypeVar("_E", bound=StrEnum)


def to_decimal(value: object, what: str) -> Decimal:
    """Return ``value`` as a finite Decimal, via ``str`` so floats from JSON keep their printed value.

    Raises:
        InvalidOrder: when the value is not a finite number.
    """
    if isinstance(value, bool):
        raise InvalidOrder(f"{what} must be a number, was {value!r}")
    try:
        result = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError) as e:
        raise InvalidOrder(f"{what} must be a number, was {value!r}") from e
    if not result.is_finite():
        raise InvalidOrder(f"{what} must be finite, was {value!r}")
    return result


def _positive(value: object, what: str) -> Decimal:
    result = to_decimal(value, what)
    if result <= 0:
        raise InvalidOrder(f"{what} must be positive, was {result}")
    return result


def _enum(kind: type[_E], value: object, what: str) -> _E:
    try:
        return kind(str(value).lower())
    except ValueError as e:
        allowed = ", ".join(m.value for m in kind)
        raise InvalidOrder(f"unknown {what} {value!r} (expected one of: {allowed})") from e


@dataclass(frozen=True, slots=True)
class Order:
    """An order as ordersync knows it: what was asked, and the latest broker-confirmed state."""

    client_order_id: ClientOrderId
    symbol: Symbol
    side: OrderSide
    type: OrderType
    qty: Decimal
    time_in_force: TimeInForce
    created_at: datetime
    role: OrderRole = OrderRole.ENTRY
    parent_id: ClientOrderId | None = None
    group_id: ClientOrderId | None = None  # an OCO leg points at its group's primary (take-profit) order
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    stop_limit_price: Decimal | None = None  # the stop-loss leg's limit, for OCO children
    trail_price: Decimal | None = None  # a trailing stop's trail in dollars ...
    trail_percent: Decimal | None = None  # ... or in percent of the best price (exactly one of them)
    status: OrderStatus = OrderStatus.INTENT
    broker_order_id: BrokerOrderId | None = None
    leg_ids: tuple[BrokerOrderId, ...] = ()
    filled_qty: Decimal = Decimal(0)
    filled_avg_price: Decimal | None = None
    broker_updated_at: datetime | None = None
    execution_ids: frozenset[ExecutionId] = field(default_factory=frozenset)
    version: int = 0

    @property
    def is_terminal(self) -> bool:
        """True once the broker will send no more updates."""
        return self.status.is_terminal

    @property
    def is_open(self) -> bool:
        """True while the order may still fill or hold shares (unknown submits included)."""
        return not self.status.is_terminal

    @property
    def is_inflight(self) -> bool:
        """True while the broker's answer to our submit is not known yet."""
        return self.status is OrderStatus.SUBMITTING

    @property
    def leaves_qty(self) -> Decimal:
        """Return the quantity still working (0 once terminal)."""
        return Decimal(0) if self.is_terminal else self.qty - self.filled_qty

    @property
    def is_child(self) -> bool:
        """True for a dependent (protective) order."""
        return self.parent_id is not None


def new_order(
    *,
    client_order_id: str,
    symbol: str,
    side: object,
    type: object,
    qty: object,
    created_at: datetime,
    time_in_force: object = TimeInForce.DAY,
    limit_price: object | None = None,
    stop_price: object | None = None,
    role: OrderRole = OrderRole.ENTRY,
    parent_id: ClientOrderId | None = None,
    stop_limit_price: object | None = None,
    trail_price: object | None = None,
    trail_percent: object | None = None,
) -> Order:
    """Validate a request and return it as an ``Order`` in status ``intent``.

    Raises:
        InvalidOrder: for an empty symbol, a non-positive quantity, an unknown side/type/tif, or prices
            that do not fit the type (a limit without limit_price, a market order with one, ...).
    """
    try:
        coid = validate_client_order_id(client_order_id)
    except ValueError as e:
        raise InvalidOrder(str(e)) from e
    if not symbol or not str(symbol).strip() or not str(symbol).replace(".", "").replace("/", "").isalnum():
        raise InvalidOrder(f"symbol must be a ticker like 'AAPL', was {symbol!r}")
    order_type = _enum(OrderType, type, "order type")
    limit: Decimal | None
    stop: Decimal | None
    if role is OrderRole.OCO:  # one limit (take-profit) and one stop (stop-loss) leg: both prices
        if order_type is not OrderType.LIMIT or limit_price is None or stop_price is None:
            raise InvalidOrder("an OCO child is a limit order with both a limit_price and a stop_price")
        limit, stop = _positive(limit_price, "limit_price"), _positive(stop_price, "stop_price")
    else:
        limit, stop = _prices_for(order_type, limit_price, stop_price)
    trail = None if trail_price is None else _positive(trail_price, "trail_price")
    trail_pct = None if trail_percent is None else _positive(trail_percent, "trail_percent")
    trails = (trail is not None) + (trail_pct is not None)
    if trails != (1 if order_type is OrderType.TRAILING_STOP else 0):
        raise InvalidOrder("only a trailing_stop has a trail: exactly one of trail_price, trail_percent")
    return Order(
        client_order_id=coid,
        symbol=Symbol(str(symbol).upper()),
        side=_enum(OrderSide, side, "side"),
        type=order_type,
        qty=_positive(qty, "qty"),
        time_in_force=_enum(TimeInForce, time_in_force, "time_in_force"),
        created_at=created_at,
        role=role,
        parent_id=parent_id,
        limit_price=limit,
        stop_price=stop,
        stop_limit_price=None
        if stop_limit_price is None
        else _positive(stop_limit_price, "stop_limit_price"),
        trail_price=trail,
        trail_percent=trail_pct,
    )


# which price fields each order type needs (True) or forbids (False); same rules as alpaca-py's validator
_PRICE_FIELDS: dict[OrderType, tuple[bool, bool]] = {
    OrderType.MARKET: (False, False),
    OrderType.LIMIT: (True, False),
    OrderType.STOP: (False, True),
    OrderType.STOP_LIMIT: (True, True),
    OrderType.TRAILING_STOP: (False, False),
}


def _prices_for(
    order_type: OrderType, limit_price: object | None, stop_price: object | None
) -> tuple[Decimal | None, Decimal | None]:
    needs_limit, needs_stop = _PRICE_FIELDS[order_type]
    if needs_limit != (limit_price is not None):
        verb = "needs" if needs_limit else "must not have"
        raise InvalidOrder(f"a {order_type} order {verb} a limit_price")
    if needs_stop != (stop_price is not None):
        verb = "needs" if needs_stop else "must not have"
        raise InvalidOrder(f"a {order_type} order {verb} a stop_price")
    limit = None if limit_price is None else _positive(limit_price, "limit_price")
    stop = None if stop_price is None else _positive(stop_price, "stop_price")
    return limit, stop
