"""Exit kinds (stop-limit, trailing stop, alone or in an OCO) and fractional fills in the release rule
(docs/architecture.md §14)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from ordersync.domain.errors import InvalidOrder, InvalidProtectionPlan
from ordersync.domain.order import Order, OrderRole, OrderSide, OrderStatus, OrderType, TimeInForce, new_order
from ordersync.domain.protection import (
    FRACTION_REFUSALS_BEFORE_ALERT,
    WASH_TRADE_HOLD,
    CancelChild,
    PriceRule,
    ProtectionPlan,
    ReleaseDecision,
    SubmitChild,
    TrailRule,
    release_decision,
    unreleasable_fraction,
    validate_plan,
)
from ordersync.testing import T0, make_order

D = Decimal
S = OrderStatus
TP = PriceRule(price=D("110"))
SL = PriceRule(price=D("95"))


def parent(filled: str = "4", status: OrderStatus = S.PARTIALLY_FILLED, **kw: object) -> Order:
    defaults: dict[str, object] = {"qty": 10, "limit_price": "100.00", "filled_avg_price": "100.00"}
    defaults.update(kw)
    return make_order("p", status=status, filled_qty=filled, **defaults)  # type: ignore[arg-type]


def decide(
    p: Order, plan: ProtectionPlan, children: list[Order] | None = None, opposing: list[Order] | None = None
) -> ReleaseDecision:
    return release_decision(p, plan, children or [], D("100"), T0, opposing or [])


def submitted(decision: ReleaseDecision) -> list[Order]:
    return [c.order for c in decision.commands if isinstance(c, SubmitChild)]


# -- plans ---------------------------------------------------------------------------------------------


def test_a_stop_limit_needs_its_stop_and_a_trailing_stop_replaces_the_stop() -> None:
    with pytest.raises(InvalidProtectionPlan, match="needs its stop price"):
        ProtectionPlan(stop_limit=PriceRule(price=D("94")))
    with pytest.raises(InvalidProtectionPlan, match="not both"):
        ProtectionPlan(stop_loss=SL, trailing=TrailRule(trail_percent=D("3")))
    with pytest.raises(InvalidProtectionPlan, match="exactly one"):
        TrailRule(trail_price=D("1"), trail_percent=D("3"))
    with pytest.raises(InvalidProtectionPlan, match=r"\(0, 100\)"):
        TrailRule(trail_percent=D("100"))


def test_a_stop_limit_whose_limit_is_beyond_its_stop_is_refused() -> None:
    entry = new_order(
        client_order_id="p", symbol="AAPL", side="buy", type="limit", qty=10, limit_price="100", created_at=T0
    )
    bad = ProtectionPlan(stop_loss=SL, stop_limit=PriceRule(price=D("95.50")))
    with pytest.raises(InvalidProtectionPlan, match="beyond its stop"):
        validate_plan(bad, entry)
    good = ProtectionPlan(stop_loss=SL, stop_limit=PriceRule(price=D("94.80")))
    assert validate_plan(good, entry) is good


def test_a_trailing_stop_order_needs_exactly_one_trail_and_no_other_order_has_one() -> None:
    common = {"client_order_id": "x", "symbol": "AAPL", "side": "sell", "qty": 1, "created_at": T0}
    with pytest.raises(InvalidOrder, match="trail"):
        new_order(type="trailing_stop", **common)  # type: ignore[arg-type]
    with pytest.raises(InvalidOrder, match="trail"):
        new_order(type="stop", stop_price="9", trail_price="1", **common)  # type: ignore[arg-type]
    order = new_order(type="trailing_stop", trail_percent="2.5", **common)  # type: ignore[arg-type]
    assert order.trail_percent == D("2.5")


# -- children ------------------------------------------------------------------------------------------


def test_a_lone_stop_limit_is_one_gtc_stop_limit_priced_from_the_fill() -> None:
    plan = ProtectionPlan(stop_loss=PriceRule(offset=D("0.03")), stop_limit=PriceRule(offset=D("0.035")))
    [child] = submitted(decide(parent(status=S.FILLED, qty=4), plan))
    assert (child.type, child.role, child.time_in_force) == (
        OrderType.STOP_LIMIT,
        OrderRole.STOP_LOSS,
        TimeInForce.GTC,
    )
    assert (child.stop_price, child.limit_price, child.qty) == (D("97.00"), D("96.50"), D(4))


def test_take_profit_and_stop_limit_are_one_oco_with_a_stop_limit_leg() -> None:
    plan = ProtectionPlan(take_profit=TP, stop_loss=SL, stop_limit=PriceRule(price=D("94.80")))
    [oco] = submitted(decide(parent(), plan))
    assert oco.role is OrderRole.OCO
    assert (oco.limit_price, oco.stop_price, oco.stop_limit_price) == (D("110"), D("95"), D("94.80"))


@pytest.mark.parametrize("take_profit", [None, TP], ids=["alone", "beside-a-take-profit"])
def test_a_trailing_stop_is_sent_alone_even_beside_a_take_profit(take_profit: PriceRule | None) -> None:
    plan = ProtectionPlan(take_profit=take_profit, trailing=TrailRule(trail_percent=D("2.5")))
    [child] = submitted(decide(parent(status=S.FILLED, qty=4), plan))
    assert (child.type, child.role, child.trail_percent, child.trail_price) == (
        OrderType.TRAILING_STOP,
        OrderRole.STOP_LOSS,
        D("2.5"),
        None,
    )
    assert child.limit_price is None
    assert child.stop_price is None


def test_a_trailing_stop_is_released_beside_our_working_entry_a_plain_stop_is_held() -> None:
    # Alpaca exempts trailing stops from the wash-trade refusal (docs/alpaca.md §4.7); a plain stop is not
    working_entry = parent()  # partially filled: its rest still works
    trailing = ProtectionPlan(trailing=TrailRule(trail_price=D("1.50")))
    [child] = submitted(decide(working_entry, trailing))
    assert child.trail_price == D("1.50")
    held = decide(working_entry, ProtectionPlan(stop_loss=SL))
    assert submitted(held) == []
    assert "wash-trade" in held.holds[0].reason


# -- fractional fills ------------------------------------------------------------------------------------


def test_a_fractional_fill_gets_a_gtc_oco_for_the_whole_shares_and_a_day_stop_for_the_fraction() -> None:
    plan = ProtectionPlan(take_profit=TP, stop_loss=SL, stop_limit=PriceRule(price=D("94.80")))
    done = parent(filled="5.5", status=S.FILLED, qty="5.5")
    oco, fraction = submitted(decide(done, plan))
    assert (oco.role, oco.qty, oco.time_in_force) == (OrderRole.OCO, D(5), TimeInForce.GTC)
    assert (fraction.role, fraction.type, fraction.qty) == (
        OrderRole.STOP_LOSS,
        OrderType.STOP_LIMIT,
        D("0.5"),
    )
    assert fraction.time_in_force is TimeInForce.DAY
    assert (fraction.stop_price, fraction.limit_price) == (D("95"), D("94.80"))
    assert oco.client_order_id != fraction.client_order_id


def test_a_fraction_alone_is_a_day_take_profit_when_the_plan_has_no_stop() -> None:
    [child] = submitted(
        decide(parent(filled="0.25", status=S.FILLED, qty="0.25"), ProtectionPlan(take_profit=TP))
    )
    assert (child.type, child.qty, child.time_in_force) == (OrderType.LIMIT, D("0.25"), TimeInForce.DAY)


def test_the_fraction_of_a_trailing_plan_is_held_with_a_reason() -> None:
    plan = ProtectionPlan(trailing=TrailRule(trail_percent=D("3")))
    decision = decide(parent(filled="3.5", status=S.FILLED, qty="3.5"), plan)
    [whole] = submitted(decision)
    assert whole.qty == 3
    [hold] = decision.holds
    assert hold.qty == D("0.5")
    assert "trailing" in hold.reason


def test_the_fraction_s_lone_stop_waits_for_our_working_entry_while_the_whole_shares_get_their_oco() -> None:
    plan = ProtectionPlan(take_profit=TP, stop_loss=SL)
    [oco] = submitted(decide(parent(filled="4.5"), plan))
    assert (oco.role, oco.qty) == (OrderRole.OCO, D(4))


def test_a_fraction_refused_again_and_again_is_no_longer_retried() -> None:
    plan = ProtectionPlan(stop_loss=SL)
    done = parent(filled="0.5", status=S.FILLED, qty="0.5")
    refused = [
        replace(
            make_order(f"p~sl{i}", side=OrderSide.SELL, qty="0.5", type=OrderType.STOP, stop_price="95"),
            parent_id="p",
            role=OrderRole.STOP_LOSS,
            status=S.REJECTED,
        )
        for i in range(1, FRACTION_REFUSALS_BEFORE_ALERT + 1)
    ]
    decision = decide(done, plan, refused[:-1])
    assert [c.qty for c in submitted(decision)] == [D("0.5")]
    decision = decide(done, plan, refused)
    assert submitted(decision) == []
    assert "not retried" in decision.holds[0].reason


# -- the wash-trade bound ----------------------------------------------------------------------------------


def _other_entry(coid: str, status: OrderStatus = S.NEW) -> Order:
    return make_order(coid, qty=50, limit_price="100.00", status=status)


def test_a_lone_stop_held_past_the_bound_cancels_our_working_buys_that_block_it() -> None:
    plan = ProtectionPlan(stop_loss=SL)
    working = parent()  # its own rest still works
    others = [_other_entry("q"), _other_entry("intent-only", S.INTENT)]
    held = decide(working, plan, opposing=others)
    assert held.commands == ()
    assert held.holds[0].reason == WASH_TRADE_HOLD

    cut = release_decision(working, plan, [], D("100"), T0, others, cut_blockers=True)

    # the entry's rest and the other working buy are canceled; an unsent intent is not at the broker
    assert [c.client_order_id for c in cut.commands if isinstance(c, CancelChild)] == ["p", "q"]
    assert submitted(cut) == []  # the stop goes once the broker confirms the cancels
    after = decide(
        replace(working, status=S.CANCELED), plan, opposing=[replace(others[0], status=S.CANCELED)]
    )
    [stop] = submitted(after)
    assert stop.qty == 4


def test_the_bound_changes_nothing_for_an_oco_or_a_trailing_stop() -> None:
    for plan in (
        ProtectionPlan(take_profit=TP, stop_loss=SL),
        ProtectionPlan(trailing=TrailRule(trail_price=D(2))),
    ):
        decision = release_decision(parent(), plan, [], D("100"), T0, [_other_entry("q")], cut_blockers=True)
        assert [c.order.qty for c in decision.commands if isinstance(c, SubmitChild)] == [D(4)]


def test_a_fraction_s_lone_stop_held_past_the_bound_cancels_the_working_entry() -> None:
    plan = ProtectionPlan(take_profit=TP, stop_loss=SL)
    decision = release_decision(parent(filled="4.5"), plan, [], D("100"), T0, cut_blockers=True)
    assert [c.order.role for c in decision.commands if isinstance(c, SubmitChild)] == [OrderRole.OCO]
    assert [c.client_order_id for c in decision.commands if isinstance(c, CancelChild)] == ["p"]


def test_a_fraction_that_can_never_be_released_is_held_without_the_position_being_known() -> None:
    # the release gate reads no position for it (engine/release.py _needs_more): the hold says why anyway
    plan = ProtectionPlan(trailing=TrailRule(trail_percent=D("3")))
    done = parent(filled="3.5", status=S.FILLED, qty="3.5")
    whole = replace(
        new_order(
            client_order_id="p~sl1",
            symbol=done.symbol,
            side="sell",
            type="trailing_stop",
            qty=3,
            trail_percent="3",
            created_at=T0,
            role=OrderRole.STOP_LOSS,
            parent_id=done.client_order_id,
        ),
        status=S.NEW,
    )
    assert unreleasable_fraction(plan, [whole]) is not None

    decision = release_decision(done, plan, [whole], None, T0)

    assert decision.commands == ()
    assert [(h.qty, "trailing" in h.reason) for h in decision.holds] == [(D("0.5"), True)]


@pytest.mark.parametrize("trail", ["0", "-1.50"])
def test_a_trail_price_must_be_a_positive_distance(trail: str) -> None:
    with pytest.raises(InvalidProtectionPlan, match=f"trail_price must be positive, was {trail}"):
        TrailRule(trail_price=D(trail))
