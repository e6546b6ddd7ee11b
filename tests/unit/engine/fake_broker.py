"""An in-memory broker and stream for engine unit tests: the Broker and BrokerStream ports, Alpaca-like where
the engine depends on it (docs/alpaca.md), with nothing on the wire.

Alpaca behaviour kept (sections of docs/alpaca.md):

* a POST answers with the order in ``accepted`` (``submit_status``); a client_order_id is unique (422
  40010001 on reuse), and ``get_by_client_id`` finds closed orders too (4.1);
* open sells reserve shares: ``qty_available`` = position - shares held by open sells, and a sell beyond it
  is refused with the 403 40310000 body the adapter classifies as ``InsufficientQty`` (4.7, 6.3);
* an OCO is a limit take-profit primary with a stop leg in ``held``, reserving its shares once; a fill of the
  primary cancels the leg, a fill of the leg marks the primary ``replaced`` (6.2);
* lists filter on status (open/closed/all), *submission* time ``after`` and symbols, legs flattened after
  their parent, as the adapter returns them (4.2);
* every execution is listed by ``fill_activities`` with its ``cum_qty`` (4.8);
* a bracket/OTO (``submit_group``) creates its legs ``held``, sized to the entry, nested in the POST answer;
  they arm only once the entry completely fills (the take-profit and an OTO's lone leg go ``new``, a
  bracket's stop stays ``held``); a leg's fill cancels its sibling; a cancel of any member cancels the
  group (6.1, 6.2).

The test drives the market: ``fill`` executes shares, ``adjust_position`` moves a position the way a trade
outside ordersync would, ``freeze_positions`` models a stale position read. Each change is recorded as the
trade_updates event Alpaca would send (``events``); the test decides whether the ``FakeStream`` delivers it
or loses it. Failures are scripted per method (``fail``), and ``lose_next_submit_response`` accepts a POST
whose answer never arrives. ``calls`` counts requests per method; ``log`` keeps them in order with the fake
time they were made at.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from ordersync.domain.errors import (
    BrokerError,
    BrokerUnavailable,
    DuplicateClientOrderId,
    InsufficientQty,
    OrderRefused,
)
from ordersync.domain.events import BrokerOrderView, Execution, FillActivity, OrderObserved, Source
from ordersync.domain.exits import AttachedExits
from ordersync.domain.ids import BrokerOrderId, ClientOrderId, ExecutionId, Symbol
from ordersync.domain.order import Order, OrderRole, OrderSide, OrderStatus
from ordersync.ports import Clock, PositionView, StreamState, StreamStatus

INSUFFICIENT_QTY = 40310000
DUPLICATE_CLIENT_ORDER_ID = 40010001
_TICK = timedelta(microseconds=1)


@dataclass
class FakeOrder:
    """One order at the fake broker (mutable: the broker's own record)."""

    broker_order_id: BrokerOrderId
    client_order_id: ClientOrderId
    symbol: Symbol
    side: OrderSide
    qty: Decimal
    order_type: str
    order_class: str
    submitted_at: datetime
    updated_at: datetime
    status: OrderStatus
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    filled_qty: Decimal = Decimal(0)
    filled_avg_price: Decimal | None = None
    leg_ids: list[BrokerOrderId] = field(default_factory=list)
    group: BrokerOrderId | None = None  # a leg points at its primary

    @property
    def is_open(self) -> bool:
        return not self.status.is_terminal


class FakeBroker:
    """The Broker port in memory (see the module docstring)."""

    def __init__(self, clock: Clock, submit_status: OrderStatus = OrderStatus.ACCEPTED) -> None:
        self.clock = clock
        self.submit_status = submit_status
        self.orders: dict[BrokerOrderId, FakeOrder] = {}
        self.holdings: dict[Symbol, Decimal] = {}
        self.activities: list[FillActivity] = []
        self.events: list[OrderObserved] = []  # what trade_updates would have sent, oldest first
        self.calls: Counter[str] = Counter()
        self.log: list[tuple[str, str, datetime]] = []  # (method, argument, fake time)
        self._faults: dict[str, list[BrokerError]] = {}
        self._lose_submits = 0
        self.position_in_events = True  # fill events carry position_qty (docs/alpaca.md §1.3)
        self._frozen: dict[Symbol, PositionView] | None = None
        self._ids = itertools.count(1)
        self._last = clock.now()

    # -- test controls -------------------------------------------------------------------------------

    def fail(self, method: str, error: BrokerError, times: int = 1) -> None:
        """Make the next ``times`` calls of ``method`` raise ``error`` (nothing happens at the broker)."""
        self._faults.setdefault(method, []).extend([error] * times)

    def lose_next_submit_response(self, times: int = 1) -> None:
        """Accept the next ``times`` POSTs, then raise a timeout instead of answering (outcome unknown)."""
        self._lose_submits += times

    def freeze_positions(self) -> None:
        """Answer position reads with the positions of now until ``thaw_positions`` (a stale read)."""
        self._frozen = {s: self._position(s) for s in self.holdings}

    def thaw_positions(self) -> None:
        self._frozen = None

    def adjust_position(self, symbol: str, delta: Decimal | int) -> None:
        """Move a position without any order of ours (a trade made outside ordersync)."""
        sym = Symbol(symbol)
        self.holdings[sym] = self.holdings.get(sym, Decimal(0)) + Decimal(delta)

    def place_foreign(
        self, client_order_id: str, symbol: str, side: OrderSide, qty: Decimal | int, limit: Decimal | int
    ) -> FakeOrder:
        """An order another application placed (it reserves shares like any other)."""
        return self._create(
            ClientOrderId(client_order_id),
            Symbol(symbol),
            side,
            Decimal(qty),
            "limit",
            "simple",
            OrderStatus.NEW,
            limit_price=Decimal(limit),
        )

    def by_coid(self, client_order_id: str) -> FakeOrder:
        """Return the order with this client_order_id (KeyError if the broker has none)."""
        for order in self.orders.values():
            if order.client_order_id == client_order_id:
                return order
        raise KeyError(client_order_id)

    def orders_of(self, client_order_id: str) -> list[FakeOrder]:
        """Every order with this client_order_id (a working broker has at most one)."""
        return [o for o in self.orders.values() if o.client_order_id == client_order_id]

    def fill(self, client_order_id: str, qty: Decimal | int, price: Decimal | int) -> OrderObserved:
        """Execute ``qty`` of an open order at ``price``; return (and record) its fill event."""
        order = self.by_coid(client_order_id)
        add = Decimal(qty)
        if not order.is_open or order.filled_qty + add > order.qty:
            raise ValueError(f"cannot fill {add} of {order.client_order_id} ({order.status})")
        px = Decimal(price)
        total = order.filled_qty + add
        old = order.filled_avg_price or Decimal(0)
        order.filled_avg_price = (old * order.filled_qty + px * add) / total
        order.filled_qty = total
        order.status = OrderStatus.FILLED if total == order.qty else OrderStatus.PARTIALLY_FILLED
        order.updated_at = self._stamp()
        sign = 1 if order.side is OrderSide.BUY else -1
        self.holdings[order.symbol] = self.holdings.get(order.symbol, Decimal(0)) + sign * add
        position = self.holdings[order.symbol] if self.position_in_events else None  # as Alpaca states it
        execution = Execution(ExecutionId(f"exe-{next(self._ids)}"), add, px, position)
        self.activities.append(
            FillActivity(
                activity_id=f"act-{next(self._ids):06d}",
                broker_order_id=order.broker_order_id,
                symbol=order.symbol,
                qty=add,
                price=px,
                transaction_time=order.updated_at,
                cum_qty=total,
            )
        )
        event = "fill" if order.status is OrderStatus.FILLED else "partial_fill"
        obs = self._event(order, event, execution)
        if self._native(order) or (order.group is not None and self._native(self.orders[order.group])):
            self._native_fill(order)
        elif order.group is None:  # an OCO primary filled: its stop leg is canceled (6.2)
            for leg_id in order.leg_ids:
                self._end(self.orders[leg_id], OrderStatus.CANCELED, "canceled")
        elif order.status is OrderStatus.FILLED:  # the stop leg filled: the take-profit ends replaced
            self._end(self.orders[order.group], OrderStatus.REPLACED, "replaced")
        return obs

    def set_status(self, client_order_id: str, status: OrderStatus, event: str) -> OrderObserved:
        """Move an order to ``status`` (e.g. accepted -> new) and record the event."""
        order = self.by_coid(client_order_id)
        order.status = status
        order.updated_at = self._stamp()
        return self._event(order, event)

    def open_sells(self, symbol: str) -> list[FakeOrder]:
        """Our and foreign open sell orders that reserve shares (an OCO once, through its primary)."""
        return [
            o
            for o in self.orders.values()
            if o.symbol == symbol
            and o.side is OrderSide.SELL
            and o.is_open
            and (o.group is None or (self._native(self.orders[o.group]) and o.status is not OrderStatus.HELD))
        ]

    # -- the Broker port -----------------------------------------------------------------------------

    async def submit(self, order: Order) -> BrokerOrderView:
        self._call("submit", order.client_order_id)
        if self.orders_of(order.client_order_id):
            raise DuplicateClientOrderId(
                "422 40010001 client_order_id must be unique",
                status_code=422,
                code=DUPLICATE_CLIENT_ORDER_ID,
                body={"code": DUPLICATE_CLIENT_ORDER_ID, "message": "client_order_id must be unique"},
            )
        if order.side is OrderSide.SELL:
            self._check_sell(order.symbol, order.qty)
        oco = order.role is OrderRole.OCO
        created = self._create(
            order.client_order_id,
            order.symbol,
            order.side,
            order.qty,
            order.type.value,
            "oco" if oco else "simple",
            self.submit_status,
            limit_price=order.limit_price,
            stop_price=None if oco else order.stop_price,
        )
        if oco:
            leg = self._create(
                ClientOrderId(f"leg-{next(self._ids)}"),  # the broker names the stop leg itself
                order.symbol,
                order.side,
                order.qty,
                "stop",
                "oco",
                OrderStatus.HELD,
                stop_price=order.stop_price,
                group=created.broker_order_id,
            )
            created.leg_ids.append(leg.broker_order_id)
        if self._lose_submits:
            self._lose_submits -= 1
            raise BrokerUnavailable("no answer from the broker: ReadTimeout")
        return self._view(created)

    async def submit_group(self, order: Order, exits: AttachedExits) -> BrokerOrderView:
        self._call("submit_group", order.client_order_id)
        if order.type.value not in ("market", "limit"):
            raise OrderRefused("422 40010001 bracket orders must be market or limit orders", status_code=422)
        created = self._create(
            order.client_order_id,
            order.symbol,
            order.side,
            order.qty,
            order.type.value,
            exits.order_class,
            self.submit_status,
            limit_price=order.limit_price,
        )
        for kind, limit, stop in (
            ("limit", exits.take_profit, None),
            ("stop" if exits.stop_limit is None else "stop_limit", exits.stop_limit, exits.stop_price),
        ):
            if limit is None and stop is None:
                continue
            leg = self._create(
                ClientOrderId(f"leg-{next(self._ids)}"),
                order.symbol,
                order.side.opposite,
                order.qty,
                kind,
                exits.order_class,
                OrderStatus.HELD,
                limit_price=limit,
                stop_price=stop,
                group=created.broker_order_id,
            )
            created.leg_ids.append(leg.broker_order_id)
        if self._lose_submits:
            self._lose_submits -= 1
            raise BrokerUnavailable("no answer from the broker: ReadTimeout")
        return self._view(created, nested=True)

    def _native(self, order: FakeOrder) -> bool:
        return order.group is None and order.order_class in ("bracket", "oto")

    def _native_fill(self, order: FakeOrder) -> None:
        if order.group is None:  # the entry: its legs arm once it completely filled
            if order.status is OrderStatus.FILLED:
                legs = [self.orders[leg] for leg in order.leg_ids]
                for leg in legs:
                    if leg.order_type == "limit" or len(legs) == 1:
                        self._end(leg, OrderStatus.NEW, "new")
            return
        if order.status is OrderStatus.FILLED:  # a leg filled: its sibling is canceled
            for leg_id in self.orders[order.group].leg_ids:
                if self.orders[leg_id].is_open:
                    self._end(self.orders[leg_id], OrderStatus.CANCELED, "canceled")

    async def cancel(self, broker_order_id: BrokerOrderId) -> None:
        self._call("cancel", broker_order_id)
        order = self.orders.get(broker_order_id)
        if order is None:
            raise OrderRefused("404 40410000 order not found", status_code=404, code=40410000)
        if not order.is_open:
            message = f"422 42210000 order is not cancelable (status {order.status})"
            raise OrderRefused(message, status_code=422, code=42210000)
        primary = self.orders[order.group] if order.group else order
        for member in [primary, *(self.orders[leg] for leg in primary.leg_ids)]:
            if member.is_open:
                self._end(member, OrderStatus.CANCELED, "canceled")

    async def get_by_client_id(self, client_order_id: ClientOrderId) -> BrokerOrderView | None:
        self._call("get_by_client_id", client_order_id)
        found = self.orders_of(client_order_id)
        return self._view(found[0]) if found else None

    async def get_order(self, broker_order_id: BrokerOrderId, nested: bool = False) -> BrokerOrderView | None:
        self._call("get_order", broker_order_id)
        order = self.orders.get(broker_order_id)
        return None if order is None else self._view(order, nested=nested)

    async def list_orders(
        self,
        status: str,
        after: datetime | None = None,
        limit: int = 500,
        direction: str = "asc",
        symbols: Sequence[str] | None = None,
    ) -> Sequence[BrokerOrderView]:
        self._call("list_orders", status)
        tops = [
            o
            for o in self.orders.values()
            if o.group is None
            and (status == "all" or o.is_open == (status == "open"))
            and (after is None or o.submitted_at > after)
            and (not symbols or o.symbol in symbols)
        ]
        tops.sort(key=lambda o: o.submitted_at, reverse=direction == "desc")
        flat: list[BrokerOrderView] = []
        for top in tops[:limit]:  # nested=true, then flattened: each leg follows its parent
            flat.append(self._view(top, nested=True))
            flat += [self._view(self.orders[leg]) for leg in top.leg_ids]
        return flat

    async def positions(self) -> dict[Symbol, PositionView]:
        self._call("positions", "")
        if self._frozen is not None:
            return dict(self._frozen)
        return {s: self._position(s) for s, q in self.holdings.items() if q != 0}

    async def position(self, symbol: Symbol) -> PositionView | None:
        self._call("position", symbol)
        if self._frozen is not None:
            return self._frozen.get(symbol)
        return self._position(symbol) if self.holdings.get(symbol) else None

    async def fill_activities(
        self, after: datetime | None, page_token: str | None = None, page_size: int = 100
    ) -> Sequence[FillActivity]:
        self._call("fill_activities", "")
        rows = [a for a in self.activities if after is None or a.transaction_time > after]
        if page_token is not None:
            ids = [a.activity_id for a in rows]
            rows = rows[ids.index(page_token) + 1 :]
        return rows[:page_size]

    # -- internals -----------------------------------------------------------------------------------

    def _call(self, method: str, argument: str) -> None:
        self.calls[method] += 1
        self.log.append((method, str(argument), self.clock.now()))
        faults = self._faults.get(method)
        if faults:
            raise faults.pop(0)

    def _stamp(self) -> datetime:
        # strictly increasing broker times, so the lifecycle never mistakes a later view for a stale one
        self._last = max(self.clock.now(), self._last + _TICK)
        return self._last

    def _create(
        self,
        coid: ClientOrderId,
        symbol: Symbol,
        side: OrderSide,
        qty: Decimal,
        order_type: str,
        order_class: str,
        status: OrderStatus,
        *,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
        group: BrokerOrderId | None = None,
    ) -> FakeOrder:
        now = self._stamp()
        order = FakeOrder(
            broker_order_id=BrokerOrderId(f"b-{next(self._ids):04d}"),
            client_order_id=coid,
            symbol=symbol,
            side=side,
            qty=qty,
            order_type=order_type,
            order_class=order_class,
            submitted_at=now,
            updated_at=now,
            status=status,
            limit_price=limit_price,
            stop_price=stop_price,
            group=group,
        )
        self.orders[order.broker_order_id] = order
        return order

    def _check_sell(self, symbol: Symbol, qty: Decimal) -> None:
        position = self._position(symbol)
        if qty <= position.qty_available:
            return
        held = position.qty - position.qty_available
        available = position.qty_available
        message = f"insufficient qty available for order (requested: {qty}, available: {available})"
        body: dict[str, object] = {
            "code": INSUFFICIENT_QTY,
            "message": message,
            "symbol": symbol,
            "existing_qty": str(position.qty),
            "held_for_orders": str(held),
            "available": str(position.qty_available),
            "related_orders": [o.broker_order_id for o in self.open_sells(symbol)],
        }
        text = f"403 {INSUFFICIENT_QTY} {message}"
        raise InsufficientQty(text, status_code=403, code=INSUFFICIENT_QTY, body=body)

    def _position(self, symbol: Symbol) -> PositionView:
        qty = self.holdings.get(symbol, Decimal(0))
        held = sum((o.qty - o.filled_qty for o in self.open_sells(symbol)), Decimal(0))
        return PositionView(symbol, qty, max(Decimal(0), qty - held))

    def _end(self, order: FakeOrder, status: OrderStatus, event: str) -> None:
        order.status = status
        order.updated_at = self._stamp()
        self._event(order, event)

    def _event(self, order: FakeOrder, event: str, execution: Execution | None = None) -> OrderObserved:
        view = self._view(order, nested=True)
        obs = OrderObserved(view, Source.STREAM, view.updated_at, self.clock.now(), event, execution)
        self.events.append(obs)
        return obs

    def _view(self, order: FakeOrder, nested: bool = False) -> BrokerOrderView:
        legs = tuple(self._view(self.orders[leg]) for leg in order.leg_ids) if nested else ()
        return BrokerOrderView(
            broker_order_id=order.broker_order_id,
            client_order_id=order.client_order_id,
            symbol=order.symbol,
            status=order.status,
            qty=order.qty,
            filled_qty=order.filled_qty,
            filled_avg_price=order.filled_avg_price,
            updated_at=order.updated_at,
            leg_ids=tuple(order.leg_ids),
            submitted_at=order.submitted_at,
            side=order.side.value,
            order_type=order.order_type,
            order_class=order.order_class,
            limit_price=order.limit_price,
            stop_price=order.stop_price,
            legs=legs,
        )


class FakeStream:
    """The BrokerStream port: the test pushes observations and connection changes; ``close`` ends it."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[OrderObserved | StreamStatus | None] = asyncio.Queue()
        self.delivered = 0

    def push(self, item: OrderObserved | StreamStatus) -> None:
        self._queue.put_nowait(item)

    def connect(self, at: datetime) -> None:
        self.push(StreamStatus(StreamState.CONNECTED, at))

    def disconnect(self, at: datetime) -> None:
        self.push(StreamStatus(StreamState.DISCONNECTED, at, "test"))

    async def events(self) -> AsyncIterator[OrderObserved | StreamStatus]:
        while (item := await self._queue.get()) is not None:
            self.delivered += 1
            yield item

    async def close(self) -> None:
        self._queue.put_nowait(None)
