"""AlpacaBroker and AlpacaStream against the simulator on loopback: alpaca-py on the wire, our ports on top.

An in-process SimServer (stepped clock, so submission times are under the test's control) stands in for
Alpaca. The adapter is not mocked: requests go through alpaca-py's TradingClient, the stream through our
websocket client, and errors are the simulator's real bodies (Alpaca's exact 40310000 shape included).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from alpaca.trading.enums import OrderStatus as AlpacaStatus

from ordersync.brokers.alpaca import AlpacaBroker, AlpacaStream
from ordersync.brokers.alpaca.mapping import STATUS_MAP
from ordersync.clocks import SystemClock
from ordersync.domain.errors import (
    BrokerUnavailable,
    DuplicateClientOrderId,
    InsufficientQty,
    OrderRefused,
    RateLimited,
)
from ordersync.domain.events import OrderObserved
from ordersync.domain.ids import BrokerOrderId, ClientOrderId, Symbol
from ordersync.domain.order import (
    Order,
    OrderRole,
    OrderSide,
    OrderStatus,
    OrderType,
    TimeInForce,
    new_order,
)
from ordersync.engine import catchup
from ordersync.ports import StreamState, StreamStatus
from ordersync.sim import SimServer, SteppedClock, parse_scenario

START = datetime(2025, 10, 10, 15, 59, tzinfo=UTC)
KEY, SECRET = "broker-key", "broker-secret"
_ids = itertools.count(1)
_symbols = itertools.count(1)


def _scenario(**overrides: Any) -> Any:
    data: dict[str, Any] = {
        "name": "broker-adapter",
        "start": START.isoformat(),
        "rate_limit_per_min": 100_000,
        "symbols": {"OKE": {"price": "72.10"}},
    }
    data.update(overrides)
    return parse_scenario(data, "broker adapter scenario")


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    with SimServer(_scenario(), SteppedClock(START), api_key=KEY, secret_key=SECRET) as server:
        yield server


@pytest.fixture
def faulty_sim() -> Iterator[Callable[[dict[str, Any]], SimServer]]:
    """`faulty_sim(faults)`: a dedicated simulator with a fault configuration; stopped at teardown."""
    servers: list[SimServer] = []

    def start(faults: dict[str, Any]) -> SimServer:
        server = SimServer(_scenario(faults=faults), SteppedClock(START), api_key=KEY, secret_key=SECRET)
        servers.append(server.start())
        return server

    yield start
    for server in servers:
        server.stop()


def broker_for(server: SimServer | str) -> AlpacaBroker:
    url = server if isinstance(server, str) else server.base_url
    return AlpacaBroker(KEY, SECRET, clock=SystemClock(), base_url=url, timeout_s=5)


@pytest.fixture
def broker(sim: SimServer) -> AlpacaBroker:
    return broker_for(sim)


@pytest.fixture
def symbol(sim: SimServer) -> Symbol:
    """A symbol listed just now, so each test's position is its own."""
    name = f"B{next(_symbols):03d}"
    sim.set_price(name, "50.00")
    return Symbol(name)


def order(
    symbol: str,
    side: OrderSide = OrderSide.BUY,
    qty: int = 10,
    kind: OrderType = OrderType.LIMIT,
    limit: str | None = "40.00",
) -> Order:
    """An order with a fresh client_order_id (a buy limit below the market rests by default)."""
    return new_order(
        client_order_id=f"adapter-{next(_ids)}",
        symbol=symbol,
        side=side,
        type=kind,
        qty=qty,
        limit_price=limit if kind is OrderType.LIMIT else None,
        created_at=datetime.now(tz=UTC),
        time_in_force=TimeInForce.GTC,
    )


async def wait_for(check: Callable[[], Any], what: str, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s waiting for {what}"
        await asyncio.sleep(0.02)


async def bought(broker: AlpacaBroker, symbol: str, qty: int) -> None:
    """Open a long position: a market buy, filled by the simulator at its price."""
    await broker.submit(order(symbol, qty=qty, kind=OrderType.MARKET, limit=None))

    async def has_position() -> bool:
        position = await broker.position(Symbol(symbol))
        return position is not None and position.qty == qty

    await wait_for(has_position, f"a position of {qty} {symbol}")


# -- orders -------------------------------------------------------------------------------------------------


async def test_submit_returns_the_brokers_view_and_reads_find_it_by_either_id(
    broker: AlpacaBroker, symbol: Symbol
) -> None:
    sent = order(symbol)

    view = await broker.submit(sent)
    by_client_id = await broker.get_by_client_id(sent.client_order_id)
    by_id = await broker.get_order(view.broker_order_id)

    assert view.client_order_id == sent.client_order_id
    assert view.status in (OrderStatus.ACCEPTED, OrderStatus.NEW)
    assert (view.symbol, view.qty, view.filled_qty, view.limit_price) == (
        symbol,
        Decimal(10),
        Decimal(0),
        Decimal("40"),
    )
    assert view.side == "buy"
    assert by_client_id is not None
    assert by_client_id.broker_order_id == view.broker_order_id
    assert by_id is not None
    assert by_id.client_order_id == sent.client_order_id


async def test_unknown_orders_read_as_none_not_as_errors(broker: AlpacaBroker) -> None:
    assert await broker.get_by_client_id(ClientOrderId("never-sent")) is None
    assert await broker.get_order(BrokerOrderId("00000000-0000-4000-8000-000000000000")) is None


async def test_list_orders_pages_forward_with_after(
    sim: SimServer, broker: AlpacaBroker, symbol: Symbol
) -> None:
    since = sim.now()
    sent = []
    for _ in range(7):
        sim.advance(1)  # distinct submission times
        sent.append((await broker.submit(order(symbol))).client_order_id)

    first = await broker.list_orders("all", after=since, limit=3, direction="asc")
    second = await broker.list_orders("all", after=first[-1].submitted_at, limit=3, direction="asc")
    third = await broker.list_orders("all", after=second[-1].submitted_at, limit=3, direction="asc")

    pages = [[v.client_order_id for v in page] for page in (first, second, third)]
    assert pages == [sent[0:3], sent[3:6], sent[6:7]]


async def test_paged_read_of_the_engine_loses_no_order_when_equal_times_straddle_a_page(
    sim: SimServer, broker: AlpacaBroker, symbol: Symbol, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(catchup, "PAGE", 3)
    since = sim.now()
    sim.advance(1)
    sent = [(await broker.submit(order(symbol))).client_order_id for _ in range(2)]
    sim.advance(1)
    sent += [(await broker.submit(order(symbol))).client_order_id for _ in range(2)]  # 3rd and 4th: same time
    sim.advance(1)
    sent += [(await broker.submit(order(symbol))).client_order_id for _ in range(3)]

    views = await catchup.read_all(broker, "all", since)

    assert sorted(v.client_order_id for v in views) == sorted(sent)


async def test_list_orders_flattens_an_oco_with_its_stop_leg(
    sim: SimServer, broker: AlpacaBroker, symbol: Symbol
) -> None:
    await bought(broker, symbol, 10)
    oco = new_order(
        client_order_id=f"adapter-oco-{next(_ids)}",
        symbol=symbol,
        side=OrderSide.SELL,
        type=OrderType.LIMIT,
        qty=10,
        limit_price="60.00",
        stop_price="45.00",
        created_at=datetime.now(tz=UTC),
        time_in_force=TimeInForce.GTC,
        role=OrderRole.OCO,
    )

    view = await broker.submit(oco)
    listed = [v for v in await broker.list_orders("open") if v.symbol == symbol]

    assert len(view.leg_ids) == 1
    assert [v.broker_order_id for v in listed] == [view.broker_order_id, view.leg_ids[0]]
    assert (listed[1].order_type, listed[1].stop_price) == ("stop", Decimal("45"))


def _exit(
    symbol: str, kind: OrderType, qty: str = "10", tif: TimeInForce = TimeInForce.GTC, **prices: Any
) -> Order:
    role = OrderRole.OCO if "stop_limit_price" in prices and "limit_price" in prices else OrderRole.STOP_LOSS
    return new_order(
        client_order_id=f"adapter-exit-{next(_ids)}",
        symbol=symbol,
        side=OrderSide.SELL,
        type=kind,
        qty=qty,
        created_at=datetime.now(tz=UTC),
        time_in_force=tif,
        role=role,
        **prices,
    )


@pytest.mark.parametrize(
    ("prices", "trail"),
    [
        ({"trail_percent": "2.5"}, ("trail_percent", "2.5")),
        ({"trail_price": "1.25"}, ("trail_price", "1.25")),
    ],
    ids=["percent", "price"],
)
async def test_a_trailing_stop_reaches_the_broker_with_its_trail(
    sim: SimServer, broker: AlpacaBroker, symbol: Symbol, prices: dict[str, str], trail: tuple[str, str]
) -> None:
    await bought(broker, symbol, 10)

    view = await broker.submit(_exit(symbol, OrderType.TRAILING_STOP, **prices))

    (booked,) = [o for o in sim.snapshot()["orders"] if o["id"] == view.broker_order_id]
    assert booked["type"] == "trailing_stop"
    assert Decimal(booked[trail[0]]) == Decimal(trail[1])


async def test_a_stop_limit_alone_and_as_the_stop_leg_of_an_oco(
    sim: SimServer, broker: AlpacaBroker, symbol: Symbol
) -> None:
    await bought(broker, symbol, 20)

    lone = await broker.submit(_exit(symbol, OrderType.STOP_LIMIT, stop_price="45.00", limit_price="44.80"))
    oco = await broker.submit(
        _exit(symbol, OrderType.LIMIT, limit_price="60.00", stop_price="45.00", stop_limit_price="44.70")
    )

    books = {o["id"]: o for o in sim.snapshot()["orders"]}
    assert books[lone.broker_order_id]["type"] == "stop_limit"
    assert Decimal(books[lone.broker_order_id]["limit_price"]) == Decimal("44.80")
    leg = books[oco.leg_ids[0]]
    assert (leg["type"], Decimal(leg["stop_price"]), Decimal(leg["limit_price"])) == (
        "stop_limit",
        Decimal("45"),
        Decimal("44.70"),
    )


async def test_a_fraction_is_taken_in_a_day_stop_and_refused_in_a_gtc_one(
    broker: AlpacaBroker, symbol: Symbol
) -> None:
    await bought(broker, symbol, 10)

    with pytest.raises(OrderRefused, match="DAY"):
        await broker.submit(_exit(symbol, OrderType.STOP, qty="0.5", stop_price="45.00"))
    view = await broker.submit(
        _exit(symbol, OrderType.STOP, qty="0.5", tif=TimeInForce.DAY, stop_price="45.00")
    )

    assert view.qty == Decimal("0.5")


# -- positions ----------------------------------------------------------------------------------------------


async def test_position_reports_qty_available_net_of_open_sells(broker: AlpacaBroker, symbol: Symbol) -> None:
    assert await broker.position(symbol) is None  # flat

    await bought(broker, symbol, 10)
    await broker.submit(order(symbol, OrderSide.SELL, qty=4, limit="80.00"))
    one = await broker.position(symbol)
    every = await broker.positions()

    assert one is not None
    assert (one.qty, one.qty_available) == (Decimal(10), Decimal(6))
    assert every[symbol] == one


# -- error classification --------------------------------------------------------------------------------


async def test_40310000_held_for_orders_is_insufficient_qty_naming_the_holder(
    broker: AlpacaBroker, symbol: Symbol
) -> None:
    await bought(broker, symbol, 10)
    holder = await broker.submit(order(symbol, OrderSide.SELL, qty=6, limit="80.00"))

    with pytest.raises(InsufficientQty) as refused:
        await broker.submit(order(symbol, OrderSide.SELL, qty=5, limit="81.00"))

    error = refused.value
    assert (error.status_code, error.code) == (403, 40310000)
    assert error.related_orders == [holder.broker_order_id]
    assert {k: error.body[k] for k in ("existing_qty", "held_for_orders", "available")} == {
        "existing_qty": "10",
        "held_for_orders": "6",
        "available": "4",
    }
    assert error.classification.value == "needs_reconcile"


async def test_sell_before_the_buy_filled_is_insufficient_qty_naming_the_open_buy(
    broker: AlpacaBroker, symbol: Symbol
) -> None:
    """The seed's first failure: a take-profit while the parent is still open and nothing is held."""
    parent = await broker.submit(order(symbol))

    with pytest.raises(InsufficientQty) as refused:
        await broker.submit(order(symbol, OrderSide.SELL, qty=10, limit="80.00"))

    assert refused.value.code == 40310000
    assert refused.value.related_orders == [parent.broker_order_id]


async def test_reused_client_order_id_is_duplicate_client_order_id(
    broker: AlpacaBroker, symbol: Symbol
) -> None:
    sent = order(symbol)
    await broker.submit(sent)

    with pytest.raises(DuplicateClientOrderId) as refused:
        await broker.submit(sent)

    assert refused.value.status_code == 422
    assert refused.value.classification.value == "needs_reconcile"


async def test_429_is_rate_limited(faulty_sim: Callable[[dict[str, Any]], SimServer]) -> None:
    sim = faulty_sim({"on_request": [{"nth": 1, "fault": "429", "path": "/v2/orders:by_client_order_id"}]})
    broker = broker_for(sim)

    with pytest.raises(RateLimited) as refused:
        await broker.get_by_client_id(ClientOrderId("any"))

    assert refused.value.status_code == 429
    assert refused.value.classification.value == "rate_limited"


async def test_429_retry_after_is_a_delay_in_seconds_not_the_reset_epoch(
    faulty_sim: Callable[[dict[str, Any]], SimServer],
) -> None:
    """Alpaca's X-Ratelimit-Reset is the Unix time the window ends, not a number of seconds to wait."""
    sim = faulty_sim({"on_request": [{"nth": 1, "fault": "429", "path": "/v2/orders:by_client_order_id"}]})
    broker = broker_for(sim)

    with pytest.raises(RateLimited) as refused:
        await broker.get_by_client_id(ClientOrderId("any"))

    retry_after_s = refused.value.retry_after_s
    assert retry_after_s is None or 0 <= retry_after_s <= 60, (
        f"retry_after_s={retry_after_s}: brokers/alpaca/errors.py::_retry_after reads the "
        "X-Ratelimit-Reset header (a Unix timestamp) as a delay in seconds"
    )


async def test_broker_keeps_serving_after_a_429(faulty_sim: Callable[[dict[str, Any]], SimServer]) -> None:
    """One 429 must cost a short wait, never freeze every later request of the engine."""
    sim = faulty_sim({"on_request": [{"nth": 1, "fault": "429", "path": "/v2/orders:by_client_order_id"}]})
    broker = broker_for(sim)
    with contextlib.suppress(RateLimited):
        await broker.get_by_client_id(ClientOrderId("any"))

    try:
        await asyncio.wait_for(broker.get_by_client_id(ClientOrderId("any")), timeout=5)
    except TimeoutError:
        pytest.fail(
            "the request after a 429 waited more than 5 s: RequestBudget.penalize() was handed the "
            f"X-Ratelimit-Reset epoch as retry_after_s (tokens now {broker.budget._tokens:.3g})"
        )


@pytest.mark.parametrize("status", ["500", "503"])
async def test_5xx_is_broker_unavailable_and_nothing_was_created(
    faulty_sim: Callable[[dict[str, Any]], SimServer], status: str
) -> None:
    sim = faulty_sim({"on_request": [{"nth": 1, "fault": status, "method": "POST", "path": "/v2/orders"}]})
    broker = broker_for(sim)
    sent = order("OKE")

    with pytest.raises(BrokerUnavailable) as refused:
        await broker.submit(sent)

    assert refused.value.status_code == int(status)
    assert refused.value.classification.value == "retryable"
    assert await broker.get_by_client_id(sent.client_order_id) is None


async def test_lost_response_is_broker_unavailable_but_the_order_exists(
    faulty_sim: Callable[[dict[str, Any]], SimServer],
) -> None:
    """Why a submit that failed with 5xx must be looked up before any retry (docs/architecture.md §2,
    invariant 3)."""
    sim = faulty_sim(
        {"on_request": [{"nth": 1, "fault": "lost_response", "method": "POST", "path": "/v2/orders"}]}
    )
    broker = broker_for(sim)
    sent = order("OKE")

    with pytest.raises(BrokerUnavailable):
        await broker.submit(sent)

    found = await broker.get_by_client_id(sent.client_order_id)
    assert found is not None
    assert [o["client_order_id"] for o in sim.snapshot()["orders"]] == [sent.client_order_id]


async def test_no_server_is_broker_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    broker = broker_for(f"http://127.0.0.1:{port}")

    with pytest.raises(BrokerUnavailable):
        await broker.positions()


# -- status mapping ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", list(AlpacaStatus), ids=lambda s: s.value)
def test_every_alpaca_order_status_maps_to_the_domain_status_of_the_same_name(status: AlpacaStatus) -> None:
    assert status in STATUS_MAP, f"alpaca-py's OrderStatus.{status.name} has no entry in STATUS_MAP"
    assert STATUS_MAP[status].value == status.value


def test_status_map_has_nothing_beyond_alpaca_py() -> None:
    assert set(STATUS_MAP) == set(AlpacaStatus)


# -- stream -----------------------------------------------------------------------------------------------


class Collector:
    """Runs ``AlpacaStream.events()`` in a task and keeps what it yields."""

    def __init__(self, stream: AlpacaStream) -> None:
        self.stream = stream
        self.items: list[OrderObserved | StreamStatus] = []
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for item in self.stream.events():
            self.items.append(item)

    def statuses(self) -> list[StreamState]:
        return [i.state for i in self.items if isinstance(i, StreamStatus)]

    def observed(self, coid: str) -> list[OrderObserved]:
        return [i for i in self.items if isinstance(i, OrderObserved) and i.order.client_order_id == coid]

    async def until(self, check: Callable[[], bool], what: str) -> None:
        async def ready() -> bool:
            return check()

        await wait_for(ready, what)


@pytest.fixture
async def collector(sim: SimServer) -> AsyncIterator[Collector]:
    stream = AlpacaStream(KEY, SECRET, clock=SystemClock(), url=sim.stream_url, max_backoff_s=0.5, seed=3)
    collected = Collector(stream)
    yield collected
    await stream.close()
    sim.disconnect_streams()  # wakes a session blocked on recv so events() sees the close
    await asyncio.wait_for(collected.task, timeout=5)


async def test_stream_reports_connected_then_order_events_with_executions(
    sim: SimServer, broker: AlpacaBroker, symbol: Symbol, collector: Collector
) -> None:
    await collector.until(lambda: StreamState.CONNECTED in collector.statuses(), "CONNECTED")
    sent = order(symbol)

    view = await broker.submit(sent)
    sim.fill(client_order_id=sent.client_order_id, qty="4", price="40.00")
    await collector.until(lambda: len(collector.observed(sent.client_order_id)) >= 2, "new and partial_fill")

    new, partial = collector.observed(sent.client_order_id)[:2]
    assert (new.event, new.order.status, new.source.value) == ("new", OrderStatus.NEW, "stream")
    assert (partial.event, partial.order.status) == ("partial_fill", OrderStatus.PARTIALLY_FILLED)
    assert partial.order.broker_order_id == view.broker_order_id
    assert partial.order.filled_qty == 4
    assert partial.execution is not None
    assert (partial.execution.qty, partial.execution.price) == (Decimal(4), Decimal("40"))


async def test_stream_reports_each_drop_and_reconnects(sim: SimServer, collector: Collector) -> None:
    await collector.until(lambda: collector.statuses() == [StreamState.CONNECTED], "CONNECTED")

    sim.disconnect_streams()
    await collector.until(lambda: len(collector.statuses()) >= 3, "DISCONNECTED, then CONNECTED again")

    assert collector.statuses()[:3] == [
        StreamState.CONNECTED,
        StreamState.DISCONNECTED,
        StreamState.CONNECTED,
    ]
    assert collector.stream.connects >= 2


async def test_stream_with_wrong_keys_reports_disconnected_and_never_raises(sim: SimServer) -> None:
    stream = AlpacaStream(KEY, "wrong", clock=SystemClock(), url=sim.stream_url, max_backoff_s=0.2)
    collected = Collector(stream)
    await collected.until(lambda: StreamState.DISCONNECTED in collected.statuses(), "DISCONNECTED")

    await stream.close()
    await asyncio.wait_for(collected.task, timeout=5)

    assert StreamState.CONNECTED not in collected.statuses()
    assert collected.task.exception() is None
