"""Broker observations: what ordersync learns about an order, from any source.

Every trade_updates event and every polled order carries the broker's full order object, so one value
type serves both: ``OrderObserved`` holds the broker's view of the order (``BrokerOrderView``) plus, for
fill events, the single execution. The lifecycle applies observations idempotently, whatever their source
and order of arrival.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from ordersync.domain.errors import MalformedObservation
from ordersync.domain.ids import BrokerOrderId, ClientOrderId, ExecutionId, Symbol
from ordersync.domain.order import OrderSide, OrderStatus, OrderType


class Source(StrEnum):
    """Where an observation came from; journaled with every change."""

    STREAM = "stream"
    POLL = "poll"
    RECONCILE = "reconcile"
    SUBMIT = "submit"  # the broker's answer to our POST
    LOOKUP = "lookup"  # a lookup by client_order_id after an ambiguous submit


# trade_updates events that report an execution (docs/alpaca.md, 1.3)
FILL_EVENTS = frozenset({"fill", "partial_fill"})


@dataclass(frozen=True, slots=True)
class BrokerOrderView:
    """The broker's full order object, reduced to what the lifecycle needs."""

    broker_order_id: BrokerOrderId
    client_order_id: ClientOrderId
    symbol: Symbol
    status: OrderStatus
    qty: Decimal | None
    filled_qty: Decimal
    filled_avg_price: Decimal | None
    updated_at: datetime
    leg_ids: tuple[BrokerOrderId, ...] = ()
    replaced_by: BrokerOrderId | None = None
    replaces: BrokerOrderId | None = None  # a replacement (PATCH) names the order it replaced
    submitted_at: datetime | None = None
    side: OrderSide | None = None
    order_type: OrderType | None = None
    order_class: str | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    legs: tuple[BrokerOrderView, ...] = ()  # a multi-leg order's legs, when the broker nested them


@dataclass(frozen=True, slots=True)
class Execution:
    """One execution from a fill/partial_fill event: per-execution qty and price (not cumulative).

    ``position_qty`` is the account's position in the symbol right after this execution, as the broker
    states it on the same event (docs/alpaca.md §1.3); None when the event did not carry it. The release
    gate sizes protection against it instead of reading the position again (docs/architecture.md §4).
    """

    execution_id: ExecutionId
    qty: Decimal
    price: Decimal
    position_qty: Decimal | None = None


@dataclass(frozen=True, slots=True)
class OrderObserved:
    """The broker reported the state of an order (an event, a poll, a reconcile read or a lookup)."""

    order: BrokerOrderView
    source: Source
    ts_event: datetime  # broker time of the event (or the order's updated_at for snapshots)
    ts_init: datetime  # local time we received it
    event: str | None = None  # trade_updates event name; None for snapshots
    execution: Execution | None = None

    def __post_init__(self) -> None:
        if self.order.filled_qty < 0:
            raise MalformedObservation(
                f"negative filled_qty {self.order.filled_qty} for {self.order.client_order_id}"
            )
        if self.order.qty is not None and self.order.qty <= 0:
            raise MalformedObservation(f"non-positive qty {self.order.qty} for {self.order.client_order_id}")
        if self.ts_event.tzinfo is None or self.order.updated_at.tzinfo is None:
            raise MalformedObservation(f"naive timestamp in observation of {self.order.client_order_id}")
        if self.execution is not None and self.execution.qty <= 0:
            raise MalformedObservation(
                f"non-positive execution qty {self.execution.qty} for {self.order.client_order_id}"
            )

    @property
    def is_fill(self) -> bool:
        """True when this observation reports an execution."""
        return self.event in FILL_EVENTS


@dataclass(frozen=True, slots=True)
class FillActivity:
    """One execution as the account's FILL activities list it (docs/alpaca.md, 4.8).

    One request lists the executions of every order of the account, so reading them each poll interval
    notices a fill whatever the stream did. ``cum_qty`` (the order's filled quantity after this execution)
    is absent from some payloads; without it the order must be read to learn whether we applied the fill.
    """

    activity_id: str
    broker_order_id: BrokerOrderId
    symbol: Symbol
    qty: Decimal
    price: Decimal
    transaction_time: datetime
    cum_qty: Decimal | None = None
