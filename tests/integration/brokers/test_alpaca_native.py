"""AlpacaBroker.submit_group against the simulator: an entry with its exits attached (bracket / OTO).

alpaca-py carries the request on the wire; the simulator creates the legs held, sized to the entry, and
refuses what Alpaca refuses. The view the adapter returns nests the legs (docs/alpaca.md §6.2).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from ordersync.brokers.alpaca import AlpacaBroker
from ordersync.clocks import SystemClock
from ordersync.domain.errors import OrderRefused
from ordersync.domain.exits import AttachedExits
from ordersync.domain.order import Order, OrderStatus, OrderType, TimeInForce, new_order
from ordersync.sim import SimServer, SteppedClock, parse_scenario

START = datetime(2025, 10, 10, 15, 59, tzinfo=UTC)
KEY, SECRET = "native-key", "native-secret"
_ids = itertools.count(1)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    scenario = parse_scenario(
        {
            "name": "native-adapter",
            "start": START.isoformat(),
            "rate_limit_per_min": 100_000,
            "symbols": {"OKE": {"price": "50.00"}},
        },
        "native adapter scenario",
    )
    with SimServer(scenario, SteppedClock(START), api_key=KEY, secret_key=SECRET) as server:
        yield server


@pytest.fixture
def broker(sim: SimServer) -> AlpacaBroker:
    return AlpacaBroker(KEY, SECRET, clock=SystemClock(), base_url=sim.base_url, timeout_s=5)


def entry(kind: OrderType = OrderType.LIMIT, side: str = "buy") -> Order:
    return new_order(
        client_order_id=f"native-{next(_ids)}",
        symbol="OKE",
        side=side,
        type=kind,
        qty=10,
        limit_price="40.00" if kind is OrderType.LIMIT else None,
        stop_price="60.00" if kind is OrderType.STOP else None,
        created_at=datetime.now(tz=UTC),
        time_in_force=TimeInForce.GTC,
    )


async def test_a_bracket_goes_out_as_one_group_with_its_two_legs_held_and_sized_to_the_entry(
    broker: AlpacaBroker,
) -> None:
    parent = entry()

    view = await broker.submit_group(parent, AttachedExits(Decimal("45"), Decimal("35")))

    assert view.client_order_id == parent.client_order_id
    assert view.order_class == "bracket"
    assert sorted((leg.order_type, leg.status, leg.qty) for leg in view.legs) == [
        ("limit", OrderStatus.HELD, Decimal(10)),
        ("stop", OrderStatus.HELD, Decimal(10)),
    ]
    assert {leg.limit_price for leg in view.legs} | {leg.stop_price for leg in view.legs} >= {
        Decimal(45),
        Decimal(35),
    }


async def test_an_oto_carries_its_one_stop_limit_leg(broker: AlpacaBroker) -> None:
    view = await broker.submit_group(
        entry(OrderType.MARKET), AttachedExits(stop_price=Decimal("35"), stop_limit=Decimal("34.50"))
    )

    assert view.order_class == "oto"
    (leg,) = view.legs
    assert (leg.order_type, leg.stop_price, leg.limit_price) == ("stop_limit", Decimal(35), Decimal("34.5"))


async def test_a_stop_entry_is_refused_as_alpaca_refuses_a_bracket_on_it(broker: AlpacaBroker) -> None:
    with pytest.raises(OrderRefused, match="market or limit"):
        await broker.submit_group(entry(OrderType.STOP), AttachedExits(Decimal("70"), Decimal("55")))
