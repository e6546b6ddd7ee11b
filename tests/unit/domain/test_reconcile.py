"""Reconciliation on hand-picked situations: what it asks for when an order is missing from the reads, when
a read is news, when it is not, and how a replacement's fills count.

The properties (convergence over generated worlds) are in test_reconcile_properties.py; these examples pin
each rule by name so a change to one of them fails a test that says which.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from ordersync.domain import lifecycle
from ordersync.domain.errors import Overfill
from ordersync.domain.events import OrderObserved, Source
from ordersync.domain.ids import BrokerOrderId, Symbol
from ordersync.domain.order import OrderStatus
from ordersync.domain.reconcile import Lookup, Observe, expected_positions, reconcile
from ordersync.testing import T0, make_order, make_view

AAPL = Symbol("AAPL")
S = OrderStatus
NOW = T0 + timedelta(hours=1)


def test_an_order_we_sent_that_no_read_shows_is_looked_up_and_an_unsent_intent_is_not() -> None:
    sent = make_order("p1", status=S.NEW)
    intent = make_order("p2", status=S.INTENT)

    found = reconcile([sent, intent], [], {}, {}, NOW)

    assert found == [Lookup(sent.client_order_id)], "an intent never reached the broker: nothing to look up"


def test_a_new_status_without_a_new_fill_is_observed() -> None:
    working = make_order("p1", status=S.NEW)
    canceled = make_view(working, status=S.CANCELED)

    [correction] = reconcile([working], [canceled], {}, {}, NOW)

    assert isinstance(correction, Observe)
    assert correction.observation.order == canceled
    assert correction.observation.source is Source.RECONCILE


def test_a_read_older_than_what_we_applied_is_not_proposed_again() -> None:
    """A late page shows ``new`` for an order we already hold as pending_cancel: the lifecycle would ignore
    it, so proposing it would repeat on every run."""
    order = make_order("p1", status=S.PENDING_CANCEL, broker_updated_at=T0 + timedelta(minutes=5))
    late = make_view(order, status=S.NEW, updated_at=T0 + timedelta(minutes=1))

    assert reconcile([order], [late], {}, {}, NOW) == []


def test_a_read_filled_beyond_the_order_quantity_is_not_proposed() -> None:
    """The lifecycle refuses an overfill (it is reported, not applied), so reconcile does not offer it."""
    order = make_order("p1", qty=10, status=S.PARTIALLY_FILLED, filled_qty=4)
    overfilled = make_view(order, status=S.FILLED, filled_qty=12)

    assert reconcile([order], [overfilled], {AAPL: Decimal(4)}, {AAPL: Decimal(4)}, NOW) == []
    refused = lifecycle.apply(order, OrderObserved(overfilled, Source.RECONCILE, overfilled.updated_at, NOW))
    assert isinstance(refused.error, Overfill)
    assert refused.order.filled_qty == 4


def test_an_unsent_intent_implies_no_position() -> None:
    parent = make_order("p1", status=S.FILLED, filled_qty=10)
    intent = make_order("p1~tp1", side="sell", status=S.INTENT)

    assert expected_positions([parent, intent], {}, [make_view(parent)]) == {AAPL: Decimal(10)}


def test_a_replacement_read_without_a_side_counts_nothing_toward_our_position() -> None:
    """A read that does not say buy or sell cannot move a position either way: it is not guessed."""
    old = make_order("p1", status=S.REPLACED, filled_qty=3)
    successor = replace(
        make_view(make_order("person-edit", qty=7), status=S.FILLED, filled_qty=7),
        replaces=BrokerOrderId("brk-p1"),
        side=None,
    )

    assert expected_positions([old], {}, [make_view(old), successor]) == {AAPL: Decimal(3)}
    with_side = replace(successor, side="buy")
    assert expected_positions([old], {}, [make_view(old), with_side]) == {AAPL: Decimal(10)}


@pytest.mark.parametrize("status", [S.NEW, S.PARTIALLY_FILLED])
def test_a_read_equal_to_what_we_hold_asks_for_nothing(status: OrderStatus) -> None:
    filled = 4 if status is S.PARTIALLY_FILLED else 0
    order = make_order("p1", status=status, filled_qty=filled)
    position = {AAPL: Decimal(filled)} if filled else {}

    assert reconcile([order], [make_view(order)], position, position, NOW) == []
