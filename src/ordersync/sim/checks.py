"""Account-dependent refusals of a new order, with Alpaca's exact bodies (docs/alpaca.md §4, §6).

Run under the books lock, in this order: a bracket must open or add to a position; a sell needs shares that
no other open sell holds (403 40310000 "insufficient qty available ..."); a sell while flat with a buy open
is refused (403 40310000 "cannot open a short sell while a long buy order is open"); shorting is off unless
the scenario enables it; a simple order that could trade against the account's own opposite open order is a
potential wash trade (403); a buy must fit the buying power; exit legs must sit a cent beyond the base price.
These are the refusals the seed incident is made of, so their bodies are exact, numbers as strings."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from .book import Book
from .model import SimOrder
from .order_request import OrderSpec
from .wire import CODE_UNPROCESSABLE, ApiError, fmt_decimal

__all__ = ["Policy", "check_new_order"]

CENT = Decimal("0.01")


@dataclass(frozen=True)
class Policy:
    """Account settings that change which orders are refused."""

    shorting_enabled: bool = False
    wash_trade_check: bool = True


def check_new_order(
    book: Book, policy: Policy, spec: OrderSpec, qty: Decimal, exclude: Iterable[str] = ()
) -> None:
    """Refuse `spec` (for `qty` shares) if the account state forbids it; `exclude` = orders being replaced.

    Raises:
        ApiError: 403 40310000 or 422 42210000 with Alpaca's body.
    """
    skipped = set(exclude)
    position = book.position_qty(spec.symbol)
    _check_entry_class(spec, position, policy)
    if spec.side == "sell":
        _check_sell_quantity(book, policy, spec, qty, position, skipped)
    else:
        _check_buy_against_short(book, spec, position, skipped)
    if policy.wash_trade_check:
        _check_wash_trade(book, spec, skipped)
    if spec.side == "buy" or position <= 0:  # a buy, or a sale that opens or adds to a short
        _check_buying_power(book, spec, qty)
    _check_base_price(book, spec)


def _check_entry_class(spec: OrderSpec, position: Decimal, policy: Policy) -> None:
    closes = (spec.side == "sell" and position > 0) or (spec.side == "buy" and position < 0)
    if spec.order_class in ("bracket", "oto") and closes:
        raise ApiError.unprocessable("bracket orders must be entry orders", code=CODE_UNPROCESSABLE)
    # OCO is exit-only; while flat or on the same side it would open a position ([UNCONFIRMED] wording).
    # Without shorting the insufficient-qty refusal below answers first, as it would for any flat sell.
    if spec.order_class == "oco" and not closes and policy.shorting_enabled:
        raise ApiError.unprocessable("oco orders must be exit orders", code=CODE_UNPROCESSABLE)


def _check_sell_quantity(
    book: Book, policy: Policy, spec: OrderSpec, qty: Decimal, position: Decimal, skipped: set[str]
) -> None:
    if position > 0:
        reservation = book.reservation(spec.symbol, skipped)
        if qty > position - reservation.held:
            raise _insufficient_qty(spec.symbol, qty, position, reservation.held, reservation.related_orders)
        return
    if position < 0:
        return  # adding to a short; only reachable with shorting enabled
    open_buys = [o.id for o in _opposite_open(book, spec, skipped)]
    if open_buys:
        # The extra fields on this message are [UNCONFIRMED]: Alpaca documents only the code and message.
        # They are filled as for insufficient qty, with related_orders = the open buys, so a client that reads
        # them learns why; existing_qty "0" tells the parent has not filled.
        raise ApiError.forbidden(
            "cannot open a short sell while a long buy order is open",
            symbol=spec.symbol,
            existing_qty="0",
            held_for_orders="0",
            available="0",
            related_orders=open_buys,
        )
    if not policy.shorting_enabled:
        raise _insufficient_qty(spec.symbol, qty, Decimal(0), Decimal(0), [])


def _check_buy_against_short(book: Book, spec: OrderSpec, position: Decimal, skipped: set[str]) -> None:
    # The mirror rule (docs/alpaca.md §4): no long buy while flat with a short sell open.
    if position == 0 and any(_opposite_open(book, spec, skipped)):
        raise ApiError.forbidden("cannot open a long buy while a short sell order is open")


def _insufficient_qty(
    symbol: str, requested: Decimal, existing: Decimal, held: Decimal, related: list[str]
) -> ApiError:
    available = max(existing - held, Decimal(0))
    return ApiError.forbidden(
        f"insufficient qty available for order (requested: {fmt_decimal(requested)}, "
        f"available: {fmt_decimal(available)})",
        symbol=symbol,
        existing_qty=fmt_decimal(existing),
        held_for_orders=fmt_decimal(held),
        available=fmt_decimal(available),
        related_orders=related,
    )


def _opposite_open(book: Book, spec: OrderSpec, skipped: set[str]) -> list[SimOrder]:
    return [
        o
        for o in book.open_orders(spec.symbol)
        if o.side != spec.side
        and o.id not in skipped
        and o.working_status != "held"
        and o.role == "entry"
        and not o.replacing
    ]


def _check_wash_trade(book: Book, spec: OrderSpec, skipped: set[str]) -> None:
    # New complex orders and trailing stops are exempt (docs/alpaca.md §6.3). Whether resting legs
    # and trailing stops count against a new simple order is [UNCONFIRMED]; they count here (the stricter
    # choice, so a client that relies on them not counting fails against the simulator first). Held legs are
    # not at the venue, so they do not count.
    if spec.order_class != "simple" or spec.type == "trailing_stop":
        return
    for other in book.open_orders(spec.symbol):
        if (
            other.side == spec.side
            or other.id in skipped
            or other.working_status == "held"
            or other.replacing
        ):
            continue
        if _could_cross(spec.side, spec.type, spec.limit_price, other.type, other.limit_price):
            raise ApiError.forbidden("potential wash trade detected. use complex orders")


def _could_cross(
    side: str, kind: str, limit: Decimal | None, other_kind: str, other_limit: Decimal | None
) -> bool:
    # Opposing market/stop orders are always refused; opposing limits when the buy limit >= the sell limit.
    if kind != "limit" or other_kind != "limit" or limit is None or other_limit is None:
        return True
    buy, sell = (limit, other_limit) if side == "buy" else (other_limit, limit)
    return buy >= sell


def _check_buying_power(book: Book, spec: OrderSpec, qty: Decimal) -> None:
    if spec.order_class == "oco":
        return  # exit-only: it never opens a position
    cost = book.order_value(spec.side, spec.type, qty, spec.limit_price, spec.stop_price, spec.symbol)
    power = book.buying_power()
    if cost > power:
        raise ApiError.forbidden(
            "insufficient buying power", buying_power=fmt_decimal(power), cost_basis=fmt_decimal(cost)
        )


def _check_base_price(book: Book, spec: OrderSpec) -> None:
    if spec.order_class == "simple":
        return
    if spec.order_class == "oco":
        base = spec.take_profit or spec.limit_price or book.price(spec.symbol)
    else:
        base = spec.limit_price or book.price(spec.symbol)
    exits_sell = spec.side == "buy" if spec.order_class != "oco" else spec.side == "sell"
    sign = 1 if exits_sell else -1
    if spec.take_profit is not None and spec.order_class != "oco" and sign * (spec.take_profit - base) < CENT:
        op = ">=" if exits_sell else "<="
        raise _base_price_error(
            f"take_profit.limit_price must be {op} base_price {'+' if exits_sell else '-'} 0.01", base
        )
    if spec.stop_loss is not None and sign * (base - spec.stop_loss.stop_price) < CENT:
        op = "<=" if exits_sell else ">="
        raise _base_price_error(
            f"stop_loss.stop_price must be {op} base_price {'-' if exits_sell else '+'} 0.01", base
        )


def _base_price_error(message: str, base: Decimal) -> ApiError:
    return ApiError.unprocessable(message, code=CODE_UNPROCESSABLE, base_price=fmt_decimal(base))
