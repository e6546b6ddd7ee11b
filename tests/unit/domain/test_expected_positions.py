"""Expected positions are what our orders imply once a reconciliation's own reads are applied."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from ordersync.domain.ids import BrokerOrderId, Symbol
from ordersync.domain.order import OrderRole, OrderStatus
from ordersync.domain.reconcile import Discrepancy, Observe, expected_positions, reconcile
from ordersync.testing import T0, make_order, make_view

AAPL = Symbol("AAPL")


def test_a_fill_the_reads_show_but_the_store_lacks_is_no_drift() -> None:
    parent = make_order("p1", status=OrderStatus.PARTIALLY_FILLED, filled_qty=4)
    read = make_view(parent, filled_qty=10, status=OrderStatus.FILLED)  # the stream dropped the last fill

    before = expected_positions([parent], {})
    after = expected_positions([parent], {}, [read])
    found = reconcile([parent], [read], after, {AAPL: Decimal(10)}, T0 + timedelta(minutes=1))

    assert before == {AAPL: Decimal(4)}
    assert after == {AAPL: Decimal(10)}
    assert not [c for c in found if isinstance(c, Discrepancy)], "the correction read is not a drift"


def test_the_store_ahead_of_a_read_keeps_its_own_fill() -> None:
    parent = make_order("p1", status=OrderStatus.FILLED, filled_qty=10)
    stale = make_view(parent, filled_qty=6, status=OrderStatus.PARTIALLY_FILLED)
    assert expected_positions([parent], {}, [stale]) == {AAPL: Decimal(10)}


def test_a_filled_leg_of_our_group_not_stored_yet_counts() -> None:
    parent = make_order("p1", status=OrderStatus.FILLED, filled_qty=10)
    oco = make_order(
        "p1~oco", side="sell", role=OrderRole.OCO, parent_id="p1", status=OrderStatus.CANCELED, qty=10
    )
    leg_id = BrokerOrderId("brk-leg")
    oco = replace(oco, leg_ids=(leg_id,))
    leg = replace(
        make_view(make_order("leg", side="sell", qty=10), filled_qty=10, status=OrderStatus.FILLED),
        broker_order_id=leg_id,
        side="sell",
    )
    assert expected_positions([parent, oco], {}, [make_view(oco), leg]) == {}
    assert expected_positions([parent, oco], {}) == {AAPL: Decimal(10)}, "without the read: still long"


def test_an_order_that_replaced_one_of_ours_is_ours_not_foreign_and_its_fills_count() -> None:
    old = make_order("p1", status=OrderStatus.REPLACED, filled_qty=3)
    old_id = BrokerOrderId("brk-p1")
    successor = replace(
        make_view(make_order("person-edit", qty=7), filled_qty=7, status=OrderStatus.FILLED),
        replaces=old_id,
        side="buy",
    )
    again = replace(
        make_view(make_order("second-edit", qty=7), filled_qty=0, status=OrderStatus.NEW),
        replaces=successor.broker_order_id,
        side="buy",
    )
    views = [make_view(old), successor, again]

    found = reconcile([], views, expected_positions([old], {}, views), {AAPL: Decimal(10)}, T0, [old_id])

    assert expected_positions([old], {}, views) == {AAPL: Decimal(10)}, "3 before the edit, 7 after"
    assert not [c for c in found if isinstance(c, Discrepancy)], f"not foreign, no drift: {found}"
    adopted = [c.observation.order.client_order_id for c in found if isinstance(c, Observe)]
    assert adopted == ["person-edit", "second-edit"], "both links of the chain are observed (adopted)"
