"""Native brackets inside ordersync, on a FakeBroker (docs/comparison.md §8): one POST carries the exits,
the legs are adopted as the parent's children, they count as cover only once the entry completely filled,
and a part-filled entry waits at most ``native_partial_bound_s`` before its rest is cancelled and the
ordinary rule protects what filled."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from engine_harness import EngineHarness

from ordersync.domain.coverage import coverage
from ordersync.domain.errors import InvalidProtectionPlan
from ordersync.domain.ids import ClientOrderId
from ordersync.domain.order import OrderRole, OrderStatus, TimeInForce
from ordersync.domain.protection import PriceRule, ProtectionPlan
from ordersync.engine import EngineOptions
from ordersync.testing import make_order

NATIVE = ProtectionPlan(
    take_profit=PriceRule(price=Decimal(110)), stop_loss=PriceRule(price=Decimal(90)), native=True
)


async def native_buy(h: EngineHarness, coid: str = "p1", qty: int = 10) -> None:
    order = make_order(
        coid, qty=qty, limit_price=Decimal(100), created_at=h.clock.now(), time_in_force=TimeInForce.GTC
    )
    await h.engine.submit(order, NATIVE)
    await h.idle()


def covered(h: EngineHarness, coid: str = "p1") -> Decimal:
    with h.store.transaction() as tx:
        return coverage(tx.children_of(ClientOrderId(coid)), tx.get_order(ClientOrderId(coid)))


def legs(h: EngineHarness, coid: str = "p1") -> list[tuple[OrderRole, OrderStatus, Decimal]]:
    with h.store.transaction() as tx:
        kids = tx.children_of(ClientOrderId(coid))
    return sorted((k.role, k.status, k.qty) for k in kids if k.group_id == coid)


async def test_a_native_parent_goes_out_in_one_post_and_its_legs_become_its_children() -> None:
    h = EngineHarness()
    await h.start()
    await native_buy(h)

    assert (h.broker.calls["submit_group"], h.broker.calls["submit"]) == (1, 0)
    assert h.broker.by_coid("p1").order_class == "bracket"
    assert legs(h) == [
        (OrderRole.STOP_LOSS, OrderStatus.HELD, Decimal(10)),
        (OrderRole.TAKE_PROFIT, OrderStatus.HELD, Decimal(10)),
    ]
    await h.stop()


async def test_a_full_fill_is_protected_by_the_legs_with_no_read_and_no_post_of_ours() -> None:
    h = EngineHarness()
    await h.start()
    await native_buy(h)
    before = sum(h.broker.calls.values())

    h.broker.fill("p1", 10, 100)
    await h.deliver()
    for _ in range(15):
        h.clock.advance(1)
        await h.tick()

    assert covered(h) == 10
    assert h.broker.calls["position"] == 0, "nothing to size: the legs are sized to the entry"
    assert h.broker.calls["submit"] == 0
    assert sum(h.broker.calls.values()) == before, "fill -> protect costs no request"
    assert h.alerts("unprotected_position") == []
    await h.stop()


async def test_a_partial_fill_waits_at_most_the_bound_then_the_rest_is_cut_and_the_fill_protected() -> None:
    h = EngineHarness(EngineOptions(native_partial_bound_s=30.0))
    await h.start()
    await native_buy(h)
    h.broker.fill("p1", 4, 100)
    await h.deliver()

    for _ in range(29):
        h.clock.advance(1)
        await h.tick()
    assert (h.broker.calls["cancel"], h.broker.calls["submit"]) == (0, 0), "no exit beside the held legs"
    assert covered(h) == 0, "held legs protect nothing while the entry works"

    h.clock.advance(1)
    await h.tick()
    await h.deliver()  # the entry and (group rule) its legs end canceled
    await h.tick()

    assert h.order("p1").status is OrderStatus.CANCELED
    assert [k.status for k in h.children("p1", OrderRole.STOP_LOSS)] == [OrderStatus.CANCELED]
    [oco] = h.children("p1", OrderRole.OCO)
    assert (oco.qty, oco.limit_price, oco.stop_price) == (Decimal(4), Decimal(110), Decimal(90))
    assert covered(h) == 4
    await h.stop()


async def test_an_entry_cancelled_after_a_partial_fill_gets_the_ordinary_protection() -> None:
    h = EngineHarness()
    await h.start()
    await native_buy(h)
    h.broker.fill("p1", 3, 100)
    await h.deliver()

    await h.engine.cancel(ClientOrderId("p1"))
    await h.idle()
    await h.deliver()
    await h.tick()

    [oco] = h.children("p1", OrderRole.OCO)
    assert oco.qty == 3
    assert h.broker.calls["cancel"] == 1, "the group rule ended the legs: no cancel of ours for them"
    await h.stop()


async def test_legs_left_open_after_their_entry_ended_are_cancelled_past_the_bound_first() -> None:
    h = EngineHarness(EngineOptions(native_partial_bound_s=30.0))
    await h.start()
    await native_buy(h)
    h.broker.fill("p1", 3, 100)
    entry = h.broker.by_coid("p1")
    h.broker._end(entry, OrderStatus.EXPIRED, "expired")  # a broker that kept the legs alive
    await h.deliver()
    await h.tick()
    assert h.children("p1", OrderRole.OCO) == [], "not beside legs that may still arm"

    for _ in range(31):
        h.clock.advance(1)
        await h.tick()
    await h.deliver()
    await h.tick()

    assert {k.status for k in h.children("p1", OrderRole.TAKE_PROFIT)} == {OrderStatus.CANCELED}
    [oco] = h.children("p1", OrderRole.OCO)
    assert oco.qty == 3
    await h.stop()


async def test_a_native_plan_a_bracket_cannot_carry_is_refused_at_submission() -> None:
    h = EngineHarness()
    await h.start()
    day = make_order("p1", limit_price=Decimal(100), created_at=h.clock.now(), time_in_force=TimeInForce.DAY)

    with pytest.raises(InvalidProtectionPlan, match=r"native: .*GTC"):
        await h.engine.submit(day, NATIVE)

    assert h.broker.calls["submit_group"] == 0
    await h.stop()


STOP_ONLY = ProtectionPlan(stop_loss=PriceRule(price=Decimal(90)))


async def gtc_buy(h: EngineHarness, coid: str, plan: ProtectionPlan, **kw: object) -> None:
    defaults: dict[str, object] = {"limit_price": Decimal(100), "time_in_force": TimeInForce.GTC}
    defaults.update(kw)
    order = make_order(coid, qty=10, created_at=h.clock.now(), **defaults)  # type: ignore[arg-type]
    await h.engine.submit(order, plan)
    await h.idle()


async def test_an_entry_beside_our_resting_lone_stop_goes_out_as_an_oto_with_its_stop() -> None:
    h = EngineHarness()
    await h.start()
    await gtc_buy(h, "p1", STOP_ONLY)
    h.broker.fill("p1", 10, 100)
    await h.deliver()
    [stop] = h.children("p1", OrderRole.STOP_LOSS)
    h.broker.set_status(stop.client_order_id, OrderStatus.NEW, "new")
    await h.deliver()

    await gtc_buy(h, "p2", STOP_ONLY)

    assert h.broker.calls["submit_group"] == 1, "a simple buy would be refused 'potential wash trade'"
    assert h.broker.by_coid("p2").order_class == "oto"
    assert legs(h, "p2") == [(OrderRole.STOP_LOSS, OrderStatus.HELD, Decimal(10))]
    await h.stop()


async def test_an_ineligible_entry_beside_our_lone_stop_still_goes_simple() -> None:
    h = EngineHarness()
    await h.start()
    await gtc_buy(h, "p1", STOP_ONLY)
    h.broker.fill("p1", 10, 100)
    await h.deliver()

    relative = ProtectionPlan(stop_loss=PriceRule(offset=Decimal("0.05")))
    await gtc_buy(h, "p2", relative)  # offsets are priced from the fill: no bracket can carry them
    await gtc_buy(h, "p3", STOP_ONLY, time_in_force=TimeInForce.DAY)

    assert h.broker.calls["submit_group"] == 0
    assert {h.broker.by_coid(c).order_class for c in ("p2", "p3")} == {"simple"}
    await h.stop()


async def test_without_our_lone_exit_on_the_symbol_an_ordinary_plan_goes_simple() -> None:
    h = EngineHarness()
    await h.start()
    await gtc_buy(h, "p1", STOP_ONLY)

    assert (h.broker.calls["submit_group"], h.broker.by_coid("p1").order_class) == (0, "simple")
    await h.stop()


async def test_legs_never_seen_are_read_before_anything_is_released_beside_them() -> None:
    h = EngineHarness()
    await h.start()
    h.broker.lose_next_submit_response()  # the POST's answer (with its legs) never arrives
    await native_buy(h)
    for _ in range(3):  # settled by a lookup by client_order_id, which shows no legs
        h.clock.advance(5)
        await h.tick()
    assert h.order("p1").status is OrderStatus.ACCEPTED
    assert legs(h) == []

    fill = h.broker.fill("p1", 10, 100)
    h.drop_events()
    assert h.stream is not None
    h.stream.push(replace(fill, order=replace(fill.order, legs=())))  # a fill event that nests no legs
    await h.idle()
    await h.tick()

    assert h.order("p1").status is OrderStatus.FILLED
    assert len(legs(h)) == 2, "read with its legs"
    assert covered(h) == 10
    assert h.broker.calls["submit"] == 0, "no exit beside the legs"
    assert h.broker.calls["get_order"] == 1, "one read of the parent with its legs"
    await h.stop()


async def test_an_automatic_oto_marks_its_plan_native_so_a_resend_is_the_same_group() -> None:
    h = EngineHarness()
    await h.start()
    await gtc_buy(h, "p1", STOP_ONLY)
    h.broker.fill("p1", 10, 100)
    await h.deliver()

    await gtc_buy(h, "p2", STOP_ONLY)

    with h.store.transaction() as tx:
        state = tx.get_plan(ClientOrderId("p2"))
    assert state is not None
    assert state.plan.native
    assert [e.client_order_id for e in h.journal("native_beside_our_exit")] == ["p2"]
    await h.stop()


async def test_a_take_profit_above_a_new_buy_limit_cannot_cross_it_so_the_entry_goes_simple() -> None:
    h = EngineHarness()
    await h.start()
    await gtc_buy(h, "p1", ProtectionPlan(take_profit=PriceRule(price=Decimal(110))))
    h.broker.fill("p1", 10, 100)
    await h.deliver()

    await gtc_buy(h, "p2", STOP_ONLY)  # buy limit 100 < sell limit 110: Alpaca takes it as a simple order
    await gtc_buy(h, "p3", STOP_ONLY, limit_price=Decimal(111))  # 111 >= 110: it could trade against it

    assert h.broker.by_coid("p2").order_class == "simple"
    assert h.broker.by_coid("p3").order_class == "oto"
    await h.stop()


async def test_a_persons_cancel_of_an_armed_leg_is_respected_not_re_armed() -> None:
    h = EngineHarness()
    await h.start()
    await native_buy(h)
    h.broker.fill("p1", 10, 100)
    await h.deliver()
    [tp] = h.children("p1", OrderRole.TAKE_PROFIT)

    assert tp.broker_order_id is not None
    await h.broker.cancel(tp.broker_order_id)  # a person, in the broker's dashboard: the group goes
    await h.deliver()
    for _ in range(5):
        h.clock.advance(1)
        await h.tick()

    assert [a.key for a in h.alerts("protection_cancelled_by_operator")] == ["p1"]
    assert h.children("p1", OrderRole.OCO) == [], "not re-armed until `ordersync protect`"
    await h.stop()


async def test_legs_that_end_with_their_part_filled_entry_are_no_persons_act() -> None:
    h = EngineHarness()
    await h.start()
    await native_buy(h)
    h.broker.fill("p1", 6, 100)
    await h.deliver()

    entry = h.broker.by_coid("p1")
    await h.broker.cancel(entry.broker_order_id)  # the venue or a person cancels the entry itself
    await h.deliver()
    await h.tick()

    assert h.alerts("protection_cancelled_by_operator") == []
    [oco] = h.children("p1", OrderRole.OCO)
    assert oco.qty == 6
    await h.stop()
