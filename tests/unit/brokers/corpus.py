"""Real trade_updates frames from the simulator's broker model, for the fast-parse tests.

An in-process ``Exchange`` (the simulator's books and venue) runs a small day that produces every kind
of message the stream carries, serialized byte for byte as the simulator's stream hub sends them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from ordersync.sim.clock import SteppedClock
from ordersync.sim.exchange import Exchange
from ordersync.sim.order_request import parse_order_request, parse_replace_request
from ordersync.sim.scenarios import parse_scenario
from ordersync.sim.serialize import trade_update

START = datetime(2025, 10, 10, 14, 30, tzinfo=UTC)


class _Capture:
    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def publish(self, message: dict[str, Any]) -> None:
        self.frames.append(json.dumps(message, separators=(",", ":")).encode())


def simulator_frames() -> list[bytes]:
    """Return the frames of a day with fractional, bracket, OCO, replaced, canceled and expired orders."""
    scenario = parse_scenario(
        {
            "symbols": {"AAPL": {"price": "100"}, "BRK.B": {"price": "412.5"}},
            "start": START.isoformat(),
            "seed": 7,
        }
    )
    clock = SteppedClock(START)
    sink = _Capture()
    ex = Exchange(scenario.exchange_config(), clock, sink)

    def later(seconds: float) -> None:
        ex.advance_to(clock.now() + timedelta(seconds=seconds))

    def submit(**body: Any) -> dict[str, Any]:
        body.setdefault("time_in_force", "day")
        order = ex.submit(parse_order_request(body))
        later(1)
        return order

    # fractional market buy: fills at once
    submit(symbol="AAPL", qty="1.5", side="buy", type="market", client_order_id="frac-1")
    # limit buy filled in parts, then the rest canceled
    part = submit(
        symbol="AAPL", qty="10", side="buy", type="limit", limit_price="90", client_order_id="lim-1"
    )
    ex.manual_fill(part["id"], None, Decimal("2.5"), Decimal("89.99"))
    ex.manual_fill(part["id"], None, Decimal("3"), Decimal("89.98"))
    later(1)
    ex.cancel(part["id"])
    later(5)
    # a limit replaced (PATCH): pending_replace, replaced (replaced_by), the successor (replaces), its fill
    old = submit(
        symbol="BRK.B", qty="4", side="buy", type="limit", limit_price="400", client_order_id="rep-1"
    )
    new = ex.replace(old["id"], parse_replace_request({"limit_price": "401.25", "client_order_id": "rep-2"}))
    later(5)
    ex.manual_fill(new["id"], None, None, Decimal("401.25"))
    later(1)
    # a bracket: the entry fills, its legs (nested) go live, the take-profit fills, the stop is canceled
    bracket = submit(
        symbol="AAPL",
        qty="5",
        side="buy",
        type="limit",
        limit_price="95",
        order_class="bracket",
        take_profit={"limit_price": "120"},
        stop_loss={"stop_price": "80", "limit_price": "79.5"},
        client_order_id="brk-1",
    )
    nested: list[dict[str, Any]] = [ex.get_order(bracket["id"], nested=True)]
    ex.manual_fill(bracket["id"], None, None, Decimal("95"))
    later(1)
    nested.append(ex.get_order(bracket["id"], nested=True))
    ex.set_price("AAPL", Decimal("121"))
    later(5)
    # an OCO exit pair on the position
    submit(
        symbol="AAPL",
        qty="7",
        side="sell",
        type="limit",
        order_class="oco",
        take_profit={"limit_price": "130"},
        stop_loss={"stop_price": "70"},
        client_order_id="oco-1",
    )
    nested.append(ex.get_order(ex.get_by_client_id("oco-1")["id"], nested=True))
    ex.set_price("AAPL", Decimal("69"))
    later(5)
    # a day order left working until the close: expired
    submit(symbol="BRK.B", qty="1", side="buy", type="limit", limit_price="300", client_order_id="day-1")
    ex.advance_to(START.replace(hour=21, minute=30))
    # the nested form (legs under the parent) as the REST answers carry it, in a trade_updates envelope
    for order in nested:
        sink.publish(trade_update("new", order, clock.now()))
    return sink.frames
