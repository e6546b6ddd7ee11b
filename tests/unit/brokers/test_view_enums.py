"""A broker view carries the domain's side and order type members, from either parse path.

The engine decides on them (``observe.py`` building an adopted leg, ``domain/reconcile.py`` counting a
leg's fill), so both the alpaca-py path and the stream's fast path must hand over members, not strings.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from alpaca.trading.models import TradeUpdate
from corpus import simulator_frames

from ordersync.brokers.alpaca import parse
from ordersync.brokers.alpaca.mapping import observation
from ordersync.domain.events import BrokerOrderView
from ordersync.domain.order import OrderSide, OrderType

RECEIVED = datetime(2025, 10, 10, 15, 0, tzinfo=UTC)


def _views(view: BrokerOrderView) -> list[BrokerOrderView]:
    return [view, *(leg for child in view.legs for leg in _views(child))]


def test_views_from_both_paths_carry_the_domain_side_and_type() -> None:
    sides: set[OrderSide] = set()
    kinds: set[OrderType] = set()
    for frame in simulator_frames():
        data = json.loads(frame)["data"]
        for obs in (observation(TradeUpdate(**data), RECEIVED), parse.fast_observation(data, RECEIVED)):
            for view in _views(obs.order):
                assert type(view.side) is OrderSide, view
                assert type(view.order_type) is OrderType, view
                sides.add(view.side)
                kinds.add(view.order_type)
    assert sides == set(OrderSide)
    assert {OrderType.MARKET, OrderType.LIMIT, OrderType.STOP} <= kinds
