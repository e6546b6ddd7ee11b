"""A cancel of our protection that we did not ask for is a person's: the parent goes on hold, once, with one
alert; our own cancels (in memory, or journaled before a restart) never do (docs/architecture.md §13)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from ordersync.domain.events import OrderObserved, Source
from ordersync.domain.ids import ClientOrderId
from ordersync.domain.order import Order, OrderRole, OrderStatus
from ordersync.domain.protection import PriceRule, ProtectionPlan
from ordersync.engine.context import Context, apply_observation, lift_hold, read_holds
from ordersync.engine.metrics import EngineMetrics
from ordersync.engine.options import EngineOptions
from ordersync.ports import JournalEntry, PlanState
from ordersync.testing import T0, FakeClock, InMemoryStore, make_order, make_view

PLAN = ProtectionPlan(take_profit=PriceRule(price=Decimal("110")), stop_loss=PriceRule(price=Decimal("80")))
P1 = ClientOrderId("p1")


def _context(*, closing: bool = False) -> tuple[Context, Order, Order]:
    store = InMemoryStore()
    ctx = Context(None, store, FakeClock(T0 + timedelta(minutes=5)), EngineOptions(), EngineMetrics())  # type: ignore[arg-type]
    oco = make_order(
        "p1~oco1", side="sell", qty=10, role=OrderRole.OCO, parent_id="p1", status=OrderStatus.NEW
    )
    leg = replace(
        make_order(
            "leg-1", side="sell", qty=10, role=OrderRole.STOP_LOSS, parent_id="p1", status=OrderStatus.HELD
        ),
        group_id=oco.client_order_id,
    )
    with store.transaction() as tx:
        tx.add_order(make_order("p1", status=OrderStatus.FILLED, filled_qty=10))
        tx.add_plan(PlanState(P1, PLAN, closing=closing))
        tx.add_order(oco)
        tx.add_order(leg)
    return ctx, oco, leg


def _cancel(ctx: Context, *orders: Order) -> None:
    with ctx.store.transaction() as tx:
        for order in orders:
            view = make_view(order, status=OrderStatus.CANCELED, updated_at=T0 + timedelta(minutes=4))
            apply_observation(ctx, tx, OrderObserved(view, Source.STREAM, view.updated_at, ctx.clock.now()))


def _alerts(ctx: Context) -> list[tuple[str, str]]:
    with ctx.store.transaction() as tx:
        return [(a.kind, a.key) for a in tx.open_alerts()]


def _holds(ctx: Context) -> dict[ClientOrderId, str]:
    with ctx.store.transaction() as tx:
        return read_holds(tx)


def test_a_persons_cancel_of_our_oco_holds_the_parent_once_the_whole_group_has_ended() -> None:
    ctx, oco, leg = _context()

    _cancel(ctx, oco)
    assert _holds(ctx) == {}, "the stop leg still works: not ended yet"
    _cancel(ctx, leg)

    assert _holds(ctx) == {P1: "p1~oco1"}
    assert _alerts(ctx) == [("protection_cancelled_by_operator", "p1")]
    kinds = [e.kind for e in ctx.store.read_journal() if e.kind.startswith("operator")]
    assert kinds == ["operator_hold"]
    assert lift_hold(ctx.store, P1, ctx.clock.now()) == "p1~oco1"
    assert _holds(ctx) == {}


def test_our_own_cancel_is_no_persons_in_memory_or_journaled_before_a_restart() -> None:
    asked, oco, leg = _context()
    asked.canceling[oco.client_order_id] = T0
    _cancel(asked, oco, leg)

    restarted, oco, leg = _context()  # the request was journaled by the instance that died
    with restarted.store.transaction() as tx:
        tx.journal(JournalEntry(T0, "cancel_requested", oco.client_order_id, {"reason": "plan changed"}))
    _cancel(restarted, oco, leg)

    assert (_holds(asked), _alerts(asked)) == ({}, [])
    assert (_holds(restarted), _alerts(restarted)) == ({}, [])


def test_a_plan_being_closed_is_never_held() -> None:
    ctx, oco, leg = _context(closing=True)

    _cancel(ctx, oco, leg)

    assert (_holds(ctx), _alerts(ctx)) == ({}, [])
