"""Review findings: orderings the simulator can produce that break an invariant or leave work stuck.

Each test states a behaviour that once failed (found in review) and now holds.
They run against the in-process simulator (real clock) through alpaca-py, like test_beyond_peers.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from alpaca.trading.client import TradingClient
from alpaca.trading.models import Order as AlpacaOrder
from alpaca.trading.requests import LimitOrderRequest
from inprocess import FAST, KEY, PLAN, SECRET, parent_order, position, start_simulator, until, wire_engine

from ordersync.clocks import SystemClock
from ordersync.domain.ids import ClientOrderId
from ordersync.domain.order import Order, OrderStatus
from ordersync.engine import Engine, EngineOptions
from ordersync.sim.server import SimServer
from ordersync.store import SqlAlchemyStore


class ShiftedClock(SystemClock):
    """The system clock, with ``now`` movable forward (to step past time windows without waiting)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return super().now() + self.offset


@pytest.fixture
def sim() -> Iterator[SimServer]:
    server = start_simulator("review", cancel_s=0.05)
    yield server
    server.stop()


@pytest.fixture
async def make_engine(sim: SimServer, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    engines: list[tuple[Engine, SqlAlchemyStore]] = []

    async def make(*, clock: SystemClock | None = None, options: EngineOptions = FAST) -> Engine:
        engine, store = wire_engine(sim, tmp_path / "review.db", clock=clock, options=options)
        await engine.start()
        engines.append((engine, store))
        return engine

    yield make
    for engine, _store in engines:
        if engine._running:
            await engine.stop()
    for task in asyncio.all_tasks():  # tasks a buggy stop() leaked: do not let them outlive the test
        if task is not asyncio.current_task() and task.get_name().split(":")[0] in _ENGINE_TASKS:
            task.cancel()
    await asyncio.sleep(0.05)
    for _, store in engines:
        store.close()


_ENGINE_TASKS = {"send", "settle", "resend", "cancel", "holders", "lookup", "catch_up", "release"}


def _broker(sim: SimServer, coid: str) -> dict[str, Any] | None:
    return next((o for o in sim.snapshot()["orders"] if o["client_order_id"] == coid), None)


def _local(engine: Engine, coid: str) -> Order | None:
    with engine._ctx.store.transaction() as tx:
        return tx.get_order(ClientOrderId(coid))


async def _protected(engine: Engine, sim: SimServer, pid: str) -> None:
    await engine.submit(parent_order(pid), PLAN)
    assert await until(lambda: _broker(sim, pid) is not None, "the parent at the broker")
    sim.fill(client_order_id=pid, qty=Decimal(10))

    def oco_live() -> bool:
        local = _local(engine, f"{pid}~oco1")
        return local is not None and bool(local.leg_ids) and local.status is OrderStatus.NEW

    assert await until(oco_live, "the OCO acknowledged locally"), "setup: the OCO was never placed"


# -- 1. a failed cancel request is never retried ----------------------------------------------------------


async def test_a_failed_cancel_request_is_retried_so_close_position_completes(
    make_engine: Any, sim: SimServer
) -> None:
    clock = ShiftedClock()
    # the stream stays trusted across the clock step below (no catch-up that would adopt the OCO's leg)
    engine: Engine = await make_engine(clock=clock, options=replace(FAST, stream_silence_s=3600.0))
    await _protected(engine, sim, "c1")
    # the first DELETE of an order answers 503 (nothing happened at the broker)
    sim.set_faults(
        {"on_request": [{"nth": 1, "fault": "503", "method": "DELETE", "path": "/v2/orders/{order_id}"}]}
    )
    await engine.close_position(ClientOrderId("c1"))
    assert await until(lambda: sim.snapshot()["counters"]["faults"].get("http_503", 0) >= 1, "the 503", 5)
    await asyncio.sleep(0.5)
    clock.offset += timedelta(seconds=31)  # even past start_cancel's de-duplication window
    flat = await until(lambda: position(sim) == 0, "the position to be flat", 10)
    oco = _broker(sim, "c1~oco1")
    assert flat, (
        f"close_position never completed: the OCO is still {oco and oco['status']} at the broker and the "
        f"position is {position(sim)}; the one cancel request that failed with 503 was never retried"
    )


# -- 2. reconcile settles an order whose POST is still on the wire ------------------------------------------


async def test_a_reconcile_during_a_slow_submit_never_makes_it_a_droppable_intent(
    make_engine: Any, sim: SimServer
) -> None:
    engine: Engine = await make_engine(options=replace(FAST, reconcile_interval_s=60.0))
    sim.set_faults({"latency_ms": 1500, "routes": ["POST /v2/orders"]})  # a slow submit, nothing lost
    await engine.submit(parent_order("s1"), None)
    assert await until(lambda: _status(engine, "s1") is OrderStatus.SUBMITTING, "the POST on the wire", 2)
    await engine.watch.reconcile(dry_run=False)  # the periodic reconciler runs while the POST is in flight
    await until(lambda: _status(engine, "s1") is OrderStatus.INTENT, "the lookup to settle it", 1.2)
    await engine.cancel(ClientOrderId("s1"))  # the platform cancels its entry
    await until(lambda: _broker(sim, "s1") is not None, "the POST to land", 3)
    await asyncio.sleep(1.5)  # the submit response, events, one more reconcile
    await engine.watch.reconcile(dry_run=False)
    await asyncio.sleep(0.5)
    at_broker = _broker(sim, "s1")
    local = _status(engine, "s1")
    assert at_broker is None or at_broker["status"] == (local.value if local else None), (
        f"s1 is {local} locally but {at_broker and at_broker['status']} at the broker: the reconciler's "
        "lookup settled it 'not found' while its POST was still on the wire, so the cancel dropped it as an "
        "unsent intent and the late POST left a live order the engine no longer tracks"
    )


def _status(engine: Engine, coid: str) -> OrderStatus | None:
    order = _local(engine, coid)
    return None if order is None else order.status


# -- 3. stop() leaks the tasks spawned while it waits -------------------------------------------------------


async def test_stop_leaves_no_engine_task_running(make_engine: Any, sim: SimServer) -> None:
    engine: Engine = await make_engine()
    # a slow submit whose response is lost (it takes effect, the client gets 504)
    sim.set_faults({"latency_ms": 800, "routes": ["POST /v2/orders"], "lost_response_p": 1.0})
    await engine.submit(parent_order("t1"), None)
    await asyncio.sleep(0.2)
    await engine.stop()
    requests_at_stop = sum(sim.snapshot()["counters"]["requests"].values())
    leaked = sorted(
        t.get_name()
        for t in asyncio.all_tasks()
        if not t.done() and t.get_name().split(":")[0] in _ENGINE_TASKS
    )
    await asyncio.sleep(0.5)
    after = sum(sim.snapshot()["counters"]["requests"].values()) - requests_at_stop
    assert not leaked, (
        f"after stop() returned, engine tasks {leaked} were still running (they then sent {after} more "
        "broker requests): a task spawned while stop() waited (settle after the lost response) escaped it"
    )


# -- 4. restart after an OCO's stop leg filled unseen ----------------------------------------------------


async def test_a_stop_leg_filled_unseen_before_a_restart_is_adopted_after_it(
    make_engine: Any, sim: SimServer
) -> None:
    quiet = replace(FAST, stream_silence_s=3600.0, reconcile_interval_s=3600.0)
    first: Engine = await make_engine(options=quiet)
    await _protected(first, sim, "r1")
    sim.set_faults({"drop_event_p": 1.0})  # the stream loses the events of what follows
    sim.set_price("OKE", "68.00")  # the stop triggers: the take-profit ends replaced, the stop leg sells 10
    assert await until(lambda: position(sim) == 0, "the stop leg to sell", 5), "setup: stop did not trigger"
    await first.watch.reconcile(dry_run=False)  # reconcile learns the primary ended (it never adopts legs)
    assert await until(lambda: _status(first, "r1~oco1") is OrderStatus.REPLACED, "the primary", 3)
    await first.stop()  # stopped (or crashed) before any catch-up read the leg
    sim.set_faults({})
    second: Engine = await make_engine()  # catch-up at start, then polls (2 s silence) and reconciles
    await asyncio.sleep(3.0)
    with second._ctx.store.transaction() as tx:
        children = tx.children_of(ClientOrderId("r1"))
        alerts = sorted({a.kind for a in tx.open_alerts()})
    sold = sum((c.filled_qty for c in children), Decimal(0))
    held = [(c.client_order_id, c.status.value, c.filled_qty) for c in children]
    assert sold == 10, (
        f"after the restart the store holds children {held} (sold {sold} of 10, alerts {alerts}): the stop "
        "leg that sold the position is never adopted, so the engine believes 10 shares are unprotected "
        "and reports a position drift forever (an uninterrupted run adopts it at its next catch-up)"
    )


# -- 5. a lookup that misses an order still ours alone (chaos seed 33) -------------------------------------


async def test_a_lookup_missing_an_order_whose_resend_is_on_the_wire_raises_no_false_alarm(
    make_engine: Any, sim: SimServer
) -> None:
    # The race chaos seed 33 hit: the reconciler lists the order as submitting and decides to look it up;
    # meanwhile a 429 turns it back into an intent and the resend goes out; the lookup's 404 arrives while
    # that resend is on the wire. Here the lookup answers while a slow first POST is on the wire.
    engine: Engine = await make_engine(options=replace(FAST, reconcile_interval_s=3600.0))
    sim.set_faults({"latency_ms": 1500, "routes": ["POST /v2/orders"]})
    await engine.submit(parent_order("m1"), None)
    assert await until(lambda: _status(engine, "m1") is OrderStatus.SUBMITTING, "the POST on the wire", 2)
    await engine.watch.look_up(ClientOrderId("m1"))  # 404: the POST has not landed yet
    assert await until(lambda: _status(engine, "m1") is OrderStatus.NEW, "the POST to land", 5)
    await engine.watch.reconcile(dry_run=False)
    await asyncio.sleep(0.3)
    alerts = _open_alerts(engine)
    assert ("missing_at_broker", "m1") not in alerts, (
        f"m1 is new here and at the broker, yet alert {alerts} is open: a lookup's 404 for an order the "
        "broker never acknowledged was taken for a lost order, and nothing ever clears that alarm"
    )


async def test_missing_at_broker_is_raised_for_an_acknowledged_order_and_clears_when_it_turns_up(
    make_engine: Any, sim: SimServer
) -> None:
    engine: Engine = await make_engine(options=replace(FAST, reconcile_interval_s=3600.0))
    # the store says m2 was acknowledged (new, with a broker id), but the broker has no such order
    acknowledged = replace(
        parent_order("m2"), status=OrderStatus.NEW, broker_order_id="00000000-0000-4000-8000-000000000002"
    )
    with engine._ctx.store.transaction() as tx:
        tx.add_order(acknowledged)
    await engine.watch.reconcile(dry_run=False)
    await until(lambda: not engine._ctx.tasks, "the first lookup", 3)
    assert ("missing_at_broker", "m2") not in _open_alerts(engine), (
        "one lookup's 404 is not yet a discrepancy that persists (drift_alert_runs=2)"
    )
    await engine.watch.reconcile(dry_run=False)  # the second run in a row that cannot find it
    raised = await until(lambda: ("missing_at_broker", "m2") in _open_alerts(engine), "the alert", 3)
    assert raised, f"no missing_at_broker alert for m2 (open: {_open_alerts(engine)})"
    # the order turns up at the broker (as when the broker's lists lagged behind its acknowledgement)
    other = TradingClient(KEY, SECRET, url_override=sim.base_url)
    other.submit_order(
        LimitOrderRequest(
            symbol="OKE", qty=10, side="buy", time_in_force="gtc", limit_price=70, client_order_id="m2"
        )
    )
    await engine.watch.reconcile(dry_run=False)
    assert ("missing_at_broker", "m2") not in _open_alerts(engine), (
        "m2 is in the broker's open orders now, but its missing_at_broker alert stays open: an alert "
        "whose condition cleared must resolve itself"
    )


def _open_alerts(engine: Engine) -> set[tuple[str, str]]:
    with engine._ctx.store.transaction() as tx:
        return {(a.kind, a.key) for a in tx.open_alerts()}


# -- 6. a foreign holder's alert outlives the holder ---------------------------------------------------------


async def test_a_foreign_holder_alert_clears_once_the_holder_has_ended(
    make_engine: Any, sim: SimServer
) -> None:
    engine: Engine = await make_engine(options=replace(FAST, reconcile_interval_s=3600.0))
    other = TradingClient(KEY, SECRET, url_override=sim.base_url)  # someone else trades on the account

    def foreign_buy(coid: str) -> str:
        request = LimitOrderRequest(
            symbol="OKE", qty=5, side="buy", time_in_force="gtc", limit_price=60, client_order_id=coid
        )
        order = other.submit_order(request)
        assert isinstance(order, AlpacaOrder)
        return str(order.id)

    working, gone = foreign_buy("foreign-working"), foreign_buy("foreign-gone")
    other.cancel_order_by_id(gone)
    ended = await until(lambda: (_broker(sim, "foreign-gone") or {}).get("status") == "canceled", "cancel", 3)
    assert ended, "setup: the foreign order's cancel never landed"
    # as a 40310000 naming them would have left it: both flagged as foreign orders holding our shares
    with engine._ctx.store.transaction() as tx:
        for broker_id in (working, gone):
            engine._ctx.raise_alert(tx, "foreign_order_holds_shares", broker_id, f"{broker_id} holds shares")
    await engine.watch.reconcile(dry_run=False)
    alerts = _open_alerts(engine)
    assert ("foreign_order_holds_shares", gone) not in alerts, (
        "the foreign order that held the shares was canceled, yet its alert stays open: an alert whose "
        "condition cleared must resolve itself"
    )
    assert ("foreign_order_holds_shares", working) in alerts, "a foreign order still working is still alerted"
