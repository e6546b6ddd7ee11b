"""The Broker port over alpaca-py's TradingClient (REST).

alpaca-py's pitfalls are guarded here (docs/alpaca.md, 11): it has no HTTP timeout (we add one),
it retries 429/504 with blocking sleeps, POST included (we turn that off and retry ourselves, always
with the same client_order_id and a lookup first), and its calls block (we run them in a thread).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import requests
from alpaca.common.enums import Sort
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderClass, OrderSide, QueryOrderStatus, TimeInForce
from alpaca.trading.models import Order as AlpacaOrder
from alpaca.trading.models import Position
from alpaca.trading.requests import (
    GetOrderByIdRequest,
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    OrderRequest,
    StopLimitOrderRequest,
    StopLossRequest,
    StopOrderRequest,
    TakeProfitRequest,
    TrailingStopOrderRequest,
)

from ordersync.brokers.alpaca.budget import RequestBudget
from ordersync.brokers.alpaca.errors import classify, rate_headers
from ordersync.brokers.alpaca.mapping import dec, order_view
from ordersync.brokers.alpaca.parse import order_views
from ordersync.domain.errors import MalformedObservation, RateLimited
from ordersync.domain.events import BrokerOrderView, FillActivity
from ordersync.domain.exits import AttachedExits
from ordersync.domain.ids import BrokerOrderId, ClientOrderId, Symbol
from ordersync.domain.order import Order, OrderRole, OrderType
from ordersync.ports import REQUEST_PRIORITY, Clock, PositionView

T = TypeVar("T")


class AlpacaBroker:
    """Alpaca REST (paper, live or any compatible URL such as the simulator)."""

    def __init__(
        self,
        api_key: str,
        secret_key: str,
        *,
        clock: Clock,
        base_url: str | None = None,
        paper: bool = True,
        timeout_s: float = 10.0,
        requests_per_minute: float = 190.0,
    ) -> None:
        self._client = TradingClient(api_key, secret_key, paper=paper, url_override=base_url)
        # alpaca-py forwards no retry settings; 0 disables its blocking retries (docs/alpaca.md, 11.2)
        self._client._retry = 0
        session = self._client._session
        session.request = functools.partial(session.request, timeout=timeout_s)  # type: ignore[method-assign]
        session.hooks["response"].append(self._on_response)
        self._clock = clock
        self.budget = RequestBudget(clock, per_minute=requests_per_minute)
        self.malformed_activities = 0
        self.inflight = 0  # requests on the wire now (a driver uses it to tell when the system is quiet)

    def __repr__(self) -> str:  # never show keys
        return f"AlpacaBroker(base_url={self._client._base_url!r})"

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        await self.budget.acquire(REQUEST_PRIORITY.get())
        self.inflight += 1
        try:
            result = await asyncio.to_thread(fn, *args)
        except Exception as e:
            error = classify(e, self._clock.now().timestamp())
            if isinstance(error, RateLimited):
                headers = getattr(getattr(e, "response", None), "headers", None)
                error.retry_after_s = self.budget.on_rate_limited(*rate_headers(headers))
            else:
                self.budget.succeeded()
            raise error from e
        finally:
            self.inflight -= 1
        self.budget.succeeded()
        return result

    def _on_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        # every Alpaca response says how much of the minute's budget is left (requests' response hook)
        self.budget.observe(*rate_headers(response.headers))

    async def _call_or_none(self, fn: Callable[..., T], *args: Any) -> T | None:
        try:
            return await self._call(fn, *args)
        except Exception as e:
            if isinstance(e.__cause__, APIError) and e.__cause__.status_code == 404:
                return None
            raise

    async def submit(self, order: Order) -> BrokerOrderView:
        """Send ``order`` with its client_order_id; return the broker's view of it."""
        result = await self._call(self._client.submit_order, build_request(order))
        return order_view(_as_order(result))

    async def submit_group(self, order: Order, exits: AttachedExits) -> BrokerOrderView:
        """Send an entry as a bracket or OTO with ``exits`` attached; its legs come nested in the view."""
        result = await self._call(self._client.submit_order, build_request(order, exits))
        return order_view(_as_order(result))

    async def cancel(self, broker_order_id: BrokerOrderId) -> None:
        """Request a cancel (204 is a request, not a confirmation: watch for the canceled event)."""
        await self._call(self._client.cancel_order_by_id, broker_order_id)

    async def get_by_client_id(self, client_order_id: ClientOrderId) -> BrokerOrderView | None:
        """Look an order up by client_order_id (closed ones included); None if the broker has none."""
        result = await self._call_or_none(self._client.get_order_by_client_id, client_order_id)
        return None if result is None else order_view(_as_order(result))

    async def get_order(self, broker_order_id: BrokerOrderId, nested: bool = False) -> BrokerOrderView | None:
        """Read one order by id; None if the broker has none."""
        request = GetOrderByIdRequest(nested=nested)
        result = await self._call_or_none(self._client.get_order_by_id, broker_order_id, request)
        return None if result is None else order_view(_as_order(result))

    async def list_orders(
        self,
        status: str,
        after: datetime | None = None,
        limit: int = 500,
        direction: str = "asc",
        symbols: Sequence[str] | None = None,
    ) -> Sequence[BrokerOrderView]:
        """Return one page of orders (legs flattened after their parent), of `symbols` only when given."""
        request = GetOrdersRequest(
            status=QueryOrderStatus(status),
            after=after,
            limit=limit,
            direction=Sort(direction),
            nested=True,
            symbols=list(symbols) if symbols else None,
        )
        return await self._call(self._list_views, request)

    def _list_views(self, request: GetOrdersRequest) -> list[BrokerOrderView]:
        # ``TradingClient.get_orders`` with its raw answer mapped by the fast parse (``order_views``):
        # the same request parameters, the same views, without alpaca-py's model for every order
        params = request.to_request_fields()
        if isinstance(params.get("symbols"), list):
            params["symbols"] = ",".join(params["symbols"])
        return order_views(self._client.get("/orders", params))

    async def positions(self) -> dict[Symbol, PositionView]:
        """Return every open position."""
        result = await self._call(self._client.get_all_positions)
        views = [_position(p) for p in result if isinstance(p, Position)]
        return {v.symbol: v for v in views}

    async def fill_activities(
        self, after: datetime | None, page_token: str | None = None, page_size: int = 100
    ) -> Sequence[FillActivity]:
        """Return one page of the account's executions, oldest first (one request for every order).

        alpaca-py 0.44 has no method for account activities: its client's raw ``get`` sends the request
        with the same session, keys, timeout and budget as every other call. Unreadable rows are skipped
        (logged by the caller's count), never fatal: the next reconciliation reads the orders anyway.
        """
        params: dict[str, Any] = {"direction": "asc", "page_size": page_size}
        if after is not None:
            params["after"] = after.astimezone(UTC).isoformat().replace("+00:00", "Z")
        if page_token is not None:
            params["page_token"] = page_token
        raw = await self._call(self._client.get, "/account/activities/FILL", params)
        rows = raw if isinstance(raw, list) else []
        activities = []
        for row in rows:
            if isinstance(row, dict) and row.get("activity_type", "FILL") == "FILL":
                try:
                    activities.append(fill_activity(row))
                except MalformedObservation:
                    self.malformed_activities += 1
        return activities

    async def position(self, symbol: Symbol) -> PositionView | None:
        """Return the position in ``symbol`` (None when flat)."""
        result = await self._call_or_none(self._client.get_open_position, symbol)
        return None if not isinstance(result, Position) else _position(result)


def fill_activity(raw: Any) -> FillActivity:
    """Return one FILL activity of ``GET /v2/account/activities/FILL`` as a domain value.

    Raises:
        MalformedObservation: a required field is missing or unreadable.
    """
    try:
        when = datetime.fromisoformat(str(raw["transaction_time"]).replace("Z", "+00:00"))
        qty, price = dec(raw["qty"]), dec(raw["price"])
        if when.tzinfo is None or qty is None or price is None:
            raise ValueError("naive transaction_time or empty qty/price")
        return FillActivity(
            activity_id=str(raw["id"]),
            broker_order_id=BrokerOrderId(str(raw["order_id"])),
            symbol=Symbol(str(raw.get("symbol") or "")),
            qty=qty,
            price=price,
            transaction_time=when,
            cum_qty=dec(raw.get("cum_qty")),
        )
    except (KeyError, TypeError, ValueError, ArithmeticError) as e:
        raise MalformedObservation(f"unreadable FILL activity {str(raw)[:200]}: {e}") from e


def _as_order(value: object) -> AlpacaOrder:
    if not isinstance(value, AlpacaOrder):
        raise TypeError(f"expected an alpaca Order, got {type(value).__name__}")
    return value


def _position(p: Position) -> PositionView:
    qty = dec(p.qty) or dec(0)
    available = dec(p.qty_available)
    assert qty is not None
    return PositionView(Symbol(p.symbol), qty, qty if available is None else available)


def build_request(order: Order, exits: AttachedExits | None = None) -> OrderRequest:
    """Return the alpaca-py request for ``order`` (the SDK's wire format is float: converted here only).

    With ``exits``, the entry goes as ``order_class`` bracket (both exits) or oto (one), each leg a
    ``TakeProfitRequest`` / ``StopLossRequest`` (docs/alpaca.md §6.1).
    """
    common: dict[str, Any] = {
        "symbol": order.symbol,
        "qty": float(order.qty),
        "side": OrderSide(order.side.value),
        "time_in_force": TimeInForce(order.time_in_force.value),
        "client_order_id": order.client_order_id,
    }
    if order.role is OrderRole.OCO:
        assert order.limit_price is not None
        assert order.stop_price is not None
        stop_loss = StopLossRequest(
            stop_price=float(order.stop_price),
            limit_price=None if order.stop_limit_price is None else float(order.stop_limit_price),
        )
        take_profit = TakeProfitRequest(limit_price=float(order.limit_price))
        return LimitOrderRequest(
            **common, order_class=OrderClass.OCO, take_profit=take_profit, stop_loss=stop_loss
        )
    if exits is not None:
        common.update(_attached(exits))
    if order.type is OrderType.MARKET:
        return MarketOrderRequest(**common)
    if order.type is OrderType.LIMIT:
        return LimitOrderRequest(**common, limit_price=float(order.limit_price or 0))
    if order.type is OrderType.STOP:
        return StopOrderRequest(**common, stop_price=float(order.stop_price or 0))
    if order.type is OrderType.STOP_LIMIT:
        return StopLimitOrderRequest(
            **common, stop_price=float(order.stop_price or 0), limit_price=float(order.limit_price or 0)
        )
    if order.type is OrderType.TRAILING_STOP:  # new_order guarantees exactly one of the two
        if order.trail_percent is not None:
            return TrailingStopOrderRequest(**common, trail_percent=float(order.trail_percent))
        return TrailingStopOrderRequest(**common, trail_price=float(order.trail_price or 0))
    raise ValueError(f"ordersync does not send {order.type} orders")


def _attached(exits: AttachedExits) -> dict[str, Any]:
    legs: dict[str, Any] = {"order_class": OrderClass(exits.order_class)}
    if exits.take_profit is not None:
        legs["take_profit"] = TakeProfitRequest(limit_price=float(exits.take_profit))
    if exits.stop_price is not None:
        limit = None if exits.stop_limit is None else float(exits.stop_limit)
        legs["stop_loss"] = StopLossRequest(stop_price=float(exits.stop_price), limit_price=limit)
    return legs
