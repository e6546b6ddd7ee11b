"""Applying broker observations: idempotent, monotonic, and loud about the impossible."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from ordersync.domain.errors import InvalidTransition, MalformedObservation, Overfill
from ordersync.domain.events import BrokerOrderView, Execution, OrderObserved, Source
from ordersync.domain.ids import ExecutionId
from ordersync.domain.lifecycle import Outcome, apply
from ordersync.domain.order import Order, OrderStatus
from ordersync.testing import T0, make_fill, make_order, make_view, observe

S = OrderStatus
TERMINAL = [S.FILLED, S.CANCELED, S.EXPIRED, S.REPLACED, S.REJECTED]
WORKING = [s for s in OrderStatus if not s.is_local and not s.is_terminal]


def live(status: OrderStatus = S.NEW, filled: int = 0, seconds: int = 10, qty: int = 10) -> Order:
    return make_order(
        qty=qty, status=status, filled_qty=filled, broker_updated_at=T0 + timedelta(seconds=seconds)
    )


# -- duplicates -----------------------------------------


def test_duplicated_fill_event_changes_nothing() -> None:
    order = live()
    fill = make_fill(order, 4, "99.50")
    once = apply(order, fill)
    twice = apply(once.order, fill)
    assert once.outcome is Outcome.APPLIED
    assert once.fill_delta == 4
    assert twice.outcome is Outcome.DUPLICATE
    assert twice.order == once.order
    assert twice.fill_delta == 0


def test_fill_replayed_after_the_terminal_event_is_a_duplicate() -> None:
    """The production log of docs/alpaca.md §7: fill, then new(dup), then fill(dup) with the same id."""
    order = live()
    fill = make_fill(order, 10)
    filled = apply(order, fill).order
    replayed_new = apply(filled, observe(order, S.NEW, 0, updated_at=T0 + timedelta(seconds=11)))
    replayed_fill = apply(replayed_new.order, fill)
    assert replayed_new.outcome is Outcome.STALE
    assert replayed_fill.outcome is Outcome.DUPLICATE
    assert replayed_fill.order == filled
    assert filled.status is S.FILLED


def test_same_status_event_twice_is_a_duplicate() -> None:
    order = make_order(status=S.SUBMITTING)
    event = observe(order, S.NEW, 0)
    first = apply(order, event)
    second = apply(first.order, event)
    assert first.outcome is Outcome.APPLIED
    assert second.outcome is Outcome.DUPLICATE
    assert second.order == first.order


# -- stale snapshots never roll back -----------------------------------------


def test_snapshot_with_lower_filled_qty_never_rolls_back() -> None:
    order = live(S.PARTIALLY_FILLED, filled=6, seconds=20)
    stale = observe(order, S.PARTIALLY_FILLED, 2, source=Source.POLL, updated_at=T0 + timedelta(seconds=5))
    result = apply(order, stale)
    assert not result.changed
    assert result.outcome in (Outcome.STALE, Outcome.DUPLICATE)
    assert result.order == order


def test_snapshot_of_an_earlier_status_is_stale() -> None:
    order = live(S.PARTIALLY_FILLED, filled=6, seconds=20)
    result = apply(order, observe(order, S.NEW, 0, source=Source.POLL, updated_at=T0 + timedelta(seconds=30)))
    assert result.outcome is Outcome.STALE
    assert result.order == order


def test_lateral_snapshot_older_than_what_we_know_is_stale() -> None:
    order = live(S.PENDING_CANCEL, filled=3, seconds=20)
    older = observe(order, S.PARTIALLY_FILLED, 3, source=Source.POLL, updated_at=T0 + timedelta(seconds=19))
    result = apply(order, older)
    assert result.outcome is Outcome.STALE
    assert result.order == order


def test_lateral_snapshot_newer_than_what_we_know_is_taken() -> None:
    """A fill while the cancel was in flight: the cancel failed, the order works on."""
    order = live(S.PENDING_CANCEL, filled=3, seconds=20)
    newer = observe(order, S.PARTIALLY_FILLED, 5, updated_at=T0 + timedelta(seconds=21))
    result = apply(order, newer)
    assert result.outcome is Outcome.APPLIED
    assert result.order.status is S.PARTIALLY_FILLED
    assert result.order.filled_qty == 5
    assert result.fill_delta == 2


def test_rejected_cancel_returns_to_new_when_newer() -> None:
    order = live(S.PENDING_CANCEL, filled=0, seconds=20)
    result = apply(order, observe(order, S.NEW, 0, updated_at=T0 + timedelta(seconds=25)))
    assert result.outcome is Outcome.APPLIED
    assert result.order.status is S.NEW


def test_late_pending_cancel_does_not_undo_a_newer_cancel_reject() -> None:
    """pending_cancel (t=20) -> new (t=25, cancel rejected); the pending_cancel snapshot arrives again late.

    It is older than the state we hold, so it must be stale: the order is working, no cancel is in flight.
    """
    order = live(S.PENDING_CANCEL, filled=0, seconds=20)
    late = observe(order, S.PENDING_CANCEL, 0, source=Source.POLL, updated_at=T0 + timedelta(seconds=20))
    working = apply(order, observe(order, S.NEW, 0, updated_at=T0 + timedelta(seconds=25))).order
    result = apply(working, late)
    assert result.order.status is S.NEW, "an older snapshot rolled the status back"
    assert result.outcome is Outcome.STALE


def test_gtc_order_done_for_the_day_works_again_next_day() -> None:
    order = live(S.DONE_FOR_DAY, filled=0, seconds=20)
    result = apply(order, observe(order, S.NEW, 0, updated_at=T0 + timedelta(days=1)))
    assert result.order.status is S.NEW
    assert not result.order.is_terminal


# -- terminal orders -----------------------------------------


@pytest.mark.parametrize("terminal", TERMINAL, ids=str)
@pytest.mark.parametrize("later", WORKING, ids=str)
def test_terminal_order_never_reopens(terminal: OrderStatus, later: OrderStatus) -> None:
    filled = 10 if terminal is S.FILLED else 0
    order = live(terminal, filled=filled, seconds=20)
    result = apply(order, observe(order, later, filled, updated_at=T0 + timedelta(seconds=60)))
    assert result.outcome is Outcome.STALE
    assert result.order == order


def test_filled_then_canceled_is_reported_and_state_kept() -> None:
    order = live(S.FILLED, filled=10, seconds=20)
    result = apply(order, observe(order, S.CANCELED, 10, updated_at=T0 + timedelta(seconds=30)))
    assert result.outcome is Outcome.INVALID
    assert isinstance(result.error, InvalidTransition)
    assert "filled -> canceled" in str(result.error)
    assert order.client_order_id in str(result.error)
    assert result.order == order


@pytest.mark.parametrize(
    ("status", "event"), [(S.FILLED, "fill"), (S.PARTIALLY_FILLED, "partial_fill")], ids=str
)
def test_fill_after_canceled_keeps_the_shares_and_reports_the_transition(
    status: OrderStatus, event: str
) -> None:
    """canceled with 3 filled, then a fill event saying 5 (or 10): the shares are real, the order stays
    canceled (it will not work again), and the contradiction is reported."""
    order = live(S.CANCELED, filled=3, seconds=20)
    filled = 10 if status is S.FILLED else 5
    late = observe(
        order, status, filled, event=event, execution_id="x-late", updated_at=T0 + timedelta(seconds=30)
    )
    result = apply(order, late)
    assert result.order.filled_qty == filled
    assert result.fill_delta == filled - 3
    assert result.order.status is S.CANCELED
    assert "x-late" in result.order.execution_ids
    assert result.changed
    assert isinstance(result.error, InvalidTransition), "a fill on a terminal order must be reported"
    assert "canceled ->" in str(result.error)


def test_replaced_then_canceled_is_stale_not_invalid() -> None:
    order = live(S.REPLACED, seconds=20)
    result = apply(order, observe(order, S.CANCELED, 0, updated_at=T0 + timedelta(seconds=30)))
    assert result.outcome is Outcome.STALE
    assert result.error is None


# -- bad observations are reported -----------------------------------------


def test_overfill_is_reported_and_not_applied() -> None:
    order = live(S.PARTIALLY_FILLED, filled=4)
    result = apply(order, observe(order, S.FILLED, 11, execution_id="x-over", exec_qty=7))
    assert result.outcome is Outcome.INVALID
    assert isinstance(result.error, Overfill)
    assert "filled 11 of 10" in str(result.error)
    assert result.order == order


def test_observation_of_another_client_order_id_is_reported() -> None:
    order = live()
    view = make_view(order, status=S.PARTIALLY_FILLED, filled_qty=2, client_order_id="someone-else")
    result = apply(order, OrderObserved(view, Source.STREAM, view.updated_at, view.updated_at))
    assert result.outcome is Outcome.INVALID
    assert isinstance(result.error, InvalidTransition)
    assert "someone-else" in str(result.error)
    assert result.order == order


def test_observation_of_another_broker_order_id_is_reported() -> None:
    order = live()
    view = make_view(order, status=S.FILLED, filled_qty=10, broker_order_id="brk-other")
    result = apply(order, OrderObserved(view, Source.POLL, view.updated_at, view.updated_at))
    assert result.outcome is Outcome.INVALID
    assert "brk-other" in str(result.error)
    assert result.order == order


def test_first_broker_observation_adopts_the_broker_id() -> None:
    order = make_order(status=S.SUBMITTING)
    result = apply(order, observe(order, S.ACCEPTED, 0, source=Source.SUBMIT))
    assert result.order.status is S.ACCEPTED
    assert result.order.broker_order_id == "brk-ord-1"


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda o: observe(o, S.NEW, -1), id="negative filled_qty"),
        pytest.param(lambda o: observe(o, S.NEW, 0, updated_at=T0.replace(tzinfo=None)), id="naive time"),
        pytest.param(
            lambda o: observe(o, S.PARTIALLY_FILLED, 2, execution_id="x", exec_qty=0), id="zero execution"
        ),
        pytest.param(lambda o: OrderObserved(_view(o, qty=Decimal(0)), Source.POLL, T0, T0), id="zero qty"),
        pytest.param(lambda o: apply(o, observe(o, S.SUBMITTING, 0)), id="local status"),
    ],
)
def test_malformed_observation_gets_a_clear_error(build: object) -> None:
    order = live()
    with pytest.raises(MalformedObservation, match=r"\S"):
        build(order)  # type: ignore[operator]


def _view(order: Order, qty: Decimal) -> BrokerOrderView:
    return replace(make_view(order), qty=qty)


# -- fill arithmetic -----------------------------------------


def test_fill_deltas_and_average_across_partial_fills() -> None:
    order = live(qty=10)
    deltas = []
    for qty, price in [(3, "100.00"), (4, "101.00"), (3, "102.00")]:
        result = apply(order, make_fill(order, qty, price))
        deltas.append(result.fill_delta)
        order = result.order
    assert deltas == [3, 4, 3]
    assert order.status is S.FILLED
    assert order.filled_qty == 10
    assert order.leaves_qty == 0
    assert (
        order.filled_avg_price
        == Decimal("100.00") * 3 / 10 + Decimal("101.00") * 4 / 10 + Decimal("102.00") * 3 / 10
    )
    assert len(order.execution_ids) == 3


def test_fill_delta_is_cumulative_minus_known_when_a_fill_event_was_missed() -> None:
    """The stream dropped the first partial fill; the next event's cumulative filled_qty still counts it."""
    order = live(qty=10)
    result = apply(order, observe(order, S.PARTIALLY_FILLED, 7, execution_id="x2", exec_qty=4))
    assert result.fill_delta == 7
    assert result.order.filled_qty == 7
    assert result.order.leaves_qty == 3


def test_late_fill_event_below_the_known_cumulative_records_its_execution_only() -> None:
    order = live(S.PARTIALLY_FILLED, filled=7, seconds=20)
    late = observe(
        order, S.PARTIALLY_FILLED, 3, execution_id="x1", exec_qty=3, updated_at=T0 + timedelta(seconds=5)
    )
    result = apply(order, late)
    assert result.order.filled_qty == 7
    assert result.fill_delta == 0
    assert result.order.status is S.PARTIALLY_FILLED
    assert apply(result.order, late).outcome is Outcome.DUPLICATE


def test_execution_ids_are_remembered_per_order() -> None:
    order = live(qty=10)
    event = OrderObserved(
        make_view(order, status=S.PARTIALLY_FILLED, filled_qty=2),
        Source.STREAM,
        T0,
        T0,
        event="partial_fill",
        execution=Execution(ExecutionId("e-1"), Decimal(2), Decimal("100")),
    )
    after = apply(order, event).order
    assert after.execution_ids == frozenset({"e-1"})


def test_an_applied_fill_keeps_every_field_it_does_not_change() -> None:
    """``apply`` builds the new order field by field: a field it forgot would come back as its default."""
    from dataclasses import fields

    from ordersync.domain.order import OrderRole

    order = replace(
        live(),
        role=OrderRole.STOP_LOSS,
        parent_id="parent-1",
        group_id="group-1",
        limit_price=Decimal("9.5"),
        stop_price=Decimal("9.75"),
        stop_limit_price=Decimal("9.25"),
        trail_price=Decimal("0.5"),
        trail_percent=Decimal("1.5"),
        leg_ids=("leg-1",),
        version=7,
    )
    changed = {"status", "filled_qty", "filled_avg_price", "broker_updated_at", "execution_ids"}
    result = apply(order, make_fill(order, 4, "99.50"))
    assert result.outcome is Outcome.APPLIED
    for f in fields(Order):
        if f.name not in changed:
            assert getattr(result.order, f.name) == getattr(order, f.name), f.name
    assert {
        f.name for f in fields(Order) if getattr(result.order, f.name) != getattr(order, f.name)
    } == changed
