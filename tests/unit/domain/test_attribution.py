"""The attribution ledger: our shares are what our orders traded; the rest of the position is others'.

docs/architecture.md §2, invariant 8 ("Only ours") and §13 (ownership and operator intent).
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ordersync.domain.attribution import (
    Attribution,
    attribute,
    held_of,
    operator_canceled,
    our_shares,
    reserved,
    unprotected,
)
from ordersync.domain.ids import ClientOrderId, Symbol
from ordersync.domain.order import Order, OrderRole, OrderStatus
from ordersync.domain.reconcile import Discrepancy, Note, reconcile
from ordersync.testing import T0, make_order, make_view

OKE = Symbol("OKE")
D = Decimal


def _parent(filled: int) -> Order:
    status = OrderStatus.FILLED if filled else OrderStatus.NEW
    return make_order("p1", symbol="OKE", qty=max(filled, 1), status=status, filled_qty=filled)


def _child(
    coid: str, qty: int, *, status: OrderStatus = OrderStatus.NEW, filled: int = 0, group: str | None = None
) -> Order:
    order = make_order(
        coid,
        symbol="OKE",
        side="sell",
        qty=qty,
        role=OrderRole.STOP_LOSS if group else OrderRole.OCO,
        parent_id="p1",
        status=status,
        filled_qty=filled,
    )
    return replace(order, group_id=ClientOrderId(group)) if group else order


def test_our_book_is_our_parents_fills_minus_our_exits_fills() -> None:
    parent = _parent(20)
    oco = _child("p1~oco1", 20, status=OrderStatus.CANCELED)
    leg = _child("p1~oco1-sl", 20, status=OrderStatus.FILLED, filled=8, group="p1~oco1")

    assert our_shares([parent, oco, leg]) == {OKE: D(12)}


def test_pre_existing_shares_and_another_apps_buys_are_others_never_ours() -> None:
    ledger = Attribution(OKE, ours=D(20), position=D(60))  # 40 were there before we started

    assert (ledger.held, ledger.others, ledger.gone) == (D(20), D(40), D(0))


def test_a_person_selling_part_of_our_shares_shrinks_ours_and_nothing_is_others() -> None:
    ledger = Attribution(OKE, ours=D(20), position=D(15))  # a person sold 5 of ours by hand

    assert (ledger.held, ledger.others, ledger.gone) == (D(15), D(0), D(5))
    assert "5 of ours sold by someone else" in ledger.describe()


def test_a_sale_by_someone_else_takes_others_unreserved_shares_first() -> None:
    # 20 ours (reserved by our exit) + 40 others; someone sells 30: only others' shares were free to go
    ledger = Attribution(OKE, ours=D(20), position=D(30))

    assert (ledger.held, ledger.others, ledger.gone) == (D(20), D(10), D(0))


def test_a_short_of_ours_is_attributed_like_a_long_mirrored() -> None:
    assert held_of(D(-10), D(-4)) == D(-4)  # a person bought back 6 of our short
    assert held_of(D(-10), D(-25)) == D(-10)  # another app shorts 15 more
    assert held_of(D(-10), D(5)) == D(0)


def test_unprotected_is_ours_held_less_what_our_live_exits_reserve_never_others() -> None:
    # the case: a person sold our 50; 30 of another app's remain; qty_available would be 30
    gone = Attribution(OKE, ours=D(50), position=D(0))
    live = _child("p1~oco1", 12)
    leg = _child("p1~oco1-sl", 12, status=OrderStatus.HELD, group="p1~oco1")

    assert unprotected(gone, D(0)) == D(0)
    assert unprotected(Attribution(OKE, ours=D(20), position=D(60)), reserved([live, leg])) == D(8)


def test_reserved_counts_an_oco_once_and_only_what_it_has_not_sold() -> None:
    primary = _child("p1~oco1", 20, status=OrderStatus.REPLACED)  # the stop triggered
    leg = _child("p1~oco1-sl", 20, status=OrderStatus.PARTIALLY_FILLED, filled=5, group="p1~oco1")
    intent = _child("p1~oco2", 4, status=OrderStatus.INTENT)

    assert reserved([leg, intent]) == D(19)
    assert reserved([replace(primary, status=OrderStatus.NEW), leg]) == D(20)


@given(ours=st.integers(min_value=-500, max_value=500), position=st.integers(min_value=-500, max_value=500))
def test_the_ledger_always_adds_up_and_never_gives_us_more_than_we_traded(ours: int, position: int) -> None:
    ledger = Attribution(OKE, D(ours), D(position))

    assert ledger.held + ledger.others == ledger.position
    assert abs(ledger.held) <= abs(ledger.ours)
    assert ledger.held == 0 or (ledger.held > 0) == (ledger.ours > 0)
    assert abs(ledger.held) + ledger.gone == abs(ledger.ours)


def test_attribute_covers_every_symbol_of_ours_or_of_the_account() -> None:
    ledgers = attribute({OKE: D(10)}, {Symbol("WMB"): D(5)})

    assert set(ledgers) == {OKE, Symbol("WMB")}
    assert ledgers[OKE].gone == D(10)
    assert ledgers[Symbol("WMB")].others == D(5)


# -- a person's cancel -----------------------------------------------------------------------------------


def test_a_cancel_nobody_of_ours_asked_for_is_a_persons() -> None:
    oco = _child("p1~oco1", 20, status=OrderStatus.CANCELED)
    leg = _child("p1~oco1-sl", 20, status=OrderStatus.CANCELED, group="p1~oco1")

    assert operator_canceled([oco, leg], requested=[])
    assert not operator_canceled([oco, leg], requested=[ClientOrderId("p1~oco1")]), "our own cancel"


def test_an_oco_that_sold_its_shares_or_is_still_working_is_no_persons_cancel() -> None:
    tp = _child("p1~oco1", 20, status=OrderStatus.REPLACED)  # Alpaca: the stop triggered
    stop_filled = _child("p1~oco1-sl", 20, status=OrderStatus.FILLED, filled=20, group="p1~oco1")
    stop_canceled = _child("p1~oco1-sl", 20, status=OrderStatus.CANCELED, group="p1~oco1")
    tp_filled = _child("p1~oco1", 20, status=OrderStatus.FILLED, filled=20)
    stop_working = _child("p1~oco1-sl", 20, status=OrderStatus.ACCEPTED, group="p1~oco1")

    assert not operator_canceled([tp, stop_filled], requested=[])
    assert not operator_canceled([tp_filled, stop_canceled], requested=[]), "the twin filled: sibling cancel"
    assert not operator_canceled([replace(tp, status=OrderStatus.CANCELED), stop_working], requested=[])


# -- reconcile with others' activity ---------------------------------------------------------------------


def test_reconcile_reports_others_orders_and_shares_as_notes_never_discrepancies() -> None:
    parent = make_order("p1", symbol="OKE", qty=20, status=OrderStatus.FILLED, filled_qty=20)
    other_sell = make_view(make_order("other-app-1", symbol="OKE", side="sell", qty=30))
    other_buy = make_view(make_order("other-app-2", symbol="WMB", qty=10))
    by_hand = make_view(
        make_order("by-hand", symbol="OKE", side="sell", qty=5), status=OrderStatus.FILLED, filled_qty=5
    )
    views = [make_view(parent), other_sell, other_buy, by_hand]
    positions = {OKE: D(55), Symbol("WMB"): D(10)}  # 40 pre-existing OKE, 5 sold by hand, 10 WMB bought

    found = reconcile([parent], views, {OKE: D(20)}, positions, T0)

    assert not [c for c in found if isinstance(c, Discrepancy)], found
    notes = {(n.kind, n.key) for n in found if isinstance(n, Note)}
    assert notes == {
        ("foreign_order", other_sell.broker_order_id),
        ("foreign_order", other_buy.broker_order_id),
        ("others_position", OKE),
        ("others_position", Symbol("WMB")),
    }


def test_reconcile_notes_nothing_when_the_position_is_exactly_ours() -> None:
    parent = make_order("p1", symbol="OKE", qty=20, status=OrderStatus.FILLED, filled_qty=20)

    assert reconcile([parent], [make_view(parent)], {OKE: D(20)}, {OKE: D(20)}, T0) == []


def test_an_exit_a_person_edited_is_replaced_not_canceled_and_is_no_persons_cancel() -> None:
    tp = _child("p1~oco1", 20, status=OrderStatus.REPLACED)  # PATCH: a successor carries the role
    leg = _child("p1~oco1-sl", 20, status=OrderStatus.CANCELED, group="p1~oco1")

    assert not operator_canceled([tp, leg], requested=[])


@pytest.mark.parametrize("ended", [OrderStatus.EXPIRED, OrderStatus.REJECTED])
def test_an_exit_that_ended_without_a_cancel_is_no_persons_cancel(ended: OrderStatus) -> None:
    """A day stop expiring at the close (a fraction's exit) or a refused exit ended by the broker's rules,
    not a person's hand: the parent is re-protected, not put on operator hold."""
    stop = _child("p1~sl1", 20, status=ended)

    assert not operator_canceled([stop], requested=[])
