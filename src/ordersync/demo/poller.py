"""A competent list poller: what a careful platform without a stream would build after the incident.

Every ``poll_interval_s`` (5 s) it reads the account's recent orders with one request (``GET
/v2/orders?status=all&after=<oldest order it still watches>&direction=asc``, paged by ``after``) and, for each
parent whose polled ``filled_qty`` grew, sends the exits for the newly filled shares only: take-profit and
stop-loss as one OCO (one reservation of the shares, so no 40310000), or the single exit the parent has. No
exit is ever sent before a polled fill, so no refusal comes from premature children. A lone stop waits until
its entry is no longer working: Alpaca refuses a simple stop sell beside our own working limit buy as a
potential wash trade (docs/alpaca.md §6.3), and the OCO is exempt as a complex order.

Its weather handling: a parent or exit whose POST failed without a refusal (429, 5xx, a lost response) is
looked for in the next listing by its client_order_id and sent again (same id) only if absent, so a lost
response never doubles an order; a refusal (4xx) is logged and the order dropped; a failed listing is logged
and the cycle skipped. Protection therefore lags a fill by up to one poll interval plus the request time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderClass, QueryOrderStatus, TimeInForce
from alpaca.trading.requests import (
    GetOrdersRequest,
    LimitOrderRequest,
    OrderRequest,
    StopLimitOrderRequest,
    StopLossRequest,
    StopOrderRequest,
    TakeProfitRequest,
    TrailingStopOrderRequest,
)

from ordersync.demo.client import PlatformClient
from ordersync.demo.conductor import DemoClock
from ordersync.demo.orders import entry_base, entry_request, exit_side, resolve_exits
from ordersync.demo.platform_log import PlatformLog

__all__ = ["PollerPlatform", "exit_request"]

PAGE = 500
CLOCK_EVERY = 12  # poll cycles between reads of the market clock
OPEN_ENTRY = {"new", "accepted", "pending_new", "partially_filled", "held", "pending_replace"}


@dataclass
class _Pending:
    """An order whose POST got no answer we can trust: sent again only if the listing does not show it."""

    client_order_id: str
    request: OrderRequest
    qty: Decimal  # exit shares it covers (0 for a parent)


@dataclass
class _Parent:
    spec: Any
    number: int
    sent_at: datetime
    submitted: bool = False  # the broker answered 200, or the listing showed it
    done: bool = False  # refused, or terminal and fully protected
    status: str = "new"
    filled: Decimal = Decimal(0)
    avg_price: Decimal | None = None
    covered: Decimal = Decimal(0)  # exit shares sent and accepted (or pending)
    exits: int = 0
    pending: list[_Pending] = field(default_factory=list)


class PollerPlatform:
    """Submits parents, polls the order list, protects each newly polled fill."""

    def __init__(
        self,
        client: TradingClient,
        clock: DemoClock,
        log: PlatformLog,
        price_of: Callable[[str], Decimal],
        *,
        poll_interval_s: float = 5.0,
    ) -> None:
        self._api = PlatformClient(client, clock, log)
        self._clock = clock
        self._log = log
        self._interval_s = poll_interval_s
        self._price_of = price_of
        self._parents: dict[str, _Parent] = {}
        self.refusals = 0
        self.polls = 0

    @property
    def inflight(self) -> int:
        """Requests on the wire now."""
        return self._api.inflight

    async def submit_parent(self, parent: Any) -> None:
        """Send one parent entry (no exits: those wait for a polled fill)."""
        tracked = _Parent(parent, len(self._parents) + 101, self._clock.now())
        self._parents[parent.id] = tracked
        await self._send(tracked, _Pending(parent.id, entry_request(parent), Decimal(0)), parent.side)

    async def run_polling(self, stop: asyncio.Event) -> None:
        """Every poll interval: one listing, then exits for what filled since the last one."""
        cycle = 0
        while not stop.is_set():
            await self._clock.sleep(self._interval_s)
            if not any(not p.done for p in self._parents.values()):
                continue
            cycle += 1
            if cycle % CLOCK_EVERY == 0 and not any(p.pending for p in self._parents.values()):
                await self._sleep_while_closed()
            listing = await self._list()
            if listing is None:
                continue
            for tracked in list(self._parents.values()):
                if not tracked.done:
                    await self._settle(tracked, listing)

    async def _sleep_while_closed(self) -> None:
        # nothing fills while the market is closed: a careful poller reads the clock about once a minute and
        # sleeps to the next open instead of listing all night (a weekend would cost ~50,000 listings)
        clock = await self._api.attempt("fetching the market clock", self._api.client.get_clock)
        if clock is None or getattr(clock, "is_open", True):
            return
        next_open = getattr(clock, "next_open", None)
        if next_open is not None:
            await self._clock.sleep((next_open - self._clock.now()).total_seconds())

    async def _list(self) -> dict[str, Any] | None:
        """Return the polled orders by client_order_id, or None when a page failed (logged)."""
        watched = [p.sent_at for p in self._parents.values() if not p.done]
        after = min(watched) - timedelta(seconds=1)
        found: dict[str, Any] = {}
        while True:
            request = GetOrdersRequest(
                status=QueryOrderStatus.ALL, after=after, direction="asc", limit=PAGE, nested=False
            )
            page = await self._api.attempt("fetching orders", self._api.client.get_orders, request)
            if page is None or not isinstance(page, list):
                return None
            self.polls += 1
            for order in page:
                found[str(order.client_order_id)] = order
            if len(page) < PAGE:
                return found
            after = page[-1].created_at

    async def _settle(self, tracked: _Parent, listing: dict[str, Any]) -> None:
        for pending in list(tracked.pending):
            tracked.pending.remove(pending)
            if pending.client_order_id in listing:
                tracked.submitted = True  # the lost answer's order exists (a parent, or an exit)
            else:
                await self._send(tracked, pending, tracked.spec.side if pending.qty == 0 else _exit(tracked))
        order = listing.get(tracked.spec.id)
        if order is None:
            return
        tracked.submitted = True
        tracked.status = str(getattr(order.status, "value", order.status))
        tracked.filled = Decimal(str(order.filled_qty or 0))
        if order.filled_avg_price is not None:
            tracked.avg_price = Decimal(str(order.filled_avg_price))
        await self._protect(tracked)
        if tracked.status not in OPEN_ENTRY and tracked.covered >= tracked.filled and not tracked.pending:
            tracked.done = True

    async def _protect(self, tracked: _Parent) -> None:
        new = tracked.filled - tracked.covered
        if new <= 0:
            return
        spec = tracked.spec
        plain_stop = spec.stop_loss is not None and spec.stop_loss.kind != "trailing_stop"
        if plain_stop and spec.take_profit is None and tracked.status in OPEN_ENTRY:
            return  # a simple stop beside our own working entry is a potential wash trade: wait
        tracked.exits += 1
        coid = f"{spec.id}~poll-{tracked.exits}"
        base = tracked.avg_price or entry_base(spec, self._price_of(spec.symbol))
        request = exit_request(spec, new, coid, base)
        if request is None:
            return
        tracked.covered += new
        await self._send(tracked, _Pending(coid, request, new), _exit(tracked))

    async def _send(self, tracked: _Parent, pending: _Pending, side: str) -> None:
        spec = pending.request
        order = await self._api.attempt("submitting order", self._api.client.submit_order, spec)
        now = self._clock.now()
        if order is not None:
            if pending.qty == 0:
                tracked.submitted = True
            qty = str(getattr(order, "qty", ""))
            self._log.submitted(
                now, str(getattr(order, "id", "")), pending.client_order_id, tracked.spec.symbol, side, qty
            )
            return
        error = self._api.last_error
        body = {} if error is None else error.body
        kind = "Order" if pending.qty == 0 else "OCO"
        self._log.refused(now, body, tracked.number, kind, tracked.spec.symbol, pending.client_order_id, side)
        duplicate = error is not None and "client_order_id must be unique" in str(body.get("message", ""))
        if error is not None and error.refused and not duplicate:
            self.refusals += 1
            if pending.qty == 0:
                tracked.done = True  # a refused parent: nothing to protect
            else:
                tracked.covered -= pending.qty  # tried again from the next polled fill
            return
        tracked.pending.append(pending)  # weather or a lost answer: the next listing decides


def _exit(tracked: _Parent) -> str:
    return str(exit_side(tracked.spec).value)


def exit_request(parent: Any, qty: Decimal, client_order_id: str, base: Decimal) -> OrderRequest | None:
    """Return the exit for ``qty`` shares of ``parent`` (offsets from ``base``, the average fill price).

    Both exits: one OCO. A trailing stop cannot be an OCO leg (docs/alpaca.md §6), so a parent with a
    take-profit and a trailing stop gets the trailing stop alone: the protection, not the profit target.
    """
    exits = resolve_exits(parent, base)
    common: dict[str, Any] = {
        "symbol": parent.symbol,
        "qty": float(qty),
        "side": exit_side(parent),
        "time_in_force": TimeInForce.GTC,
        "client_order_id": client_order_id,
    }
    if exits.trailing:
        if exits.trail_percent is not None:
            return TrailingStopOrderRequest(**common, trail_percent=float(exits.trail_percent))
        return TrailingStopOrderRequest(**common, trail_price=float(exits.trail_price or 0))
    tp, stop, stop_limit = exits.take_profit, exits.stop_price, exits.stop_limit
    if tp is not None and stop is not None:
        leg = StopLossRequest(
            stop_price=float(stop), limit_price=None if stop_limit is None else float(stop_limit)
        )
        return LimitOrderRequest(
            **common,
            limit_price=float(tp),
            order_class=OrderClass.OCO,
            take_profit=TakeProfitRequest(limit_price=float(tp)),
            stop_loss=leg,
        )
    if tp is not None:
        return LimitOrderRequest(**common, limit_price=float(tp))
    if stop is not None and stop_limit is not None:
        return StopLimitOrderRequest(**common, stop_price=float(stop), limit_price=float(stop_limit))
    if stop is not None:
        return StopOrderRequest(**common, stop_price=float(stop))
    return None
