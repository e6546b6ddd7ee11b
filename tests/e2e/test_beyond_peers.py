"""What none of the peers does well (docs/architecture.md §11), end to end against the simulator through
alpaca-py:
exit sequencing under broker-held quantity, and alerts that matter (store, structlog, Prometheus)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from inprocess import PLAN, parent_order, position, start_simulator, until, wire_engine

from ordersync.domain.ids import ClientOrderId
from ordersync.domain.protection import PriceRule, ProtectionPlan
from ordersync.engine import Engine
from ordersync.sim.server import SimServer
from ordersync.store import SqlAlchemyStore


@pytest.fixture
def sim() -> Iterator[SimServer]:
    server = start_simulator("peers", cancel_s=0.4)  # real seconds: room for a fill to race a cancel
    yield server
    server.stop()


@pytest.fixture
async def make_engine(sim: SimServer, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    engines: list[tuple[Engine, SqlAlchemyStore]] = []

    async def make(*, stream: bool = True) -> Engine:
        engine, store = wire_engine(sim, tmp_path / "peers.db", stream=stream)
        await engine.start()
        engines.append((engine, store))
        return engine

    yield make
    for engine, store in engines:
        await engine.stop()
        store.close()


async def _until(predicate: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    assert await until(predicate, what, timeout_s), f"timed out waiting for {what}"


def _orders(sim: SimServer, prefix: str) -> list[dict[str, Any]]:
    return [o for o in sim.snapshot()["orders"] if o["client_order_id"].startswith(prefix)]


def _refusals(sim: SimServer) -> int:
    return int(sim.snapshot()["counters"]["rejections"]["by_code"].get("40310000", 0))


async def _protected_parent(make_engine: Callable[..., Any], sim: SimServer, pid: str) -> Engine:
    engine: Engine = await make_engine()
    await engine.submit(parent_order(pid), PLAN)
    await _until(lambda: bool(_orders(sim, pid)), "the parent at the broker")
    sim.fill(client_order_id=pid, qty=Decimal(10))
    await _until(lambda: any(o["client_order_id"] == f"{pid}~oco1" for o in _orders(sim, pid)), "the OCO")
    return engine


async def test_close_position_cancels_protection_before_selling(make_engine: Any, sim: SimServer) -> None:
    engine = await _protected_parent(make_engine, sim, "x1")
    await engine.close_position(ClientOrderId("x1"))
    await _until(lambda: position(sim) == 0, "the position to be flat")
    exits = _orders(sim, "x1~exit")
    assert [(o["type"], o["qty"], o["status"]) for o in exits] == [("market", "10", "filled")]
    oco = next(o for o in _orders(sim, "x1~oco1") if o["client_order_id"] == "x1~oco1")
    assert oco["status"] == "canceled"
    assert _refusals(sim) == 0, "the exit never asked for shares the OCO still held"


async def test_a_fill_racing_the_cancel_shrinks_the_exit(make_engine: Any, sim: SimServer) -> None:
    engine = await _protected_parent(make_engine, sim, "x2")
    await engine.close_position(ClientOrderId("x2"))
    await _until(
        lambda: any(o["sim"]["cancel_requested"] for o in _orders(sim, "x2~oco1")), "the cancel request"
    )
    sim.fill(client_order_id="x2~oco1", qty=Decimal(4))  # the take-profit fills 4 before the cancel lands
    await _until(lambda: position(sim) == 0, "the position to be flat")
    exits = _orders(sim, "x2~exit")
    assert [o["qty"] for o in exits] == ["6"], "the exit sells only what the racing fill left"
    assert _refusals(sim) == 0


async def test_a_changed_plan_is_replaced_only_after_the_broker_confirms(
    make_engine: Any, sim: SimServer
) -> None:
    engine = await _protected_parent(make_engine, sim, "x3")
    wider = ProtectionPlan(
        take_profit=PriceRule(price=Decimal("78.00")), stop_loss=PriceRule(price=Decimal("66.00"))
    )
    await engine.replace_plan(ClientOrderId("x3"), wider)
    await _until(
        lambda: any(o["client_order_id"] == "x3~oco2" for o in _orders(sim, "x3~oco2")), "the new OCO"
    )
    old = next(o for o in _orders(sim, "x3~oco1") if o["client_order_id"] == "x3~oco1")
    new = next(o for o in _orders(sim, "x3~oco2") if o["client_order_id"] == "x3~oco2")
    assert old["status"] == "canceled"
    assert (new["limit_price"], new["qty"]) == ("78", "10")
    assert old["canceled_at"] <= new["submitted_at"], "cancel -> confirmed -> submit"
    assert _refusals(sim) == 0


async def test_alerts_for_a_dead_stream_and_unprotected_shares(make_engine: Any, sim: SimServer) -> None:
    engine: Engine = await make_engine(stream=False)  # no stream at all: polling only
    await engine.submit(parent_order("a1", time_in_force="day"), PLAN)
    await _until(lambda: bool(_orders(sim, "a1")), "the parent")
    sim.set_faults({"routes": ["POST /v2/orders"], "http_5xx_p": 1.0, "http_5xx_statuses": [503]})
    sim.fill(client_order_id="a1", qty=Decimal(10))  # protection cannot be placed: the broker answers 503

    def open_kinds() -> set[str]:
        with engine._ctx.store.transaction() as tx:
            return {a.kind for a in tx.open_alerts()}

    wanted = {"stream_down", "unprotected_position", "stuck_unknown"}
    await _until(lambda: wanted <= open_kinds(), f"the alerts {wanted}", 15)
    registry = engine.metrics.registry
    assert (registry.get_sample_value("ordersync_open_alerts", {"kind": "unprotected_position"}) or 0) >= 1
    assert (registry.get_sample_value("ordersync_unprotected_age_seconds") or 0) > 0
    sim.set_faults({})
    await _until(
        lambda: not {"unprotected_position", "stuck_unknown"} & open_kinds(), "the alerts to clear", 15
    )
