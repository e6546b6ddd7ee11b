"""Parsing and static validation of order requests (POST /v2/orders and PATCH /v2/orders/{id} bodies).

Everything that can be decided from the request alone lives here: required fields, enums, positive
quantities, which price fields each type and class needs, and the sub-penny rule. What depends on the account
(held quantity, short sells, wash trades, base prices) is checked by `checks.py` under the books lock.

Messages follow Alpaca's where they are known (docs/alpaca.md §4); the wording of the per-field messages
("qty must be > 0" and the like) is [UNCONFIRMED] and only the code (422 40010001) is relied upon. Sub-penny
prices get 422 42210000 with Alpaca's documented message."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .model import ORDER_CLASSES, ORDER_TYPES, SIDES, TIME_IN_FORCES
from .wire import CODE_UNPROCESSABLE, ApiError, JsonDict, parse_decimal

__all__ = [
    "QTY_STEP",
    "OrderSpec",
    "ReplaceSpec",
    "StopLossSpec",
    "is_fractional",
    "parse_order_request",
    "parse_replace_request",
]

MAX_CLIENT_ORDER_ID = 128
MAX_SYMBOL_LEN = 32
QTY_DECIMALS = 9
QTY_STEP = Decimal(1).scaleb(-QTY_DECIMALS)


@dataclass(frozen=True)
class StopLossSpec:
    stop_price: Decimal
    limit_price: Decimal | None = None


@dataclass(frozen=True)
class OrderSpec:
    """A statically valid order request."""

    symbol: str
    side: str
    type: str
    time_in_force: str
    qty: Decimal | None
    notional: Decimal | None = None
    order_class: str = "simple"
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    trail_price: Decimal | None = None
    trail_percent: Decimal | None = None
    extended_hours: bool = False
    client_order_id: str | None = None
    take_profit: Decimal | None = None
    stop_loss: StopLossSpec | None = None


@dataclass(frozen=True)
class ReplaceSpec:
    """A PATCH body: only the fields Alpaca lets you change."""

    qty: Decimal | None = None
    time_in_force: str | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    trail: Decimal | None = None
    client_order_id: str | None = None


def parse_order_request(body: object) -> OrderSpec:
    """Validate a POST /v2/orders body.

    Raises:
        ApiError: 400 for a body that is not a JSON object, 422 40010001 / 42210000 for invalid fields.
    """
    data = _require_object(body)
    order_class = _enum(data.get("order_class") or "simple", ORDER_CLASSES, "order_class")
    spec = OrderSpec(
        symbol=_symbol(data.get("symbol")),
        side=_enum(data.get("side"), SIDES, "side"),
        type=_enum(data.get("type"), ORDER_TYPES, "order type"),
        time_in_force=_enum(data.get("time_in_force"), TIME_IN_FORCES, "time_in_force"),
        qty=_opt_positive(data, "qty"),
        notional=_opt_positive(data, "notional"),
        order_class=order_class,
        limit_price=_opt_price(data, "limit_price"),
        stop_price=_opt_price(data, "stop_price"),
        trail_price=_opt_positive(data, "trail_price"),
        trail_percent=_opt_positive(data, "trail_percent"),
        extended_hours=_bool(data.get("extended_hours", False), "extended_hours"),
        client_order_id=_client_order_id(data.get("client_order_id")),
        take_profit=_take_profit(data.get("take_profit")),
        stop_loss=_stop_loss(data.get("stop_loss")),
    )
    _check_quantity(spec)
    _check_prices_for_type(spec)
    _check_class(spec)
    return spec


def parse_replace_request(body: object) -> ReplaceSpec:
    """Validate a PATCH /v2/orders/{id} body.

    Raises:
        ApiError: 422 for invalid fields.
    """
    data = _require_object(body)
    tif = data.get("time_in_force")
    return ReplaceSpec(
        qty=_opt_positive(data, "qty"),
        time_in_force=None if tif is None else _enum(tif, TIME_IN_FORCES, "time_in_force"),
        limit_price=_opt_price(data, "limit_price"),
        stop_price=_opt_price(data, "stop_price"),
        trail=_opt_positive(data, "trail"),
        client_order_id=_client_order_id(data.get("client_order_id")),
    )


def check_sub_penny(field: str, price: Decimal) -> None:
    """Refuse prices finer than a cent (≥ $1.00) or 1/100 cent (< $1.00), as Alpaca documents.

    Raises:
        ApiError: 422 42210000.
    """
    places = 2 if price >= 1 else 4
    if price != price.quantize(Decimal(1).scaleb(-places)):
        raise ApiError.unprocessable(
            f"invalid {field} {price}. sub-penny increment does not fulfill minimum pricing criteria",
            code=CODE_UNPROCESSABLE,
        )


def _require_object(body: object) -> JsonDict:
    if not isinstance(body, dict):
        raise ApiError.bad_body()
    return body


def _enum(value: Any, allowed: tuple[str, ...], field: str) -> str:
    if value is None:
        raise ApiError.unprocessable(f"{field} is required")
    if not isinstance(value, str) or value not in allowed:
        shown = repr(value)
        raise ApiError.unprocessable(f"invalid {field}: {shown if len(shown) <= 40 else shown[:37] + '...'}")
    return value


def _symbol(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ApiError.unprocessable("symbol is required")
    if len(value) > MAX_SYMBOL_LEN:
        raise ApiError.unprocessable("invalid symbol")
    return value.strip().upper()


def _bool(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ApiError.unprocessable(f"invalid {field}")


def _opt_positive(data: JsonDict, field: str) -> Decimal | None:
    raw = data.get(field)
    if raw is None:
        return None
    value = parse_decimal(raw, field)
    if value <= 0:
        raise ApiError.unprocessable(f"{field} must be > 0")
    return value


def _opt_price(data: JsonDict, field: str, prefix: str = "") -> Decimal | None:
    value = _opt_positive(data, field)
    if value is not None:
        check_sub_penny(prefix + field, value)
    return value


def _client_order_id(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ApiError.unprocessable("invalid client_order_id")
    if len(value) > MAX_CLIENT_ORDER_ID:
        raise ApiError.unprocessable(f"client_order_id must be no more than {MAX_CLIENT_ORDER_ID} characters")
    return value


def _take_profit(value: Any) -> Decimal | None:
    if value is None:
        return None
    leg = _require_leg(value, "take_profit")
    price = _opt_price(leg, "limit_price", "take_profit.")
    if price is None:
        raise ApiError.unprocessable("take_profit.limit_price is required")
    return price


def _stop_loss(value: Any) -> StopLossSpec | None:
    if value is None:
        return None
    leg = _require_leg(value, "stop_loss")
    stop = _opt_price(leg, "stop_price", "stop_loss.")
    if stop is None:
        raise ApiError.unprocessable("stop_loss.stop_price is required")
    return StopLossSpec(stop, _opt_price(leg, "limit_price", "stop_loss."))


def _require_leg(value: Any, field: str) -> JsonDict:
    if not isinstance(value, dict):
        raise ApiError.unprocessable(f"invalid {field}")
    return value


def is_fractional(spec: OrderSpec) -> bool:
    """A notional order, or a quantity that is not a whole number of shares."""
    return spec.notional is not None or (spec.qty is not None and spec.qty != spec.qty.to_integral_value())


def _check_quantity(spec: OrderSpec) -> None:
    # Fractional and notional orders (docs/alpaca.md, "Fractional and notional orders"): DAY only, simple
    # only, notional only on market orders; a quantity has at most 9 decimals, a notional at most 2.
    if (spec.qty is None) == (spec.notional is None):
        raise ApiError.unprocessable("exactly one of qty or notional is required")
    if spec.qty is not None and spec.qty != spec.qty.quantize(QTY_STEP):
        raise ApiError.unprocessable(f"qty must have at most {QTY_DECIMALS} decimal places")
    if spec.notional is not None:
        if spec.notional != spec.notional.quantize(Decimal("0.01")):
            raise ApiError.unprocessable("notional must have at most 2 decimal places")
        if spec.type != "market":
            raise ApiError.unprocessable("notional orders must be market orders", code=CODE_UNPROCESSABLE)
    if not is_fractional(spec):
        return
    if spec.time_in_force != "day":
        raise ApiError.unprocessable("fractional orders must be DAY orders", code=CODE_UNPROCESSABLE)
    if spec.order_class != "simple":
        raise ApiError.unprocessable("fractional orders must be simple orders", code=CODE_UNPROCESSABLE)
    if spec.type == "trailing_stop":
        raise ApiError.unprocessable(
            "fractional orders must be market, limit, stop or stop_limit orders", code=CODE_UNPROCESSABLE
        )


# Which price fields each order type requires (True) or forbids (False); None = trailing stops, checked apart.
_PRICE_RULES: dict[str, tuple[bool, bool] | None] = {
    "market": (False, False),
    "limit": (True, False),
    "stop": (False, True),
    "stop_limit": (True, True),
    "trailing_stop": None,
}


def _check_prices_for_type(spec: OrderSpec) -> None:
    rule = _PRICE_RULES[spec.type]
    if rule is None:
        if (spec.trail_price is None) == (spec.trail_percent is None):
            raise ApiError.unprocessable(
                "trailing_stop orders require exactly one of trail_price or trail_percent"
            )
        if spec.limit_price is not None or spec.stop_price is not None:
            raise ApiError.unprocessable("trailing_stop orders take no limit_price or stop_price")
        return
    if spec.trail_price is not None or spec.trail_percent is not None:
        raise ApiError.unprocessable(
            f"trail_price/trail_percent are only for trailing_stop orders, not {spec.type}"
        )
    needs_limit, needs_stop = rule
    oco_limit_from_leg = spec.order_class == "oco" and spec.take_profit is not None
    if needs_limit and spec.limit_price is None and not oco_limit_from_leg:
        raise ApiError.unprocessable(f"limit_price is required for {spec.type} orders")
    if not needs_limit and spec.limit_price is not None:
        raise ApiError.unprocessable(f"limit_price is not allowed for {spec.type} orders")
    if needs_stop != (spec.stop_price is not None):
        verb = "is required" if needs_stop else "is not allowed"
        raise ApiError.unprocessable(f"stop_price {verb} for {spec.type} orders")
    if spec.extended_hours and (spec.type != "limit" or spec.time_in_force != "day"):
        raise ApiError.unprocessable("extended hours order must be DAY limit orders")


def _check_class(spec: OrderSpec) -> None:
    if spec.order_class == "simple":
        return
    if spec.time_in_force not in ("day", "gtc"):
        raise ApiError.unprocessable(f"{spec.order_class} orders must be day or gtc")
    if spec.extended_hours:
        raise ApiError.unprocessable(f"{spec.order_class} orders cannot be extended hours")
    has_tp, has_sl = spec.take_profit is not None, spec.stop_loss is not None
    if spec.order_class == "oco":
        if spec.type != "limit":
            raise ApiError.unprocessable("oco orders must be limit orders")
        if not (has_tp and has_sl):
            raise ApiError.unprocessable("oco orders require take_profit and stop_loss")
        return
    if spec.type not in ("market", "limit"):
        raise ApiError.unprocessable(f"{spec.order_class} orders must be market or limit orders")
    if spec.order_class == "bracket" and not (has_tp and has_sl):
        raise ApiError.unprocessable("bracket orders require take_profit and stop_loss")
    if spec.order_class == "oto" and has_tp == has_sl:
        raise ApiError.unprocessable("oto orders require exactly one of take_profit or stop_loss")
    if spec.take_profit is not None and spec.stop_loss is not None:
        _check_exit_order(spec.side, spec.take_profit, spec.stop_loss.stop_price)


def _check_exit_order(side: str, take_profit: Decimal, stop: Decimal) -> None:
    wrong = take_profit <= stop if side == "buy" else take_profit >= stop
    if wrong:
        relation = "above" if side == "buy" else "below"
        raise ApiError.unprocessable(f"take_profit.limit_price must be {relation} stop_loss.stop_price")
