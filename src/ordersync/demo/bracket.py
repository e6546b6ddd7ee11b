"""Alpaca's own brackets: each parent goes out as one bracket (both exits) or OTO (one exit), nothing else.

What a platform owner would try first: let the broker hold the exits. The broker keeps both legs ``held``
until the entry has *completely* filled and sizes them to the entry's full quantity (docs/alpaca.md
§6), so this mode needs no polling and no stream, and sends one request per parent. Its weak cases
are the broker's rules, measured from the simulator's books like every mode: shares of a partly filled entry
wait unprotected until the entry completes, and when a partly filled entry is cancelled or expires its legs
end with it, leaving those shares unprotected for good.

Weather: a parent whose POST failed without a refusal (429, 5xx, a lost response) is sent again with the same
client_order_id after ``retry_s``; a 422 "client_order_id must be unique" then means the lost one exists.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from alpaca.trading.client import TradingClient

from ordersync.demo.client import PlatformClient
from ordersync.demo.conductor import DemoClock
from ordersync.demo.orders import bracket_request
from ordersync.demo.platform_log import PlatformLog

__all__ = ["BracketPlatform"]

MAX_ATTEMPTS = 8


class BracketPlatform:
    """Sends each parent as one bracket/OTO order."""

    def __init__(
        self,
        client: TradingClient,
        clock: DemoClock,
        log: PlatformLog,
        price_of: Callable[[str], Decimal],
        *,
        retry_s: float = 5.0,
    ) -> None:
        self._api = PlatformClient(client, clock, log)
        self._clock = clock
        self._log = log
        self._retry_s = retry_s
        self._price_of = price_of
        self.notes: list[str] = []
        self._numbers: dict[str, int] = {}
        self.refusals = 0
        self.sent = 0

    @property
    def inflight(self) -> int:
        """Requests on the wire now."""
        return self._api.inflight

    async def submit_parent(self, parent: Any) -> None:
        """Send the parent with its exits attached; retry weather, log a refusal and move on."""
        request, note = bracket_request(parent, self._price_of(parent.symbol))
        if note is not None:
            self.notes.append(note)
        number = self._numbers.setdefault(parent.id, len(self._numbers) + 101)
        for _ in range(MAX_ATTEMPTS):
            order = await self._api.attempt("submitting order", self._api.client.submit_order, request)
            now = self._clock.now()
            if order is not None:
                self.sent += 1
                qty = str(getattr(order, "qty", ""))
                self._log.submitted(
                    now, str(getattr(order, "id", "")), parent.id, parent.symbol, parent.side, qty
                )
                return
            error = self._api.last_error
            body = {} if error is None else error.body
            self._log.refused(now, body, number, "Bracket", parent.symbol, parent.id, parent.side)
            if "client_order_id must be unique" in str(body.get("message", "")):
                return  # an earlier attempt's lost answer: the bracket is at the broker
            if error is not None and error.refused:
                self.refusals += 1
                return
            await self._clock.sleep(self._retry_s)
