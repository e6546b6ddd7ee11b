"""Exit sequencing (docs/architecture.md §11.4): cancel -> broker confirms -> sell, never two sells for
the same shares.

Changing or closing protection must never ask the broker for shares another of our orders still holds
(that is how 40310000 happens), so every step waits for the broker's confirmation of the one before.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal as D

from ordersync.domain.order import Order, OrderRole, OrderSide, OrderStatus, OrderType
from ordersync.domain.protection import (
    CancelChild,
    PriceRule,
    ProtectionPlan,
    SubmitChild,
    exit_decision,
    release_decision,
)
from ordersync.testing import T0, make_order

S = OrderStatus
PLAN = ProtectionPlan(take_profit=PriceRule(price=D("110")), stop_loss=PriceRule(price=D("90")))


def parent(status: OrderStatus = S.FILLED, filled: int = 10) -> Order:
    return make_order("p", qty=10, status=status, filled_qty=filled, limit_price="100.00")


def oco(status: OrderStatus = S.NEW, qty: int = 10, filled: int = 0, made_at_s: int = 0) -> Order:
    return make_order(
        "p~oco1",
        side=OrderSide.SELL,
        qty=qty,
        limit_price="110",
        stop_price="90",
        role=OrderRole.OCO,
        parent_id="p",
        status=status,
        filled_qty=filled,
        created_at=T0 + timedelta(seconds=made_at_s),
    )


def stop_leg(status: OrderStatus) -> Order:
    """The OCO's stop leg, read from the broker (its client id is the broker's)."""
    leg = oco(status)
    return replace(leg, client_order_id="leg-1", broker_order_id="leg-1", group_id="p~oco1")


def test_closing_cancels_protection_first_and_sells_nothing_yet() -> None:
    decision = exit_decision(parent(), [oco()], D(0), T0)
    assert [c for c in decision.commands if isinstance(c, SubmitChild)] == []
    assert [c.client_order_id for c in decision.commands if isinstance(c, CancelChild)] == ["p~oco1"]
    assert decision.holds, "the exit must wait for the broker to confirm the cancel"


def test_closing_waits_while_the_cancel_is_pending() -> None:
    decision = exit_decision(parent(), [oco(S.PENDING_CANCEL)], D(0), T0)
    assert decision.commands == ()
    assert decision.holds


def test_closing_sells_the_remaining_shares_once_the_cancel_is_confirmed() -> None:
    decision = exit_decision(parent(), [oco(S.CANCELED), stop_leg(S.CANCELED)], D(10), T0)
    [command] = decision.commands
    assert isinstance(command, SubmitChild)
    exit_order = command.order
    assert (exit_order.role, exit_order.type, exit_order.side, exit_order.qty) == (
        OrderRole.EXIT,
        OrderType.MARKET,
        OrderSide.SELL,
        D(10),
    )
    assert exit_order.client_order_id == "p~exit2"


def test_a_fill_that_races_the_cancel_shrinks_the_exit() -> None:
    """The cancel is refused because the take-profit filled 4: only the other 6 are sold."""
    raced = oco(S.CANCELED, filled=4)
    [command] = exit_decision(parent(), [raced, stop_leg(S.CANCELED)], D(6), T0).commands
    assert isinstance(command, SubmitChild)
    assert command.order.qty == D(6)


def test_nothing_is_sold_when_protection_already_sold_everything() -> None:
    decision = exit_decision(parent(), [oco(S.FILLED, filled=10)], D(0), T0)
    assert decision.commands == ()
    assert decision.holds == ()


def test_closing_never_sells_beyond_qty_available() -> None:
    [command] = exit_decision(parent(), [oco(S.CANCELED), stop_leg(S.CANCELED)], D(7), T0).commands
    assert isinstance(command, SubmitChild)
    assert command.order.qty == D(7)
    assert exit_decision(parent(), [oco(S.CANCELED), stop_leg(S.CANCELED)], D(0), T0).commands == ()


def test_closing_a_working_entry_cancels_it_and_waits_for_it() -> None:
    working = parent(S.PARTIALLY_FILLED, filled=4)
    decision = exit_decision(working, [], D(4), T0)
    assert [c.client_order_id for c in decision.commands if isinstance(c, CancelChild)] == ["p"]
    assert not any(isinstance(c, SubmitChild) for c in decision.commands)


def test_an_open_exit_is_not_doubled() -> None:
    exit_child = make_order(
        "p~exit2",
        side=OrderSide.SELL,
        type=OrderType.MARKET,
        qty=10,
        role=OrderRole.EXIT,
        parent_id="p",
        status=S.NEW,
    )
    assert (
        exit_decision(parent(), [oco(S.CANCELED), stop_leg(S.CANCELED), exit_child], D(10), T0).commands == ()
    )


def test_a_changed_plan_cancels_old_children_before_replacing_them() -> None:
    old = oco(made_at_s=0)
    changed_at = T0 + timedelta(seconds=5)
    decision = release_decision(parent(), PLAN, [old], D(0), changed_at, replaced_at=changed_at)
    assert [type(c) for c in decision.commands] == [CancelChild]
    pending = replace(old, status=S.PENDING_CANCEL)
    assert (
        release_decision(parent(), PLAN, [pending], D(0), changed_at, replaced_at=changed_at).commands == ()
    )
    confirmed = replace(old, status=S.CANCELED)
    children = [confirmed, stop_leg(S.CANCELED)]  # both legs read as cancelled: nothing holds the shares
    [command] = release_decision(parent(), PLAN, children, D(10), changed_at, replaced_at=changed_at).commands
    assert isinstance(command, SubmitChild)
    assert command.order.qty == D(10)


def test_closing_waits_for_an_oco_whose_stop_leg_has_not_been_read() -> None:
    """The take-profit ended unfilled but the stop leg was never seen: it may hold the shares."""
    decision = exit_decision(parent(), [oco(S.CANCELED)], D(10), T0)
    assert not any(isinstance(c, SubmitChild) for c in decision.commands)
    assert decision.holds
