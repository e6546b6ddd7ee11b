"""Native brackets in the domain (docs/comparison.md §8): eligibility, the exits a parent carries, the
coverage of its own held legs, the release rule beside them, and what those legs reserve."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from ordersync.domain.attribution import reserved
from ordersync.domain.coverage import coverage, entry_complete, native_legs
from ordersync.domain.errors import InvalidProtectionPlan
from ordersync.domain.exits import AttachedExits, attached_exits
from ordersync.domain.ids import ClientOrderId
from ordersync.domain.order import Order, OrderRole, OrderSide, OrderStatus, OrderType, TimeInForce
from ordersync.domain.plans import PriceRule, ProtectionPlan, TrailRule, native_refusal, validate_plan
from ordersync.domain.protection import (
    NATIVE_CUT,
    NATIVE_LEGS_LEFT,
    NATIVE_PARTIAL,
    NATIVE_UNREAD,
    CancelChild,
    PartialFillPolicy,
    ReleaseDecision,
    SubmitChild,
    exit_decision,
    release_decision,
)
from ordersync.testing import T0, make_order

S = OrderStatus
D = Decimal
PLAN = ProtectionPlan(take_profit=PriceRule(price=D(110)), stop_loss=PriceRule(price=D(90)), native=True)


def entry(
    status: OrderStatus = S.PARTIALLY_FILLED, filled: int = 4, kind: OrderType = OrderType.LIMIT, **kw: object
) -> Order:
    return make_order(
        "p",
        type=kind,
        qty=10,
        limit_price="100" if kind in (OrderType.LIMIT, OrderType.STOP_LIMIT) else None,
        time_in_force=kw.pop("tif", TimeInForce.GTC),  # type: ignore[arg-type]
        status=status,
        filled_qty=filled,
        filled_avg_price="100" if filled else None,
        broker_order_id="b-p",
    )


def leg(coid: str, status: OrderStatus = S.HELD, filled: int = 0, qty: int = 10, tp: bool = True) -> Order:
    order = make_order(
        coid,
        side=OrderSide.SELL,
        type=OrderType.LIMIT if tp else OrderType.STOP,
        qty=qty,
        limit_price="110" if tp else None,
        stop_price=None if tp else "90",
        time_in_force=TimeInForce.GTC,
        role=OrderRole.TAKE_PROFIT if tp else OrderRole.STOP_LOSS,
        parent_id="p",
        status=status,
        filled_qty=filled,
        broker_order_id=f"b-{coid}",
    )
    return replace(order, group_id=ClientOrderId("p"))


def legs(tp: OrderStatus = S.HELD, sl: OrderStatus = S.HELD) -> list[Order]:
    return [leg("tp", tp), leg("sl", sl, tp=False)]


# -- eligibility and the attached exits -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("plan", "parent", "why"),
    [
        (PLAN, entry(kind=OrderType.STOP), "market or limit"),
        (PLAN, entry(tif=TimeInForce.DAY), "GTC"),
        (ProtectionPlan(trailing=TrailRule(trail_percent=D(2)), native=True), entry(), "trailing"),
        (ProtectionPlan(stop_loss=PriceRule(offset=D("0.05")), native=True), entry(), "absolute"),
    ],
)
def test_a_plan_a_bracket_cannot_carry_is_refused_with_its_reason(
    plan: ProtectionPlan, parent: Order, why: str
) -> None:
    assert why in (native_refusal(plan, parent) or "")
    with pytest.raises(InvalidProtectionPlan, match=rf"native: .*{why}"):
        validate_plan(plan, parent)


def test_an_eligible_plan_is_accepted_for_a_market_or_limit_gtc_entry() -> None:
    assert native_refusal(PLAN, entry()) is None
    assert native_refusal(PLAN, entry(kind=OrderType.MARKET)) is None
    assert validate_plan(PLAN, entry()) is PLAN
    # the same plan without native: true is not checked for a bracket at all
    assert validate_plan(replace(PLAN, native=False), entry(tif=TimeInForce.DAY)).native is False


def test_the_attached_exits_are_a_bracket_with_both_exits_and_an_oto_with_one() -> None:
    both = attached_exits(PLAN)
    stop_limit = ProtectionPlan(
        stop_loss=PriceRule(price=D(90)), stop_limit=PriceRule(price=D("89.5")), native=True
    )
    assert (both.order_class, both.take_profit, both.stop_price) == ("bracket", D(110), D(90))
    assert attached_exits(stop_limit) == AttachedExits(None, D(90), D("89.50"))
    assert attached_exits(stop_limit).order_class == "oto"
    assert attached_exits(ProtectionPlan(take_profit=PriceRule(price=D(110)))).order_class == "oto"


# -- coverage ------------------------------------------------------------------------------------------


def test_held_legs_cover_nothing_while_the_entry_works_and_all_of_it_once_it_completely_filled() -> None:
    assert coverage(legs(), entry()) == 0
    assert coverage(legs(S.NEW), entry(S.FILLED, 10)) == 10
    assert entry_complete(entry(S.FILLED, 10))
    assert not entry_complete(entry())
    assert [o.client_order_id for o in native_legs(legs())] == ["tp", "sl"]


def test_without_the_parent_the_legs_tell_whether_they_armed() -> None:
    assert coverage(legs()) == 0, "both held: not armed"
    assert coverage(legs(S.NEW)) == 10, "the take-profit works: armed"
    assert coverage([leg("tp", S.REPLACED), leg("sl", S.HELD, tp=False)]) == 10, "the stop triggered"
    assert coverage([leg("tp", S.PARTIALLY_FILLED, 2), leg("sl", S.HELD, tp=False)]) == 10
    assert coverage([leg("tp", S.CANCELED), leg("sl", S.HELD, tp=False)]) == 0, "a group cancel under way"


def test_ended_legs_cover_what_they_filled() -> None:
    assert coverage([leg("tp", S.FILLED, 10), leg("sl", S.CANCELED, tp=False)], entry(S.FILLED, 10)) == 10
    assert coverage(legs(S.CANCELED, S.CANCELED), entry(S.CANCELED)) == 0


# -- the release rule beside held legs -------------------------------------------------------------------


def decide(
    parent: Order, children: list[Order], cut: bool = False, plan: ProtectionPlan = PLAN
) -> ReleaseDecision:
    return release_decision(parent, plan, children, None, T0, native_cut=cut)


def test_a_part_filled_entry_waits_beside_its_held_legs_without_reading_or_sending() -> None:
    decision = decide(entry(), legs())
    assert decision.commands == ()
    assert [(h.qty, h.reason) for h in decision.holds] == [(D(4), NATIVE_PARTIAL)]


def test_past_the_bound_the_rest_of_the_entry_is_cancelled_once() -> None:
    assert decide(entry(), legs(), cut=True).commands == (CancelChild(ClientOrderId("p"), NATIVE_CUT),)
    assert decide(entry(S.PENDING_CANCEL), legs(), cut=True).commands == (), "asked already"


def test_legs_left_after_their_entry_ended_are_waited_for_then_cancelled() -> None:
    ended = entry(S.CANCELED)
    assert [h.reason for h in decide(ended, legs()).holds] == [NATIVE_LEGS_LEFT]
    cut = decide(ended, [leg("tp"), leg("sl", S.PENDING_CANCEL, tp=False)], cut=True)
    assert cut.commands == (CancelChild(ClientOrderId("tp"), NATIVE_CUT),)


def test_once_every_leg_ended_the_filled_shares_get_the_ordinary_protection() -> None:
    decision = release_decision(entry(S.CANCELED), PLAN, legs(S.CANCELED, S.CANCELED), D(100), T0)
    [submit] = decision.commands
    assert isinstance(submit, SubmitChild)
    assert (submit.order.role, submit.order.qty) == (OrderRole.OCO, D(4))


def test_a_full_fill_policy_waits_with_no_hold_and_a_complete_fill_needs_nothing() -> None:
    full_fill = replace(PLAN, policy=PartialFillPolicy.FULL_FILL)
    assert decide(entry(), legs(), plan=full_fill).holds == ()
    filled = release_decision(entry(S.FILLED, 10), PLAN, legs(S.NEW), D(0), T0)
    assert (filled.covered, filled.commands, filled.holds) == (D(10), (), ())


def test_closing_a_native_parent_cancels_its_armed_legs_first() -> None:
    decision = exit_decision(entry(S.FILLED, 10), legs(S.NEW), D(10), T0)
    assert {c.client_order_id for c in decision.commands if isinstance(c, CancelChild)} == {"tp", "sl"}


# -- what the legs reserve -------------------------------------------------------------------------------


def test_a_held_native_leg_reserves_nothing_and_an_armed_take_profit_reserves_its_shares_once() -> None:
    assert reserved(legs()) == 0
    assert reserved(legs(S.NEW)) == 10
    oco_stop = replace(leg("x", S.HELD, tp=False), group_id=ClientOrderId("other"))
    assert reserved([oco_stop]) == 10, "a leg of an OCO whose primary is gone still counts"


def test_a_native_parent_whose_legs_were_never_read_waits_then_is_cut_like_a_partial() -> None:
    waiting = decide(entry(S.FILLED, 10), [])
    assert [(h.qty, h.reason) for h in waiting.holds] == [(D(10), NATIVE_UNREAD)]
    assert decide(entry(), [], cut=True).commands == (CancelChild(ClientOrderId("p"), NATIVE_CUT),)
    # past the bound an entry that ended (or completed) with no legs to be seen is protected as usual
    ended = release_decision(entry(S.CANCELED), PLAN, [], D(100), T0, native_cut=True)
    assert [type(c) for c in ended.commands] == [SubmitChild]
    # a plan that is not native never waits for legs
    ordinary = release_decision(entry(S.FILLED, 10), replace(PLAN, native=False), [], D(100), T0)
    assert [type(c) for c in ordinary.commands] == [SubmitChild]
