"""Protection plans: validation, and the release rule on hand-picked situations."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from ordersync.domain.errors import InvalidOrder, InvalidProtectionPlan
from ordersync.domain.ids import ClientOrderId
from ordersync.domain.lifecycle import cancel_intent
from ordersync.domain.order import Order, OrderRole, OrderSide, OrderStatus, OrderType, TimeInForce, new_order
from ordersync.domain.protection import (
    CancelChild,
    PartialFillPolicy,
    PriceRule,
    ProtectionPlan,
    ReleaseDecision,
    SubmitChild,
    coverage,
    release_decision,
    tick_round,
    validate_plan,
)
from ordersync.testing import T0, make_order

S = OrderStatus
D = Decimal
TP_110 = ProtectionPlan(take_profit=PriceRule(price=D("110")))


def parent(status: OrderStatus = S.PARTIALLY_FILLED, filled: str = "4", **kw: object) -> Order:
    defaults: dict[str, object] = {"qty": 10, "limit_price": "100.00", "filled_avg_price": "99.50"}
    defaults.update(kw)
    return make_order("p", status=status, filled_qty=filled, **defaults)  # type: ignore[arg-type]


def child(
    coid: str, qty: str, status: OrderStatus = S.NEW, filled: str = "0", minutes: int = 1, **kw: object
) -> Order:
    order = make_order(
        coid,
        side=OrderSide.SELL,
        qty=qty,
        limit_price="110.00",
        time_in_force=TimeInForce.GTC,
        role=OrderRole.TAKE_PROFIT,
        parent_id="p",
        status=status,
        filled_qty=filled,
        created_at=T0 + timedelta(minutes=minutes),
    )
    return replace(order, **kw)  # type: ignore[arg-type]


def decide(
    p: Order,
    plan: ProtectionPlan = TP_110,
    children: list[Order] | None = None,
    available: str | None = "100",
) -> ReleaseDecision:
    return release_decision(p, plan, children or [], None if available is None else D(available), T0)


def submitted(decision: ReleaseDecision) -> list[Order]:
    return [c.order for c in decision.commands if isinstance(c, SubmitChild)]


def cancelled(decision: ReleaseDecision) -> list[str]:
    return [c.client_order_id for c in decision.commands if isinstance(c, CancelChild)]


# -- validate_plan -------------------------------------------------------------------


def long_entry(limit: str | None = "100.00") -> Order:
    kind = OrderType.LIMIT if limit else OrderType.MARKET
    return new_order(
        client_order_id="e", symbol="AAPL", side="buy", type=kind, qty=5, limit_price=limit, created_at=T0
    )


def short_entry() -> Order:
    return new_order(
        client_order_id="e", symbol="AAPL", side="sell", type="limit", qty=5, limit_price="100", created_at=T0
    )


def tp(price: str) -> ProtectionPlan:
    return ProtectionPlan(take_profit=PriceRule(price=D(price)))


def sl(price: str) -> ProtectionPlan:
    return ProtectionPlan(stop_loss=PriceRule(price=D(price)))


@pytest.mark.parametrize(
    ("entry", "plan", "message"),
    [
        (long_entry(), ProtectionPlan(), "needs a take_profit, a stop_loss or both"),
        (long_entry(), tp("99"), "take-profit 99 is not beyond the long entry at 100"),
        (long_entry(), tp("100"), "take-profit 100 is not beyond the long entry"),
        (long_entry(), sl("101"), "stop-loss 101 is not protective for the long entry at 100"),
        (short_entry(), tp("101"), "take-profit 101 is not beyond the short entry at 100"),
        (short_entry(), sl("99"), "stop-loss 99 is not protective for the short entry"),
        (
            long_entry(limit=None),
            ProtectionPlan(take_profit=PriceRule(price=D("95")), stop_loss=PriceRule(price=D("100"))),
            "take-profit 95 must be beyond stop-loss 100 for a long",
        ),
        (replace(long_entry(), role=OrderRole.TAKE_PROFIT), TP_110, "only an entry order can carry"),
    ],
)
def test_invalid_plans_are_refused_with_the_problem_named(
    entry: Order, plan: ProtectionPlan, message: str
) -> None:
    with pytest.raises(InvalidProtectionPlan, match=message):
        validate_plan(plan, entry)


@pytest.mark.parametrize(
    "plan",
    [
        TP_110,
        ProtectionPlan(stop_loss=PriceRule(price=D("95"))),
        ProtectionPlan(take_profit=PriceRule(price=D("110")), stop_loss=PriceRule(price=D("95"))),
        ProtectionPlan(take_profit=PriceRule(offset=D("0.05")), stop_loss=PriceRule(offset=D("0.02"))),
    ],
)
def test_protective_plans_are_accepted(plan: ProtectionPlan) -> None:
    assert validate_plan(plan, long_entry()) is plan


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: PriceRule(), "exactly one of price or offset"),
        (lambda: PriceRule(price=D("1"), offset=D("0.1")), "exactly one of price or offset"),
        (lambda: PriceRule(price=D("0")), "exit price must be positive, was 0"),
        (lambda: PriceRule(offset=D("1")), r"fraction in \(0, 1\), was 1"),
        (lambda: PriceRule(offset=D("-0.1")), r"fraction in \(0, 1\), was -0.1"),
    ],
)
def test_invalid_price_rules_are_refused(build: object, message: str) -> None:
    with pytest.raises(InvalidProtectionPlan, match=message):
        build()  # type: ignore[operator]


# -- new_order -----------------------------------------------------------------------


def request(**kw: object) -> Order:
    fields: dict[str, object] = {
        "client_order_id": "c-1",
        "symbol": "AAPL",
        "side": "buy",
        "type": "limit",
        "qty": "10",
        "limit_price": "100",
        "created_at": T0,
    }
    fields.update(kw)
    return new_order(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"qty": 0}, "qty must be positive, was 0"),
        ({"qty": "-3"}, "qty must be positive, was -3"),
        ({"qty": "ten"}, "qty must be a number, was 'ten'"),
        ({"qty": float("nan")}, "qty must be finite, was nan"),
        ({"qty": D("Infinity")}, "qty must be finite"),
        ({"qty": True}, "qty must be a number, was True"),
        ({"side": "hold"}, r"unknown side 'hold' \(expected one of: buy, sell\)"),
        ({"type": "iceberg"}, "unknown order type 'iceberg'"),
        ({"time_in_force": "forever"}, "unknown time_in_force 'forever'"),
        ({"limit_price": None}, "a limit order needs a limit_price"),
        ({"type": "market"}, "a market order must not have a limit_price"),
        ({"type": "stop", "limit_price": None}, "a stop order needs a stop_price"),
        ({"type": "stop_limit", "stop_price": None}, "a stop_limit order needs a stop_price"),
        ({"limit_price": "-1"}, "limit_price must be positive, was -1"),
        ({"limit_price": float("nan")}, "limit_price must be finite"),
        ({"symbol": ""}, "symbol must be a ticker like 'AAPL', was ''"),
        ({"symbol": "   "}, "symbol must be a ticker"),
        ({"symbol": "AA PL"}, "symbol must be a ticker"),
        ({"client_order_id": "x" * 129}, "client_order_id longer than 128 characters: 129"),
        ({"client_order_id": ""}, "client_order_id must not be empty"),
    ],
)
def test_bad_order_requests_are_refused_with_the_problem_named(
    fields: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidOrder, match=message):
        request(**fields)


def test_valid_request_is_normalized_exactly() -> None:
    order = request(side="BUY", symbol="brk.b", qty=0.1, limit_price="412.5")
    assert order.side is OrderSide.BUY
    assert order.symbol == "BRK.B"
    assert order.qty == D("0.1")  # through str: no binary float noise
    assert order.limit_price == D("412.5")
    assert order.status is S.INTENT
    assert order.filled_qty == 0


# -- release_decision ----------------------------------------------------------------


@pytest.mark.parametrize("status", [S.INTENT, S.SUBMITTING])
def test_nothing_is_released_for_a_parent_the_broker_has_not_confirmed(status: OrderStatus) -> None:
    local_belief = parent(status=status, filled="10")  # even if something local claims it filled
    decision = decide(local_belief)
    assert decision.commands == ()
    assert decision.target == 0


def test_nothing_is_released_before_the_first_fill() -> None:
    decision = decide(parent(S.NEW, filled="0", filled_avg_price=None))
    assert decision.commands == ()
    assert decision.holds == ()


def test_first_partial_fill_releases_a_take_profit_for_exactly_that_quantity() -> None:
    decision = decide(parent(filled="4"))
    [tp] = submitted(decision)
    assert tp.client_order_id == "p~tp1"
    assert tp.parent_id == "p"
    assert tp.qty == 4
    assert tp.side is OrderSide.SELL
    assert tp.type is OrderType.LIMIT
    assert tp.limit_price == D("110.00")
    assert tp.stop_price is None
    assert tp.time_in_force is TimeInForce.GTC
    assert tp.role is OrderRole.TAKE_PROFIT
    assert tp.status is S.INTENT
    assert decision.qty_used == 4


def test_next_increment_is_protected_by_a_new_child_for_the_difference() -> None:
    decision = decide(parent(filled="7"), children=[child("p~tp1", "4")])
    [tp] = submitted(decision)
    assert (tp.client_order_id, tp.qty) == ("p~tp2", 3)
    assert (decision.target, decision.covered) == (7, 4)


def test_exact_coverage_releases_nothing() -> None:
    decision = decide(parent(filled="4"), children=[child("p~tp1", "4")])
    assert decision.commands == ()
    assert decision.holds == ()


def test_full_fill_policy_waits_for_the_complete_fill() -> None:
    plan = replace(TP_110, policy=PartialFillPolicy.FULL_FILL)
    assert decide(parent(filled="9"), plan).commands == ()
    [tp] = submitted(decide(parent(S.FILLED, filled="10"), plan))
    assert tp.qty == 10


@pytest.mark.parametrize("death", [S.CANCELED, S.EXPIRED])
def test_full_fill_policy_protects_a_partial_fill_once_the_parent_is_dead(death: OrderStatus) -> None:
    plan = replace(TP_110, policy=PartialFillPolicy.FULL_FILL)
    [tp] = submitted(decide(parent(death, filled="6"), plan))
    assert tp.qty == 6


@pytest.mark.parametrize("death", [S.CANCELED, S.EXPIRED, S.REJECTED])
def test_dead_unfilled_parent_releases_nothing_and_cancels_pending_children(death: OrderStatus) -> None:
    children = [
        child("p~tp1", "4", S.INTENT),
        child("p~tp2", "2", S.NEW, minutes=2),
        child("p~tp3", "3", S.CANCELED, minutes=3),
        child("p~tp4", "1", S.FILLED, filled="1", minutes=4),
    ]
    decision = decide(parent(death, filled="0", filled_avg_price=None), children=children)
    assert submitted(decision) == []
    assert sorted(cancelled(decision)) == ["p~tp1", "p~tp2"]


def test_in_flight_child_blocks_any_new_release() -> None:
    decision = decide(parent(filled="8"), children=[child("p~tp1", "4", S.SUBMITTING)])
    assert decision.commands == ()
    [hold] = decision.holds
    assert hold.qty == 4
    assert "unknown" in hold.reason


@pytest.mark.parametrize(
    ("available", "reason"), [(None, "qty_available is unknown"), ("0", "qty_available is 0")]
)
def test_no_release_without_available_shares(available: str | None, reason: str) -> None:
    decision = decide(parent(filled="4"), available=available)
    assert decision.commands == ()
    [hold] = decision.holds
    assert hold.qty == 4
    assert reason in hold.reason


def test_release_is_capped_by_qty_available_and_the_rest_is_held() -> None:
    decision = decide(parent(filled="4"), available="3")
    [tp] = submitted(decision)
    assert tp.qty == D("3")
    [hold] = decision.holds
    assert hold.qty == D("1")


def test_no_release_until_the_broker_reports_the_fill_price() -> None:
    decision = decide(replace(parent(filled="4"), filled_avg_price=None))
    assert decision.commands == ()
    assert "fill price" in decision.holds[0].reason


def test_lone_stop_waits_for_the_parent_to_finish_then_protects_the_fill() -> None:
    plan = ProtectionPlan(stop_loss=PriceRule(price=D("95")))
    waiting = decide(parent(filled="4"), plan)
    assert waiting.commands == ()
    assert "wash-trade" in waiting.holds[0].reason
    [stop] = submitted(decide(parent(S.CANCELED, filled="4"), plan))
    assert (stop.type, stop.stop_price, stop.limit_price, stop.qty) == (OrderType.STOP, D("95.00"), None, 4)
    assert stop.role is OrderRole.STOP_LOSS
    assert stop.client_order_id == "p~sl1"


def test_relative_take_profit_that_would_cross_the_working_entry_waits() -> None:
    """99.50 + 0.1 % = 99.60, under the open 100.00 buy limit: Alpaca would refuse it as a wash trade."""
    plan = ProtectionPlan(take_profit=PriceRule(offset=D("0.001")))
    waiting = decide(parent(filled="4"), plan)
    assert waiting.commands == ()
    assert "wash-trade" in waiting.holds[0].reason
    [tp] = submitted(decide(parent(S.CANCELED, filled="4"), plan))
    assert tp.limit_price == D("99.60")


def test_take_profit_and_stop_loss_become_one_oco_child() -> None:
    plan = ProtectionPlan(take_profit=PriceRule(price=D("110")), stop_loss=PriceRule(price=D("95")))
    [oco] = submitted(decide(parent(filled="4"), plan))
    assert oco.role is OrderRole.OCO
    assert oco.client_order_id == "p~oco1"
    assert (oco.limit_price, oco.stop_price, oco.qty, oco.side) == (
        D("110.00"),
        D("95.00"),
        4,
        OrderSide.SELL,
    )


def test_rejected_child_covers_nothing_and_is_retried_under_a_new_id() -> None:
    decision = decide(parent(filled="4"), children=[child("p~tp1", "4", S.REJECTED)])
    [tp] = submitted(decision)
    assert (tp.client_order_id, tp.qty) == ("p~tp2", 4)


def test_child_canceled_after_a_partial_fill_covers_what_it_sold() -> None:
    sold_two = child("p~tp1", "4", S.CANCELED, filled="2")
    decision = decide(parent(filled="4"), children=[sold_two])
    assert decision.covered == 2
    assert [c.qty for c in submitted(decision)] == [2]


def test_coverage_above_the_fill_cancels_the_newest_children_first() -> None:
    children = [
        child("p~tp1", "3", minutes=1),
        child("p~tp2", "3", minutes=2),
        child("p~tp3", "2", minutes=3),
    ]
    decision = decide(parent(filled="4"), children=children)
    assert submitted(decision) == []
    assert cancelled(decision) == ["p~tp3", "p~tp2"]


def test_a_pending_cancel_already_counts_toward_the_excess() -> None:
    children = [child("p~tp1", "4", minutes=1), child("p~tp2", "3", S.PENDING_CANCEL, minutes=2)]
    decision = decide(parent(filled="4"), children=children)
    assert decision.commands == ()


def test_coverage_counts_open_children_in_full_and_finished_ones_by_their_fills() -> None:
    children = [
        child("a", "4", S.PARTIALLY_FILLED, filled="1"),
        child("b", "3", S.FILLED, filled="3"),
        child("c", "5", S.CANCELED, filled="2"),
        child("d", "5", S.REJECTED),
        child("e", "2", S.INTENT),
    ]
    assert coverage(children) == 4 + 3 + 2 + 0 + 2


# -- prices --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("side", "fill", "tp", "sl"),
    [
        (OrderSide.BUY, "100.00", "105.00", "95.00"),
        (OrderSide.SELL, "100.00", "95.00", "105.00"),
        (OrderSide.BUY, "33.34", "35.01", "31.67"),  # 35.007 and 31.673: a cent each way
        (OrderSide.BUY, "0.5", "0.5250", "0.4750"),  # below $1: hundredths of a cent
    ],
)
def test_relative_exits_are_computed_from_the_average_fill_price_and_rounded_away_from_it(
    side: OrderSide, fill: str, tp: str, sl: str
) -> None:
    p = parent(filled="4", side=side, limit_price=fill, filled_avg_price=fill, status=S.FILLED, qty=4)
    tp_only = ProtectionPlan(take_profit=PriceRule(offset=D("0.05")))
    sl_only = ProtectionPlan(stop_loss=PriceRule(offset=D("0.05")))
    [take] = submitted(decide(p, tp_only))
    [stop] = submitted(decide(p, sl_only))
    assert take.limit_price == D(tp)
    assert stop.stop_price == D(sl)
    assert take.side is stop.side is side.opposite


@pytest.mark.parametrize(
    ("side", "fill", "offset", "tp", "sl"),
    [
        # 10.333 / 9.667: half-up would give 10.33 / 9.67, both nearer the fill than asked
        (OrderSide.BUY, "10.00", "0.0333", "10.34", "9.66"),
        (OrderSide.SELL, "10.00", "0.0333", "9.66", "10.34"),
        # exactly on a tick: nothing to round
        (OrderSide.BUY, "10.00", "0.05", "10.50", "9.50"),
        # just under a tick: 10.0499 rounds up to 10.05, 9.9501 down to 9.95
        (OrderSide.BUY, "10.00", "0.00499", "10.05", "9.95"),
        # across the $1 tick boundary: 0.999999 is under $1 (hundredths of a cent) and rounds up to 1.0000;
        # 1.00 - 0.005 % = 0.99995 rounds down to 0.9999
        (OrderSide.BUY, "0.99", "0.0101", "1.0000", "0.9800"),
        (OrderSide.BUY, "1.00", "0.00005", "1.01", "0.9999"),
        # at or above $1 a stop floors to the cent: 1.0098 -> 1.00 (never 1.01, nearer the fill)
        (OrderSide.BUY, "1.03", "0.0196", "1.06", "1.00"),
    ],
)
def test_relative_exits_are_rounded_away_from_the_fill_at_the_tick_boundaries(
    side: OrderSide, fill: str, offset: str, tp: str, sl: str
) -> None:
    p = parent(S.FILLED, filled="4", side=side, limit_price=fill, filled_avg_price=fill, qty=4)
    [take] = submitted(decide(p, ProtectionPlan(take_profit=PriceRule(offset=D(offset)))))
    [stop] = submitted(decide(p, ProtectionPlan(stop_loss=PriceRule(offset=D(offset)))))
    assert (take.limit_price, stop.stop_price) == (D(tp), D(sl))
    assert str(take.limit_price) == tp, "on Alpaca's tick: cents at or above $1, 0.0001 below"


@pytest.mark.parametrize(("side", "fill"), [(OrderSide.BUY, "10.00"), (OrderSide.SELL, "10.00")])
def test_relative_exits_stay_strictly_beyond_the_fill_after_rounding(side: OrderSide, fill: str) -> None:
    """A 0.01 % offset on $10.00 is 0.1 cent: rounded half-up it lands *on* the fill price, a take-profit
    that is no profit (and a stop that triggers at once). The tick rounding must round away from the fill."""
    p = parent(S.FILLED, filled="4", side=side, limit_price=fill, filled_avg_price=fill, qty=4)
    sign = 1 if side is OrderSide.BUY else -1
    [take] = submitted(decide(p, ProtectionPlan(take_profit=PriceRule(offset=D("0.0001")))))
    [stop] = submitted(decide(p, ProtectionPlan(stop_loss=PriceRule(offset=D("0.0001")))))
    assert take.limit_price is not None
    assert stop.stop_price is not None
    assert sign * (take.limit_price - D(fill)) > 0, f"take-profit {take.limit_price} not beyond fill {fill}"
    assert sign * (D(fill) - stop.stop_price) > 0, f"stop-loss {stop.stop_price} not beyond fill {fill}"


def test_a_stop_that_cannot_be_priced_above_zero_is_not_a_crash() -> None:
    """A $0.0001 fill has no tick below it: the rule must hold (or refuse the plan), not raise mid-release."""
    p = parent(S.FILLED, filled="4", qty=4, limit_price="0.0001", filled_avg_price="0.0001")
    decision = decide(p, ProtectionPlan(stop_loss=PriceRule(offset=D("0.0001"))))
    assert all(c.stop_price is not None and c.stop_price > 0 for c in submitted(decision))


@pytest.mark.parametrize(
    ("raw", "rounded"),
    [("1.005", "1.01"), ("1.004", "1.00"), ("0.99994", "0.9999"), ("0.00005", "0.0001"), ("250", "250.00")],
)
def test_tick_round_uses_cents_from_one_dollar_and_hundredths_of_a_cent_below(raw: str, rounded: str) -> None:
    assert tick_round(D(raw)) == D(rounded)
    assert str(tick_round(D(raw))) == rounded


def test_child_ids_never_collide_with_existing_children() -> None:
    existing = [child(f"p~tp{i}", "1", S.FILLED, filled="1", minutes=i) for i in (1, 2)]
    [tp] = submitted(decide(parent(filled="4"), children=existing))
    assert tp.client_order_id not in {c.client_order_id for c in existing}
    assert isinstance(tp.client_order_id, str)
    assert ClientOrderId("p~tp3") == tp.client_order_id


# -- OCO groups ----------------------------------------------------------------------


def oco_child(coid: str, qty: str, status: OrderStatus, filled: str = "0", **kw: object) -> Order:
    return child(coid, qty, status, filled, role=OrderRole.OCO, stop_price=D("95.00"), **kw)


def test_finished_oco_counts_what_its_legs_sold() -> None:
    primary = oco_child("p~oco1", "4", S.CANCELED)  # the take-profit leg, canceled when the stop triggered
    stop_leg = replace(
        oco_child("p~oco1-stop", "4", S.FILLED, filled="4"),
        group_id=primary.client_order_id,
        broker_order_id="b2",
    )
    assert coverage([primary, stop_leg]) == 4


@pytest.mark.parametrize("ended", [S.REPLACED, S.CANCELED])
def test_oco_ended_unfilled_with_unread_legs_is_counted_until_the_legs_are_read(ended: OrderStatus) -> None:
    """The take-profit leg ended unfilled (``replaced`` is Alpaca's mark of a triggered stop; a venue may
    say ``canceled``): the stop leg may be live and holding the shares until we have read it."""
    assert coverage([oco_child("p~oco1", "4", ended)]) == 4


def test_a_cancelled_oco_whose_stop_leg_ended_covers_nothing() -> None:
    """Cancelling any order of a group cancels the rest (docs/alpaca.md §6.1): once the stop leg is read as
    ended, nothing holds the shares."""
    primary = oco_child("p~oco1", "4", S.CANCELED)
    stop_leg = replace(
        oco_child("p~oco1-stop", "4", S.CANCELED), group_id=primary.client_order_id, broker_order_id="b2"
    )
    assert coverage([primary, stop_leg]) == 0


def test_oco_intent_dropped_before_it_was_sent_covers_nothing() -> None:
    """A dropped intent never reached the broker: no stop leg to wait for, the shares are unprotected."""
    dropped = cancel_intent(oco_child("p~oco1", "4", S.INTENT))
    assert dropped.broker_order_id is None
    assert coverage([dropped]) == 0


# -- excess that cannot be cancelled -------------------------------------------------------------------


def test_shares_a_finished_child_sold_are_excess_no_cancel_can_remove() -> None:
    """The plan became full_fill (target 0 while the parent works) after a take-profit sold 2 shares and
    another's cancel is pending: both count toward the excess, so no cancel is sent twice, a finished child
    is never "cancelled", and nothing is released."""
    plan = replace(TP_110, policy=PartialFillPolicy.FULL_FILL)
    sold = child("p~tp1", "2", S.FILLED, filled="2", minutes=1)
    cancelling = child("p~tp2", "2", S.PENDING_CANCEL, minutes=2)

    decision = release_decision(parent(filled="4"), plan, [sold, cancelling], D("100"), T0, (), T0)

    assert (decision.target, decision.covered) == (0, 4)
    assert decision.commands == ()
    assert decision.holds == ()
    confirmed = decide(parent(filled="4"), plan, [sold, replace(cancelling, status=S.CANCELED)])
    assert (confirmed.covered, confirmed.commands) == (2, ()), "what was sold stays sold"


@pytest.mark.parametrize("side", [OrderSide.BUY, OrderSide.SELL])
def test_an_offset_below_decimal_precision_still_puts_the_exits_a_tick_beyond_the_fill(
    side: OrderSide,
) -> None:
    """An offset inside (0, 1) but too small for Decimal's 28 digits leaves the raw price on the fill; the
    exits must still be a profit and a stop that does not trigger at once."""
    p = parent(S.FILLED, filled="4", side=side, limit_price="10.00", filled_avg_price="10.00", qty=4)
    tiny = D("1E-30")
    sign = 1 if side is OrderSide.BUY else -1
    [take] = submitted(decide(p, ProtectionPlan(take_profit=PriceRule(offset=tiny))))
    [stop] = submitted(decide(p, ProtectionPlan(stop_loss=PriceRule(offset=tiny))))
    assert take.limit_price == D("10.00") + sign * D("0.01")
    assert stop.stop_price == D("10.00") - sign * D("0.01")
