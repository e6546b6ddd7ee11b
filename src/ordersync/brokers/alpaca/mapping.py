"""Pure translation of alpaca-py models into domain values, with exhaustive enum maps.

Every member of alpaca-py's ``OrderStatus`` has an explicit entry, so a status added to the SDK fails a
test instead of silently mapping to something wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType

from alpaca.trading.enums import OrderStatus as AlpacaStatus
from alpaca.trading.models import Order as AlpacaOrder
from alpaca.trading.models import TradeUpdate

from ordersync.domain.errors import MalformedObservation
from ordersync.domain.events import BrokerOrderView, Execution, OrderObserved, Source
from ordersync.domain.ids import BrokerOrderId, ClientOrderId, ExecutionId, Symbol
from ordersync.domain.order import OrderSide, OrderStatus, OrderType

STATUS_MAP: Mapping[AlpacaStatus, OrderStatus] = MappingProxyType(
    {
        AlpacaStatus.NEW: OrderStatus.NEW,
        AlpacaStatus.PARTIALLY_FILLED: OrderStatus.PARTIALLY_FILLED,
        AlpacaStatus.FILLED: OrderStatus.FILLED,
        AlpacaStatus.DONE_FOR_DAY: OrderStatus.DONE_FOR_DAY,
        AlpacaStatus.CANCELED: OrderStatus.CANCELED,
        AlpacaStatus.EXPIRED: OrderStatus.EXPIRED,
        AlpacaStatus.REPLACED: OrderStatus.REPLACED,
        AlpacaStatus.PENDING_CANCEL: OrderStatus.PENDING_CANCEL,
        AlpacaStatus.PENDING_REPLACE: OrderStatus.PENDING_REPLACE,
        AlpacaStatus.PENDING_REVIEW: OrderStatus.PENDING_REVIEW,
        AlpacaStatus.ACCEPTED: OrderStatus.ACCEPTED,
        AlpacaStatus.PENDING_NEW: OrderStatus.PENDING_NEW,
        AlpacaStatus.ACCEPTED_FOR_BIDDING: OrderStatus.ACCEPTED_FOR_BIDDING,
        AlpacaStatus.STOPPED: OrderStatus.STOPPED,
        AlpacaStatus.REJECTED: OrderStatus.REJECTED,
        AlpacaStatus.SUSPENDED: OrderStatus.SUSPENDED,
        AlpacaStatus.CALCULATED: OrderStatus.CALCULATED,
        AlpacaStatus.HELD: OrderStatus.HELD,
    }
)


def dec(value: object) -> Decimal | None:
    """Return an SDK number (str or float) as a Decimal via its printed form, or None."""
    if type(value) is str:
        # a stream repeats its quantities and prices; a Decimal is immutable, so one object serves all
        number = _DECIMALS.get(value)
        if number is None:
            if value == "":
                return None
            if len(_DECIMALS) > 4096:
                _DECIMALS.clear()
            number = _DECIMALS[value] = Decimal(value)
        return number
    if value is None:
        return None
    return Decimal(str(value))


_DECIMALS: dict[str, Decimal] = {}


def _enum_value(value: object) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))


def order_view(order: AlpacaOrder) -> BrokerOrderView:
    """Return the domain view of an alpaca-py ``Order``.

    Raises:
        MalformedObservation: for a status the map does not know or a missing timestamp.
    """
    try:
        status = STATUS_MAP[AlpacaStatus(order.status)]
    except (KeyError, ValueError) as e:
        raise MalformedObservation(f"unknown order status {order.status!r} for {order.id}") from e
    updated_at = order.updated_at or order.submitted_at or order.created_at
    if updated_at is None:
        raise MalformedObservation(f"order {order.id} has no timestamps")
    return BrokerOrderView(
        broker_order_id=BrokerOrderId(str(order.id)),
        client_order_id=ClientOrderId(order.client_order_id),
        symbol=Symbol(order.symbol or ""),
        status=status,
        qty=dec(order.qty),
        filled_qty=dec(order.filled_qty) or Decimal(0),
        filled_avg_price=dec(order.filled_avg_price),
        updated_at=updated_at,
        leg_ids=tuple(BrokerOrderId(str(leg.id)) for leg in order.legs or ()),
        replaced_by=BrokerOrderId(str(order.replaced_by)) if order.replaced_by else None,
        replaces=BrokerOrderId(str(order.replaces)) if order.replaces else None,
        submitted_at=order.submitted_at,
        side=OrderSide(side) if (side := _enum_value(order.side)) else None,
        order_type=OrderType(kind) if (kind := _enum_value(order.type)) else None,
        order_class=_enum_value(order.order_class),
        limit_price=dec(order.limit_price),
        stop_price=dec(order.stop_price),
        legs=tuple(order_view(leg) for leg in order.legs or ()),
    )


def flatten(orders: list[AlpacaOrder]) -> list[AlpacaOrder]:
    """Return ``orders`` followed by their nested legs (``nested=true`` rolls legs under the parent)."""
    flat: list[AlpacaOrder] = []
    for order in orders:
        flat.append(order)
        flat.extend(order.legs or ())
    return flat


def observation(update: TradeUpdate, received_at: datetime) -> OrderObserved:
    """Return the observation carried by one trade_updates message.

    Raises:
        MalformedObservation: when the message cannot be interpreted (see ``order_view``).
    """
    view = order_view(update.order)
    event = _enum_value(update.event)
    execution = None
    if event in ("fill", "partial_fill") and update.execution_id is not None and update.qty is not None:
        price = dec(update.price) or view.filled_avg_price or Decimal(0)
        qty = dec(update.qty) or Decimal(0)
        position = dec(update.position_qty)
        execution = Execution(ExecutionId(str(update.execution_id)), qty, price, position)
    return OrderObserved(view, Source.STREAM, update.timestamp, received_at, event=event, execution=execution)
