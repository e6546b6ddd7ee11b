"""Every (current status, observed broker status) pair of the lifecycle table, against an expectation
written here from Alpaca's semantics (docs/alpaca.md §1, §7), not from the module's helper.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ordersync.domain.errors import InvalidTransition, MalformedObservation
from ordersync.domain.lifecycle import (
    TRANSITIONS,
    Move,
    cancel_intent,
    mark_refused,
    mark_submitting,
    next_move,
    settle_not_found,
)
from ordersync.domain.order import Order, OrderStatus
from ordersync.testing import make_order

S = OrderStatus

# The expectation, spelled out status by status: how far along the lifecycle each status is.
EXPECTED_TIER: dict[OrderStatus, int] = {
    S.INTENT: 0,  # local: journaled, not sent
    S.SUBMITTING: 1,  # local: POST sent, outcome unknown
    S.PENDING_REVIEW: 2,  # received, not yet working
    S.ACCEPTED: 2,
    S.PENDING_NEW: 2,
    S.ACCEPTED_FOR_BIDDING: 2,
    S.HELD: 2,
    S.NEW: 3,  # working at the venue
    S.PARTIALLY_FILLED: 4,  # working, with something happened since `new`
    S.DONE_FOR_DAY: 4,
    S.CALCULATED: 4,
    S.STOPPED: 4,
    S.SUSPENDED: 4,
    S.PENDING_CANCEL: 4,
    S.PENDING_REPLACE: 4,
    S.FILLED: 5,  # no more updates
    S.CANCELED: 5,
    S.EXPIRED: 5,
    S.REPLACED: 5,
    S.REJECTED: 5,
}
LOCAL = {S.INTENT, S.SUBMITTING}
TERMINAL = {S.FILLED, S.CANCELED, S.EXPIRED, S.REPLACED, S.REJECTED}
BROKER = [s for s in OrderStatus if s not in LOCAL]

# Venue quirks that override the tier rule (docs/alpaca.md §1.1, §1.2)
EXPECTED_QUIRKS: dict[tuple[OrderStatus, OrderStatus], Move] = {
    (S.REPLACED, S.CANCELED): Move.STALE,  # late cancel of a replaced id adds nothing
    (S.DONE_FOR_DAY, S.NEW): Move.LATERAL,  # a GTC order works again the next day
    (S.CALCULATED, S.NEW): Move.LATERAL,
    (S.PENDING_CANCEL, S.NEW): Move.LATERAL,  # order_cancel_rejected: back to working
    (S.PENDING_REPLACE, S.NEW): Move.LATERAL,  # order_replace_rejected: back to working
}


def expected_move(current: OrderStatus, observed: OrderStatus) -> Move:
    if (current, observed) in EXPECTED_QUIRKS:
        return EXPECTED_QUIRKS[(current, observed)]
    if current == observed:
        return Move.SAME
    if current in TERMINAL:
        # a terminal order never reopens; a *different* outcome is impossible, not a late duplicate
        return Move.INVALID if observed in TERMINAL else Move.STALE
    rank_now, rank_seen = EXPECTED_TIER[current], EXPECTED_TIER[observed]
    if rank_seen > rank_now:
        return Move.ADVANCE
    return Move.STALE if rank_seen < rank_now else Move.LATERAL


def test_the_expectation_covers_every_status() -> None:
    assert set(EXPECTED_TIER) == set(OrderStatus)
    assert {s for s in OrderStatus if s.is_terminal} == TERMINAL
    assert {s for s in OrderStatus if s.is_local} == LOCAL


def test_table_has_exactly_one_row_per_current_status_and_broker_status() -> None:
    assert set(TRANSITIONS) == {(c, o) for c in OrderStatus for o in BROKER}


@pytest.mark.parametrize(
    ("current", "observed"),
    [(c, o) for c in OrderStatus for o in BROKER],
    ids=lambda s: str(s),
)
def test_move_of_every_pair(current: OrderStatus, observed: OrderStatus) -> None:
    assert TRANSITIONS[(current, observed)] is expected_move(current, observed)
    assert next_move(current, observed) is expected_move(current, observed)


@pytest.mark.parametrize(
    ("current", "observed", "move"),
    [
        (S.SUBMITTING, S.ACCEPTED, Move.ADVANCE),
        (S.INTENT, S.FILLED, Move.ADVANCE),  # a fill can be the first thing we hear
        (S.PENDING_NEW, S.NEW, Move.ADVANCE),
        (S.NEW, S.PENDING_NEW, Move.STALE),  # a late pending_new after new
        (S.PARTIALLY_FILLED, S.NEW, Move.STALE),  # `new` never follows a fill
        (S.PARTIALLY_FILLED, S.PENDING_CANCEL, Move.LATERAL),
        (S.PENDING_CANCEL, S.PARTIALLY_FILLED, Move.LATERAL),  # a fill while the cancel is in flight
        (S.PENDING_CANCEL, S.CANCELED, Move.ADVANCE),
        (S.FILLED, S.FILLED, Move.SAME),
        (S.FILLED, S.NEW, Move.STALE),  # the duplicated `new` after `fill` seen in production
        (S.FILLED, S.PARTIALLY_FILLED, Move.STALE),
        (S.FILLED, S.CANCELED, Move.INVALID),
        (S.CANCELED, S.FILLED, Move.INVALID),
        (S.EXPIRED, S.CANCELED, Move.INVALID),
        (S.REJECTED, S.NEW, Move.STALE),
        (S.REPLACED, S.CANCELED, Move.STALE),
        (S.DONE_FOR_DAY, S.NEW, Move.LATERAL),
    ],
)
def test_known_alpaca_sequences(current: OrderStatus, observed: OrderStatus, move: Move) -> None:
    assert next_move(current, observed) is move


@pytest.mark.parametrize("observed", sorted(LOCAL))
def test_a_local_status_is_never_a_broker_observation(observed: OrderStatus) -> None:
    with pytest.raises(MalformedObservation, match=f"{observed} is not a broker status"):
        next_move(S.NEW, observed)


# -- local steps -----------------------------------------

LocalStep = Callable[[Order], Order]
LOCAL_STEPS: list[tuple[LocalStep, set[OrderStatus], OrderStatus]] = [
    (mark_submitting, {S.INTENT}, S.SUBMITTING),
    (settle_not_found, {S.SUBMITTING}, S.INTENT),
    (mark_refused, {S.INTENT, S.SUBMITTING}, S.REJECTED),
    (cancel_intent, {S.INTENT}, S.CANCELED),
]


@pytest.mark.parametrize(
    ("step", "allowed_from", "result"), LOCAL_STEPS, ids=lambda v: getattr(v, "__name__", "")
)
@pytest.mark.parametrize("status", list(OrderStatus), ids=str)
def test_local_steps_allowed_only_from_their_states(
    step: LocalStep, allowed_from: set[OrderStatus], result: OrderStatus, status: OrderStatus
) -> None:
    order = make_order(status=status)
    if status in allowed_from:
        after = step(order)
        assert after.status is result
        assert after.filled_qty == order.filled_qty
        assert after.client_order_id == order.client_order_id
    else:
        with pytest.raises(InvalidTransition) as raised:
            step(order)
        assert raised.value.current == status
        assert raised.value.observed == result
        assert f"{status} -> {result}" in str(raised.value)
        assert order.client_order_id in str(raised.value)
