"""End-to-end fixtures: `ordersync sim serve` in its own process, and engines that talk to it over loopback.

The simulator runs as a subprocess of the real console script (`ordersync sim serve --clock real`), so the
engine meets it exactly as it would meet Alpaca: REST through alpaca-py and the trade_updates websocket, in
real time. The scenario lists symbols and no planned fills: tests fill orders themselves through the control
API (POST /sim/fill) and read the simulator's books (GET /sim/state) as the judge of every assertion.

Engines use a SystemClock, SQLite under tmp_path (or a fresh PostgreSQL schema) and small intervals, so a
test finishes in seconds. A background watcher samples the books while a test runs and records any moment
where a child existed before its parent had a confirmed fill, or covered more than the parent had filled.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from alpaca.trading.client import TradingClient
from alpaca.trading.models import Order as AlpacaOrder
from alpaca.trading.requests import ReplaceOrderRequest
from inprocess import wire_to_sim

from ordersync.brokers.alpaca import AlpacaBroker, AlpacaStream
from ordersync.clocks import SystemClock
from ordersync.demo.books import books_coverage
from ordersync.domain.order import Order, OrderSide, OrderType, TimeInForce, new_order
from ordersync.engine import Engine, EngineOptions
from ordersync.ports import Alert, Store
from ordersync.sim.process import end_process, start_simulator_process
from ordersync.testing import wait_until_async

KEY, SECRET = "e2e-key", "e2e-secret"
SYMBOL = "OKE"
MARKET = Decimal("100.00")  # the symbol's price: a buy limit at ENTRY rests until a test fills it
ENTRY = Decimal("90.00")
TAKE_PROFIT = Decimal("110.00")
STOP_LOSS = Decimal("80.00")
INSUFFICIENT_QTY = "40310000"

FAST = EngineOptions(
    poll_interval_s=0.2,
    tick_s=0.2,
    stream_silence_s=2.0,
    reconcile_interval_s=2.0,
    release_backoff_base_s=0.2,
    release_backoff_cap_s=1.0,
    lookup_backoff_base_s=0.1,
    lookup_backoff_cap_s=0.5,
    unprotected_alert_s=1.0,
    unknown_alert_s=5.0,
)


def buy_parent(coid: str, qty: int = 10) -> Order:
    """A GTC buy limit at ENTRY, below the market: it rests at the broker until the test fills it."""
    return new_order(
        client_order_id=coid,
        symbol=SYMBOL,
        side=OrderSide.BUY,
        type=OrderType.LIMIT,
        qty=qty,
        limit_price=ENTRY,
        created_at=SystemClock().now(),
        time_in_force=TimeInForce.GTC,
    )


def scenario_data(**overrides: Any) -> dict[str, Any]:
    """A small scenario: a few symbols, no planned fills, a rate limit the tests never reach."""
    data: dict[str, Any] = {
        "name": "e2e",
        "description": "symbols only: the tests fill orders through POST /sim/fill",
        "rate_limit_per_min": 100_000,
        "symbols": {SYMBOL: {"price": str(MARKET)}, "KMI": {"price": "27.50"}, "EPD": {"price": "31.20"}},
    }
    data.update(overrides)
    return data


# -- reading the simulator's books --------------------------------------------------------------------


@dataclass(frozen=True)
class Books:
    """One snapshot of the simulator's books (GET /sim/state), with the questions the tests ask of it."""

    state: dict[str, Any]

    @property
    def orders(self) -> list[dict[str, Any]]:
        return list(self.state["orders"])

    def with_coid(self, coid: str) -> list[dict[str, Any]]:
        """Every broker order carrying ``coid`` as its client_order_id."""
        return [o for o in self.orders if o["client_order_id"] == coid]

    def one(self, coid: str) -> dict[str, Any]:
        """The one broker order with ``coid`` (fails if there are none or several)."""
        found = self.with_coid(coid)
        assert len(found) == 1, f"expected exactly one broker order {coid!r}, found {len(found)}"
        return found[0]

    def status(self, coid: str) -> str | None:
        found = self.with_coid(coid)
        return found[0]["status"] if found else None

    def groups(self, parent: str) -> list[list[dict[str, Any]]]:
        """The parent's children at the broker, one list per group (an OCO root, then its stop leg)."""
        by_id = {o["id"]: o for o in self.orders}
        roots = [o for o in self.orders if o["client_order_id"].startswith(f"{parent}~")]
        return [[root, *(by_id[i] for i in root["sim"]["leg_ids"])] for root in roots]

    def coverage(self, parent: str) -> Decimal:
        """Shares the parent's children protect (docs/architecture.md §2, invariant 2), counted from the
        broker's books.

        An open group counts its quantity once (an OCO reserves its shares once); a finished one what it sold:
        the demo summary's and the chaos checks' own computation (``ordersync.demo.books``).
        """
        return books_coverage([m for group in self.groups(parent) for m in group])

    def filled(self, coid: str) -> Decimal:
        """The broker's filled quantity of ``coid`` (0 when it is not at the broker)."""
        return sum((Decimal(o["filled_qty"]) for o in self.with_coid(coid)), Decimal(0))

    @property
    def insufficient_qty(self) -> int:
        """How many 40310000 refusals the broker has answered so far."""
        return int(self.state["counters"]["rejections"]["by_code"].get(INSUFFICIENT_QTY, 0))

    @property
    def faults(self) -> dict[str, int]:
        return dict(self.state["counters"]["faults"])

    def requests(self, endpoint: str) -> int:
        return int(self.state["counters"]["requests"].get(endpoint, 0))

    def describe(self, parent: str | None) -> str:
        """One line per broker order of a parent and its children, for assertion messages."""
        lines = []
        for o in self.orders:
            coid = o["client_order_id"]
            if parent is None or coid == parent or coid.startswith(f"{parent}~"):
                lines.append(
                    f"{coid} {o['order_class'] or 'simple'} {o['side']} qty={o['qty']} "
                    f"filled={o['filled_qty']} {o['status']} legs={o['sim']['leg_ids']}"
                )
        counts = self.state["counters"]["rejections"]["by_code"]
        return "\n".join([*lines, f"rejections by code: {counts}"])


# -- the simulator process ------------------------------------------------------------------------------


@dataclass
class Sim:
    """A running `ordersync sim serve` and async access to its control API."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    http: httpx.AsyncClient = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.AsyncClient(base_url=self.base_url, timeout=10)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def stream_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/stream"

    async def books(self) -> Books:
        """A snapshot of the books (GET /sim/state)."""
        response = await self.http.get("/sim/state")
        response.raise_for_status()
        return Books(response.json())

    async def until(
        self,
        predicate: Callable[[Books], bool],
        what: str,
        parent: str | None = None,
        timeout_s: float = 10.0,
    ) -> Books:
        """Poll the books until ``predicate`` holds and return them, or fail saying ``what``."""
        deadline = time.monotonic() + timeout_s
        while True:
            books = await self.books()
            if predicate(books):
                return books
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout_s} s waiting for {what}\n{books.describe(parent)}"
                )
            await asyncio.sleep(0.05)

    async def stays(
        self, predicate: Callable[[Books], bool], what: str, parent: str | None, seconds: float
    ) -> Books:
        """Check ``predicate`` on every sample of the books for ``seconds``; return the last sample."""
        deadline = time.monotonic() + seconds
        while True:
            books = await self.books()
            assert predicate(books), f"{what} stopped holding\n{books.describe(parent)}"
            if time.monotonic() > deadline:
                return books
            await asyncio.sleep(0.05)

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.http.post(path, json=body)
        assert response.status_code == 200, f"POST {path} {body}: {response.status_code} {response.text}"
        result: dict[str, Any] = response.json()
        return result

    async def fill(
        self, coid: str, qty: Decimal | int | None = None, price: Decimal = ENTRY
    ) -> dict[str, Any]:
        """Execute ``qty`` (default: the rest) of the broker order ``coid`` now, at ``price``."""
        body: dict[str, Any] = {"client_order_id": coid, "price": str(price)}
        if qty is not None:
            body["qty"] = str(qty)
        return await self._post("/sim/fill", body)

    async def set_faults(self, **config: Any) -> None:
        """Replace the fault configuration (see ordersync.sim.faults.FaultConfig)."""
        await self._post("/sim/faults", config)

    async def drop_streams(self) -> int:
        """Drop every trade_updates connection now; return how many were dropped."""
        return int((await self._post("/sim/stream/disconnect", {}))["dropped"])

    async def listening(self) -> int:
        return int((await self.books()).state["stream"]["listening"])

    def client(self) -> TradingClient:
        """An alpaca-py client of another platform on the same account (foreign orders)."""
        client = TradingClient(KEY, SECRET, url_override=self.base_url)
        client._retry = 0
        return client

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def _start_sim(workdir: Path, overrides: dict[str, Any]) -> Sim:
    name = f"{uuid.uuid4().hex[:8]}"
    scenario = workdir / f"scenario-{name}.yaml"
    scenario.write_text(yaml.safe_dump(scenario_data(**overrides), sort_keys=False))
    env = {**os.environ, "APCA_API_KEY_ID": KEY, "APCA_API_SECRET_KEY": SECRET, "NO_PROXY": "127.0.0.1"}
    log_path = workdir / f"sim-{name}.log"
    try:
        process, port = start_simulator_process(scenario, clock="real", log_path=log_path, env=env)
    except RuntimeError as e:
        raise AssertionError(f"{e}; its log:\n{log_path.read_text()[-3000:]}") from e
    return Sim(process, port, log_path)


@pytest.fixture
def start_sim(tmp_path: Path) -> Iterator[Callable[..., Sim]]:
    """`start_sim(**scenario_overrides)`: a fresh simulator process; terminated at teardown."""
    started: list[Sim] = []

    def start(**overrides: Any) -> Sim:
        sim = _start_sim(tmp_path, overrides)
        started.append(sim)
        return sim

    yield start
    for sim in started:
        end_process(sim.process)


@pytest.fixture
async def sim(request: pytest.FixtureRequest, start_sim: Callable[..., Sim]) -> AsyncIterator[Sim]:
    """The simulator of a test: the scenario above, with overrides when parametrized indirectly."""
    server = start_sim(**getattr(request, "param", {}))
    yield server
    await server.http.aclose()


# -- stores ---------------------------------------------------------------------------------------------


@pytest.fixture
def store_url(sqlite_url: str) -> str:
    """The store of a test; tests parametrized with ``db`` also run on PostgreSQL."""
    return sqlite_url


STORES = [pytest.param("sqlite"), pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=STORES)
def any_store_url(request: pytest.FixtureRequest) -> str:
    """An empty SQL store: SQLite, then PostgreSQL (never skipped when CI=true)."""
    return str(request.getfixturevalue(f"{request.param}_url"))


# -- engines --------------------------------------------------------------------------------------------


@dataclass
class Running:
    """One engine and the adapters it was built from."""

    engine: Engine
    store: Store
    broker: AlpacaBroker
    stream: AlpacaStream
    stopped: bool = False

    def alerts(self) -> list[Alert]:
        with self.store.transaction() as tx:
            return tx.open_alerts()

    def local(self, coid: str) -> Order:
        found = [o for o in self.engine.orders() if o.client_order_id == coid]
        assert found, f"the engine holds no order {coid!r}"
        return found[0]

    def unsettled(self) -> list[Order]:
        """Local orders still waiting to be sent or settled (an orphan intent would show here)."""
        return [o for o in self.engine.orders() if o.status.is_local]

    def plan_done(self, parent_coid: str) -> bool:
        with self.store.transaction() as tx:
            state = tx.get_plan(parent_coid)  # type: ignore[arg-type]
        assert state is not None, f"no plan stored for {parent_coid}"
        return state.done

    async def replaced_by_a_person(
        self, person: TradingClient, order_id: str, edit: ReplaceOrderRequest
    ) -> Order:
        """PATCH ``order_id`` as a person at the dashboard would; return the engine's order for the
        replacement once the engine has adopted it and gone idle."""
        new = await asyncio.to_thread(person.replace_order_by_id, order_id, edit)
        assert isinstance(new, AlpacaOrder)
        adopted = lambda: any(o.broker_order_id == str(new.id) for o in self.engine.orders())  # noqa: E731
        await wait_until_async(adopted, 10.0, "the replacement adopted")
        assert await self.engine.wait_idle(timeout_s=10)
        await asyncio.sleep(1.0)
        (successor,) = [o for o in self.engine.orders() if o.broker_order_id == str(new.id)]
        return successor

    async def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            await self.engine.stop()
            self.store.close()

    async def crash(self) -> None:
        """End the engine abruptly: every task cancelled mid-flight, no stop(), nothing flushed."""
        self.stopped = True
        engine: Any = self.engine  # reaching into private state is the point: no orderly shutdown
        tasks = [*engine._loops, *engine._ctx.tasks]
        if engine._release_task is not None:
            tasks.append(engine._release_task)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.stream.close()  # the dead process's socket goes away with it
        self.store.close()


@pytest.fixture
async def make_engine(sim: Sim, store_url: str) -> AsyncIterator[Callable[..., Awaitable[Running]]]:
    """`await make_engine(url=None, options=FAST)`: a started engine on ``sim``; stopped at teardown."""
    running: list[Running] = []

    async def make(url: str | None = None, options: EngineOptions = FAST) -> Running:
        wiring = wire_to_sim(
            sim.base_url,
            sim.stream_url,
            url or store_url,
            clock=SystemClock(),
            key=KEY,
            secret=SECRET,
            timeout_s=10,
            requests_per_minute=100_000,
            options=options,
            stream_seed=7,
            stream_max_backoff_s=1.0,
        )
        assert wiring.stream is not None
        item = Running(wiring.engine, wiring.store, wiring.broker, wiring.stream)
        engine = wiring.engine
        running.append(item)
        await engine.start()
        return item

    yield make
    for item in running:
        await item.stop()


# -- watching the books ------------------------------------------------------------------------------


@dataclass
class BooksWatch:
    """Samples the books in the background; records every breach of invariants 1 and 2 it sees."""

    sim: Sim
    parents: set[str] = field(default_factory=set)
    violations: list[str] = field(default_factory=list)
    samples: int = 0

    async def run(self) -> None:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                self.check(await self.sim.books())
            await asyncio.sleep(0.02)

    def assert_clean(self) -> None:
        """Fail with every breach seen (and if the watcher never got to look at the books)."""
        assert self.samples > 0, "the books watcher never sampled the books"
        assert self.violations == [], "\n\n".join(self.violations[:3])

    def check(self, books: Books) -> None:
        self.samples += 1
        for parent in self.parents:
            done, covered = books.filled(parent), books.coverage(parent)
            if covered > done:  # also catches a child before any confirmed fill (covered > 0 = filled)
                self.violations.append(
                    f"{parent}: covered {covered} > filled {done}\n{books.describe(parent)}"
                )


@pytest.fixture
async def books_watch(sim: Sim) -> AsyncIterator[BooksWatch]:
    """Watch the books of the parents a test adds to ``books_watch.parents``."""
    watch = BooksWatch(sim)
    task = asyncio.create_task(watch.run())
    yield watch
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
