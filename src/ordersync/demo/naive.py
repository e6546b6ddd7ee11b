"""The naive baseline (docs/architecture.md §9): the seed's platform, on the same simulator and scenario.

It takes a parent for filled once the broker accepts it, sends the take-profit at once (refused while
the buy is open: "cannot open a short sell while a long buy order is open"), sends the stop-loss as a
separate sell beside the live take-profit (refused: the take-profit holds the shares, ``held_for_orders``
= ``existing_qty``, the seed's bodies), and polls every 30 s with one GET per order. A refused child is
sent again, whole, on the cycle after its parent changes (a fill the platform notices), until
``max_child_attempts`` — after which it gives up and the position stays unprotected, as the seed's
did. (Retrying on *every* cycle would turn a 6-hour open parent into ~780 refusals; the seed shows 1-5
per parent, which matches retries driven by the platform's own status updates.)

Like the seed's platform it never stops on an error: a refused or failed parent (403, 429, 5xx, a lost
response's 504) is logged and dropped, a failed child is logged and retried as above, a failed read is
logged and skipped until the next cycle.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any

from alpaca.trading.client import TradingClient
from alpaca.trading.enums import TimeInForce
from alpaca.trading.requests import (
    LimitOrderRequest,
    OrderRequest,
    StopLimitOrderRequest,
    StopOrderRequest,
    TrailingStopOrderRequest,
)

from ordersync.demo.client import PlatformClient
from ordersync.demo.conductor import DemoClock
from ordersync.demo.orders import entry_base, entry_request, exit_side, parents_of, resolve_exits
from ordersync.demo.platform_log import PlatformLog

__all__ = ["NaivePlatform", "NaiveStats", "parents_of"]


@dataclass
class _Child:
    parent_id: str
    symbol: str
    kind: str  # "TP" or "SL"
    request: Callable[[str], OrderRequest]
    attempts: int = 0
    accepted: bool = False
    seen_filled: str = "0"  # the parent's filled_qty when the child was last sent


@dataclass
class NaiveStats:
    """What the naive platform itself believes and did."""

    believed_filled: dict[str, Decimal] = field(default_factory=dict)
    refusals: int = 0
    child_accepted: int = 0
    parents_failed: int = 0


class NaivePlatform:
    """Submits the scenario's parents the seed's way."""

    def __init__(
        self,
        client: TradingClient,
        clock: DemoClock,
        log: PlatformLog,
        price_of: Callable[[str], Decimal],
        *,
        poll_interval_s: float = 30.0,
        max_child_attempts: int = 3,
    ) -> None:
        self._api = PlatformClient(client, clock, log)
        self._clock = clock
        self._log = log
        self._poll_interval_s = poll_interval_s
        self._price_of = price_of
        self._max_attempts = max_child_attempts
        self._children: list[_Child] = []
        self._numbers: dict[str, int] = {}
        self.stats = NaiveStats()

    @property
    def inflight(self) -> int:
        """Requests on the wire now."""
        return self._api.inflight

    async def submit_parent(self, parent: Any) -> None:
        """Submit one scenario parent, then its children immediately (the seed's mistake)."""
        number = self._numbers.setdefault(parent.id, len(self._numbers) + 101)
        order = await self._api.attempt(
            "submitting order", self._api.client.submit_order, entry_request(parent)
        )
        if order is None:  # refused, rate-limited, 5xx or a lost response: logged, and the platform goes on
            error = self._api.last_error
            self.stats.parents_failed += 1
            body = {} if error is None else error.body
            self._log.refused(self._clock.now(), body, number, "Order", parent.symbol, parent.id, parent.side)
            del self._numbers[parent.id]
            return
        broker_id = str(getattr(order, "id", ""))
        self._log.submitted(
            self._clock.now(), broker_id, parent.id, parent.symbol, parent.side, str(parent.qty)
        )
        self.stats.believed_filled[parent.id] = Decimal(
            str(parent.qty)
        )  # local status trusted over the broker's
        for child in self._children_of(parent):
            self._children.append(child)
            if child.kind == "TP":
                await self._try(child)
        await self._stops_beside_live_take_profits()

    def _children_of(self, parent: Any) -> list[_Child]:
        # each exit a separate simple sell of the parent's whole quantity: the seed platform's shape (an
        # offset is taken from the entry's limit: the platform sends its exits before any fill)
        exits = resolve_exits(parent, entry_base(parent, self._price_of(parent.symbol)))
        common = {
            "symbol": parent.symbol,
            "qty": float(parent.qty),
            "side": exit_side(parent),
            "time_in_force": TimeInForce.GTC,
        }
        children: list[_Child] = []
        if exits.take_profit is not None:
            tp = {"limit_price": float(exits.take_profit)}
            request = partial(_request, LimitOrderRequest, {**common, **tp})
            children.append(_Child(parent.id, parent.symbol, "TP", request))
        stop: tuple[type[OrderRequest], dict[str, float]] | None = None
        if exits.trail_percent is not None:
            stop = TrailingStopOrderRequest, {"trail_percent": float(exits.trail_percent)}
        elif exits.trail_price is not None:
            stop = TrailingStopOrderRequest, {"trail_price": float(exits.trail_price)}
        elif exits.stop_price is not None and exits.stop_limit is not None:
            stop = (
                StopLimitOrderRequest,
                {"stop_price": float(exits.stop_price), "limit_price": float(exits.stop_limit)},
            )
        elif exits.stop_price is not None:
            stop = StopOrderRequest, {"stop_price": float(exits.stop_price)}
        if stop is not None:
            children.append(
                _Child(parent.id, parent.symbol, "SL", partial(_request, stop[0], {**common, **stop[1]}))
            )
        return children

    async def _try(self, child: _Child) -> None:
        child.attempts += 1
        coid = f"naive-{child.parent_id}-{child.kind.lower()}-{child.attempts}"
        order = await self._api.attempt(
            "submitting order", self._api.client.submit_order, child.request(coid)
        )
        if order is None:
            self.stats.refusals += 1
            error = self._api.last_error
            body = {} if error is None else error.body
            number = self._numbers[child.parent_id]
            self._log.refused(self._clock.now(), body, number, child.kind, child.symbol, coid)
            return
        child.accepted = True
        self.stats.child_accepted += 1
        qty = str(getattr(order, "qty", ""))
        self._log.submitted(self._clock.now(), str(getattr(order, "id", "")), coid, child.symbol, "sell", qty)

    async def run_polling(self, stop: asyncio.Event) -> None:
        """Every poll cycle: read each parent (one GET per order), retry refused children."""
        while not stop.is_set():
            await self._clock.sleep(self._poll_interval_s)
            filled: dict[str, str] = {}
            for parent_id in list(self._numbers):
                order = await self._api.attempt(
                    "fetching order", self._api.client.get_order_by_client_id, parent_id
                )
                if order is not None:  # a failed read is logged and skipped: the next cycle reads again
                    filled[parent_id] = str(getattr(order, "filled_qty", "0"))
            for child in self._children:
                changed = filled.get(child.parent_id, child.seen_filled) != child.seen_filled
                retry = child.attempts > 0 and changed and child.attempts < self._max_attempts
                if not child.accepted and retry:
                    child.seen_filled = filled[child.parent_id]
                    await self._try(child)
            await self._stops_beside_live_take_profits()

    async def _stops_beside_live_take_profits(self) -> None:
        # the stop goes out once the take-profit is live, as a separate sell for the same shares: the
        # take-profit already holds them (held_for_orders = existing_qty), the seed's refusal bodies
        live = {c.parent_id for c in self._children if c.kind == "TP" and c.accepted}
        for child in self._children:
            if child.kind == "SL" and child.attempts == 0 and child.parent_id in live:
                await self._try(child)


def _request(kind: type[OrderRequest], fields: dict[str, Any], client_order_id: str) -> OrderRequest:
    return kind(**fields, client_order_id=client_order_id)
