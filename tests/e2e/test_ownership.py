"""Only ours (docs/architecture.md §2, invariant 8; §13): a person's cancel is respected until `protect`, a
person's sale shrinks our shares, another application's trades on the same symbol are not ours to protect or
to report as drift. Against `ordersync sim serve` in another process, judged from the simulator's books.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TYPE_CHECKING

from alpaca.trading.enums import OrderSide as AlpacaSide
from alpaca.trading.enums import TimeInForce as AlpacaTif
from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest, ReplaceOrderRequest

from conftest import buy_parent
from ordersync.clocks import SystemClock
from ordersync.domain.ids import ClientOrderId
from ordersync.domain.protection import PriceRule, ProtectionPlan
from ordersync.engine import EngineOptions
from ordersync.engine.context import lift_hold
from ordersync.testing import wait_until_async

if TYPE_CHECKING:
    from conftest import Books, BooksWatch, Running, Sim

MakeEngine = Callable[..., Awaitable["Running"]]
SYMBOL = "OKE"  # listed at 100.00 by the e2e scenario
PLAN = ProtectionPlan(
    take_profit=PriceRule(price=Decimal("110.00")), stop_loss=PriceRule(price=Decimal("80.00"))
)
OPTIONS = EngineOptions(
    poll_interval_s=0.2,
    tick_s=0.1,
    reconcile_interval_s=0.5,
    release_backoff_base_s=0.2,
    release_backoff_cap_s=1.0,
    unprotected_alert_s=0.5,
    drift_alert_runs=2,
)
HOLD = "protection_cancelled_by_operator"


async def _protected(sim: Sim, running: Running, coid: str, qty: int = 10) -> Books:
    await running.engine.submit(buy_parent(coid, qty), PLAN)
    await sim.until(lambda b: b.status(coid) == "new", f"{coid} working", coid)
    await sim.fill(coid)
    return await sim.until(lambda b: b.coverage(coid) == qty == b.filled(coid), f"{coid} covered", coid, 10.0)


def _kinds(running: Running) -> set[tuple[str, str]]:
    return {(a.kind, a.key) for a in running.alerts()}


async def test_a_persons_cancel_is_not_re_armed_until_protect_then_only_the_shares_left_are(
    sim: Sim, make_engine: MakeEngine, books_watch: BooksWatch
) -> None:
    books_watch.parents.add("p1")
    running = await make_engine(options=OPTIONS)
    books = await _protected(sim, running, "p1")
    person = sim.client()
    (oco,) = books.groups("p1")

    await asyncio.to_thread(person.cancel_order_by_id, oco[0]["id"])
    await wait_until_async(lambda: (HOLD, "p1") in _kinds(running), 10.0, "the operator-cancel alert")
    await sim.stays(lambda b: b.coverage("p1") == 0, "no re-arm of a person's cancel", "p1", seconds=1.5)
    sale = MarketOrderRequest(symbol=SYMBOL, qty=4, side=AlpacaSide.SELL, time_in_force=AlpacaTif.DAY)
    await asyncio.to_thread(person.submit_order, sale)  # their sale goes through: nothing of ours holds
    await asyncio.sleep(1.0)
    assert ("unprotected_position", "p1") not in _kinds(running), "the person's choice is not our alarm"

    assert lift_hold(running.store, ClientOrderId("p1"), SystemClock().now()) == oco[0]["client_order_id"]
    books = await sim.until(lambda b: b.coverage("p1") == 6, "the 6 shares left re-armed", "p1", 10.0)
    assert await running.engine.wait_idle(timeout_s=10)
    books = await sim.stays(lambda b: b.coverage("p1") == 6, "exactly the 6 left", "p1", seconds=1.0)

    assert [Decimal(g[0]["qty"]) for g in books.groups("p1")] == [Decimal(10), Decimal(6)]
    assert books.insufficient_qty == 0
    await wait_until_async(
        lambda: (HOLD, "p1") not in _kinds(running), 10.0, "the alert resolved by `protect`"
    )
    assert lift_hold(running.store, ClientOrderId("p1"), SystemClock().now()) is None, "nothing left to lift"


async def test_another_apps_trades_on_our_symbol_are_neither_protected_nor_a_discrepancy(
    sim: Sim, make_engine: MakeEngine, books_watch: BooksWatch
) -> None:
    books_watch.parents.add("p2")
    running = await make_engine(options=OPTIONS)
    other = sim.client()
    buy = MarketOrderRequest(symbol=SYMBOL, qty=30, side=AlpacaSide.BUY, time_in_force=AlpacaTif.DAY)
    await asyncio.to_thread(other.submit_order, buy)
    await running.engine.submit(buy_parent("p2", 20), PLAN)
    await sim.until(lambda b: b.status("p2") == "new", "p2 working", "p2")

    await sim.fill("p2", 8)
    await sim.until(lambda b: b.coverage("p2") == 8, "8 covered", "p2", 10.0)
    # a market sell would be a wash trade against our open buy; a limit above the market (100) rests until
    # the test fills it (a marketable one could fill at the venue first, and the forced fill would be a 422)
    sell = LimitOrderRequest(
        symbol=SYMBOL,
        qty=25,
        side=AlpacaSide.SELL,
        limit_price=120.0,
        time_in_force=AlpacaTif.GTC,
        client_order_id="other-sell",
    )
    await asyncio.to_thread(other.submit_order, sell)
    await sim.fill("other-sell", price=Decimal("120.00"))  # the other app sells 25 of its own 30
    await sim.fill("p2")
    books = await sim.until(lambda b: b.coverage("p2") == 20, "all 20 covered", "p2", 10.0)
    await asyncio.sleep(1.5)  # several reconciliations
    report = await running.engine.watch.reconcile(dry_run=True)

    assert books.insufficient_qty == 0
    assert report.discrepancies == [], report
    assert {n.kind for n in report.notes} == {"others_position"}, report.notes
    assert running.alerts() == [], "another app's fills are not a drift of ours"
    books = await sim.books()
    assert books.coverage("p2") == 20, "our exits reserve our 20 only, never the other app's 5"


async def test_a_person_editing_our_take_profit_hands_its_role_to_the_replacement(
    sim: Sim, make_engine: MakeEngine
) -> None:
    running = await make_engine(options=OPTIONS)
    books = await _protected(sim, running, "p3")
    (oco,) = books.groups("p3")
    edit = ReplaceOrderRequest(limit_price=112.0)
    successor = await running.replaced_by_a_person(sim.client(), oco[0]["id"], edit)
    assert (successor.parent_id, successor.role.value) == ("p3", "oco")
    assert successor.limit_price == Decimal("112.00")
    kinds = {k for k, _ in _kinds(running)}
    assert not kinds & {HOLD, "unprotected_position"}, "an edit is not a cancel, and the shares stay covered"
    books = await sim.books()
    live = [o for o in books.orders if o["id"] == successor.broker_order_id]
    assert live[0]["status"] not in ("canceled", "expired"), "the person's order is left working"
    assert len([o for o in books.orders if o["client_order_id"].startswith("p3~")]) == 1, "nothing re-armed"
