"""A fast path from a trade_updates frame to an observation, exact or declined.

The stream client used to validate every message with alpaca-py's pydantic ``TradeUpdate`` (and its
``Order``) and then map it (``mapping.observation``): about three quarters of the event path's parse
cost. ``fast_observation`` reads the decoded message directly into the domain's types, and it is a
*strict subset* of that slow path: it accepts only messages whose every field alpaca-py would validate
(the shapes Alpaca and the simulator send: RFC 3339 times, canonical lowercase UUIDs, known enum
values, decimal strings or JSON numbers, ``null``), and then builds exactly what ``observation`` would.
Anything else (an unusual timestamp form, an uppercase UUID, a boolean where a number goes, a status
alpaca-py does not know, a missing field) raises ``Declined`` and the caller takes the slow path, which
decides, as before, between a valid observation and a malformed message. So behaviour cannot differ: a
message is either mapped the same way or handed to the code that always handled it
(tests/unit/brokers/test_fast_parse.py compares both paths field by field on simulator frames).

Frames are decoded with orjson when it is installed (``pip install orjson``), else with ``json``; a
frame orjson refuses (NaN, integers beyond 64 bits, lone surrogates) is decoded again by ``json``, which
is what the stream always used. (orjson reads an integer beyond 64 bits as a float where json keeps an
int: the same number wherever alpaca-py reads one, since it turns integers into floats there.)
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from operator import itemgetter
from typing import Any

from alpaca.trading.enums import (
    AssetClass,
    OrderClass,
    OrderSide,
    OrderType,
    PositionIntent,
    TimeInForce,
)
from alpaca.trading.enums import OrderStatus as AlpacaStatus
from alpaca.trading.models import Order as AlpacaOrder
from pydantic import TypeAdapter

from ordersync.brokers.alpaca.mapping import STATUS_MAP, dec, flatten, order_view
from ordersync.domain.events import BrokerOrderView, Execution, OrderObserved, Source
from ordersync.domain.ids import BrokerOrderId, ClientOrderId, ExecutionId, Symbol
from ordersync.domain.order import OrderSide as Side
from ordersync.domain.order import OrderType as Type

orjson: Any
try:  # optional, and typed as Any so the code type-checks with or without it installed
    orjson = importlib.import_module("orjson")
except ImportError:  # pragma: no cover - depends on the installation
    orjson = None


class Declined(Exception):
    """The fast path does not vouch for this message: use alpaca-py's model (the slow path)."""


def _decode_json(frame: str | bytes) -> Any:
    return json.loads(frame)


def _decode_orjson(frame: str | bytes) -> Any:
    try:
        return orjson.loads(frame)
    except orjson.JSONDecodeError:
        return json.loads(frame)  # what json accepts and orjson does not; json's error otherwise


decode: Callable[[str | bytes], Any] = _decode_json if orjson is None else _decode_orjson
"""Decode one frame (orjson when installed, with ``json`` as the arbiter of what orjson refuses)."""

# what pydantic parses to the same instant and offset as datetime.fromisoformat (fractions beyond
# microseconds are truncated by both); anything else is declined
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})?")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")  # a decimal string that float() and pydantic read alike

_STATUS = {s.value: STATUS_MAP[s] for s in AlpacaStatus}
_ASSET_CLASSES = frozenset(e.value for e in AssetClass)
_ORDER_CLASSES = frozenset(e.value for e in OrderClass)
_ORDER_TYPES = frozenset(e.value for e in OrderType)
_SIDES = frozenset(e.value for e in OrderSide)
# a view carries the domain's members: looked up by value, no Enum call per event
_SIDE: dict[str | None, Side] = {e.value: e for e in Side}
_TYPE: dict[str | None, Type] = {e.value: e for e in Type}
_TIFS = frozenset(e.value for e in TimeInForce)
_INTENTS = frozenset(e.value for e in PositionIntent)
_OPTIONAL_TIMES = ("expired_at", "expires_at", "canceled_at", "failed_at", "replaced_at")
_OPTIONAL_TEXT = ("notional", "trail_percent", "trail_price", "hwm")
# values already checked, bounded (cleared when full): a stream repeats them from event to event
_TIME_CACHE: dict[str, datetime] = {}
_UUIDS_SEEN: set[str] = set()
_FLOATS: dict[str, float] = {}
_FLOAT_DECIMALS: dict[str, Decimal] = {}
# what ``_static`` checks (the last three are returned), and the combinations that passed
_STATIC = itemgetter(
    *_OPTIONAL_TIMES,
    "asset_id",
    *_OPTIONAL_TEXT,
    "asset_class",
    "position_intent",
    "time_in_force",
    "order_type",
    "order_class",
    "type",
    "side",
)
_STATIC_SEEN: set[tuple[Any, ...]] = set()


def _time(value: object) -> datetime:
    if type(value) is not str:
        raise Declined("time")
    cached = _TIME_CACHE.get(value)
    if cached is not None:
        return cached
    if _TIME.fullmatch(value) is None:
        raise Declined("time")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as e:  # out of range: the slow path names the error
        raise Declined("time") from e
    if len(_TIME_CACHE) > 4096:  # a stream's times repeat (created, submitted, updated): keep a few
        _TIME_CACHE.clear()
    _TIME_CACHE[value] = parsed
    return parsed


def _uuid(value: object) -> str:
    if type(value) is not str:
        raise Declined("uuid")
    if value not in _UUIDS_SEEN:  # an order's id and asset id come with each of its events
        if _UUID.fullmatch(value) is None:
            raise Declined("uuid")
        if len(_UUIDS_SEEN) > 8192:
            _UUIDS_SEEN.clear()
        _UUIDS_SEEN.add(value)
    return value  # canonical already: str(UUID(value)) == value


def _optional_uuid(value: object) -> str | None:
    return None if value is None else _uuid(value)


def _enum(value: object, allowed: frozenset[str]) -> str | None:
    if value is None or value == "":  # alpaca-py's Order reads "" as None in its optional enums
        return None
    if type(value) is not str or value not in allowed:
        raise Declined("enum")
    return value


def _str_or_float(value: object) -> str | float | None:
    # alpaca-py's Optional[Union[str, float]]: a string stays as it is, a JSON number becomes a float
    if value is None or isinstance(value, str | float):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    raise Declined("number")


def _float(value: object) -> float | None:
    # alpaca-py's Optional[float] (TradeUpdate's qty, price, position_qty)
    if value is None or isinstance(value, float):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        number = _FLOATS.get(value)  # quantities and prices repeat
        if number is None and _NUMBER.fullmatch(value) is not None:
            if len(_FLOATS) > 4096:
                _FLOATS.clear()
            number = _FLOATS[value] = float(value)
        if number is not None:
            return number
    raise Declined("float")


def _static(order: dict[str, Any]) -> tuple[str, str | None, str | None]:
    """Check the fields an order keeps from event to event; return its order class, type and side.

    The same few combinations come again and again on a stream, so a combination checked once is
    remembered. Only fields whose valid values are strings or null are in it: a string equals only a
    string and null only null, so a combination equal to one that passed is valid in every field.
    """
    try:
        key = _STATIC(order)
        if key in _STATIC_SEEN:
            order_class, order_type, side = key[-3:]
            return order_class or "simple", order_type or None, side or None
    except (KeyError, TypeError):  # a field missing (the checks below decide) or not hashable (declined)
        key = None
    for name in _OPTIONAL_TIMES:
        value = order.get(name)
        if value is not None:
            _time(value)
    asset_id = order.get("asset_id")
    if asset_id != "":  # alpaca-py's Order reads "" as None in asset_id, symbol and the enums below
        _optional_uuid(asset_id)
    for name in _OPTIONAL_TEXT:
        value = order.get(name)
        if value is not None and type(value) is not str:
            raise Declined(name)
    _enum(order.get("asset_class"), _ASSET_CLASSES)
    _enum(order.get("position_intent"), _INTENTS)
    if _enum(order.get("time_in_force"), _TIFS) is None:
        raise Declined("time_in_force")
    _enum(order.get("order_type"), _ORDER_TYPES)
    order_class = order.get("order_class", "")
    order_class = _enum("simple" if order_class == "" else order_class, _ORDER_CLASSES)
    if order_class is None:  # present and null: alpaca-py refuses it
        raise Declined("order_class")
    order_type = _enum(order.get("type"), _ORDER_TYPES)
    side = _enum(order.get("side"), _SIDES)
    if key is not None:
        if len(_STATIC_SEEN) > 1024:
            _STATIC_SEEN.clear()
        _STATIC_SEEN.add(key)
    return order_class, order_type, side


def _float_decimal(value: object) -> Decimal | None:
    # ``dec(_float(value))``: the Decimal of the float alpaca-py holds (its printed form, which need not
    # be the text received: "39.990" is 39.99), remembered per text, as prices and quantities repeat
    if type(value) is str:
        number = _FLOAT_DECIMALS.get(value)
        if number is not None:
            return number
    as_float = _float(value)
    if as_float is None:
        return None
    number = Decimal(str(as_float))
    if type(value) is str:
        if len(_FLOAT_DECIMALS) > 4096:
            _FLOAT_DECIMALS.clear()
        _FLOAT_DECIMALS[value] = number
    return number


def fast_view(order: object) -> BrokerOrderView:
    """Return what ``mapping.order_view(Order(**order))`` returns, or raise ``Declined``."""
    if type(order) is not dict:
        raise Declined("order")
    get = order.get
    broker_id = _uuid(get("id"))
    coid = get("client_order_id")
    if type(coid) is not str:
        raise Declined("client_order_id")
    created_at = _time(get("created_at"))
    updated_at = _time(get("updated_at"))
    submitted_at = _time(get("submitted_at"))
    filled_at = get("filled_at")  # the one optional time that changes from event to event
    if filled_at is not None:
        _time(filled_at)
    replaced_by = _optional_uuid(get("replaced_by"))
    replaces = _optional_uuid(get("replaces"))
    symbol = get("symbol")
    if symbol is not None and type(symbol) is not str:
        raise Declined("symbol")
    qty = _str_or_float(get("qty"))
    filled_qty = _str_or_float(get("filled_qty"))
    avg_price = _str_or_float(get("filled_avg_price"))
    limit_price = _str_or_float(get("limit_price"))
    stop_price = _str_or_float(get("stop_price"))
    _str_or_float(get("ratio_qty"))
    order_class, order_type, side = _static(order)
    raw_status = get("status")
    status = _STATUS.get(raw_status) if type(raw_status) is str else None
    if status is None:
        raise Declined("status")
    if type(get("extended_hours")) is not bool:
        raise Declined("extended_hours")
    raw_legs = get("legs")
    if raw_legs is not None and type(raw_legs) is not list:
        raise Declined("legs")
    legs = tuple(fast_view(leg) for leg in raw_legs or ())
    return BrokerOrderView(
        broker_order_id=BrokerOrderId(broker_id),
        client_order_id=ClientOrderId(coid),
        symbol=Symbol(symbol or ""),
        status=status,
        qty=dec(qty),
        filled_qty=dec(filled_qty) or Decimal(0),
        filled_avg_price=dec(avg_price),
        updated_at=updated_at or submitted_at or created_at,
        leg_ids=tuple(leg.broker_order_id for leg in legs),
        replaced_by=BrokerOrderId(replaced_by) if replaced_by else None,
        replaces=BrokerOrderId(replaces) if replaces else None,
        submitted_at=submitted_at,
        side=_SIDE.get(side),
        order_type=_TYPE.get(order_type),
        order_class=order_class,
        limit_price=dec(limit_price),
        stop_price=dec(stop_price),
        legs=legs,
    )


def fast_observation(data: object, received_at: datetime) -> OrderObserved:
    """Return what ``mapping.observation(TradeUpdate(**data), received_at)`` returns, or raise ``Declined``.

    ``data`` is the ``data`` object of a decoded trade_updates message.
    """
    if type(data) is not dict:
        raise Declined("data")
    event = data.get("event")
    if type(event) is not str:
        raise Declined("event")
    execution_id = _optional_uuid(data.get("execution_id"))
    view = fast_view(data.get("order"))
    ts = _time(data.get("timestamp"))
    position = _float_decimal(data.get("position_qty"))
    price = _float_decimal(data.get("price"))
    qty = _float_decimal(data.get("qty"))
    execution = None
    if event in ("fill", "partial_fill") and execution_id is not None and qty is not None:
        exec_price = price or view.filled_avg_price or Decimal(0)
        execution = Execution(ExecutionId(execution_id), qty or Decimal(0), exec_price, position)
    return OrderObserved(view, Source.STREAM, ts, received_at, event=event, execution=execution)


def order_views(raw: object) -> list[BrokerOrderView]:
    """Return what ``[order_view(o) for o in flatten(TypeAdapter(list[Order]).validate_python(raw))]``
    returns for a list read's JSON (each order, then its legs), raising what it raises.

    Each order goes through ``fast_view``; one it declines goes through alpaca-py's ``Order`` model, in
    the same passes as before: every declined order is validated before any is mapped, so a list with an
    invalid order fails validation as it did, whatever its other orders hold.
    """
    if type(raw) is not list:
        return [order_view(o) for o in flatten(_ORDER_LIST.validate_python(raw))]
    fast: list[BrokerOrderView | None] = []
    for item in raw:
        try:
            fast.append(fast_view(item))
        except (Declined, ArithmeticError):  # a number that is no number: the model's path raises it
            fast.append(None)
    models = {i: AlpacaOrder.model_validate(raw[i]) for i, view in enumerate(fast) if view is None}
    views: list[BrokerOrderView] = []
    for i, view in enumerate(fast):
        if view is None:
            view = order_view(models[i])
        views.append(view)
        views.extend(view.legs)
    return views


_ORDER_LIST: TypeAdapter[list[AlpacaOrder]] = TypeAdapter(list[AlpacaOrder])

__all__ = ["Declined", "decode", "fast_observation", "fast_view", "order_views"]
