"""Hypothesis: a true broker history, delivered duplicated, reordered and mixed with stale polls.

The stream duplicates events (even after a terminal one), has no ordering guarantee, and polls race it
(docs/alpaca.md §7). Whatever the delivery, the order must converge to the broker's truth and
never move backwards.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from ordersync.domain.events import BrokerOrderView, Execution, OrderObserved, Source
from ordersync.domain.ids import BrokerOrderId, ClientOrderId, ExecutionId, Symbol
from ordersync.domain.lifecycle import TIER, Outcome, apply
from ordersync.domain.order import Order, OrderStatus
from ordersync.testing import T0, make_order

S = OrderStatus
EXAMPLES = settings(max_examples=500, deadline=None)
# the table's rows that move to a lower tier on purpose (a later, not an older, observation)
DOWNWARD_QUIRKS = {
    (S.DONE_FOR_DAY, S.NEW),
    (S.CALCULATED, S.NEW),
    (S.PENDING_CANCEL, S.NEW),
    (S.PENDING_REPLACE, S.NEW),
}


@dataclass(frozen=True)
class History:
    order: Order  # the local order before the broker said anything
    truth: tuple[OrderObserved, ...]  # what happened at the broker, in order (events carry executions)


def _working(filled: int) -> OrderStatus:
    return S.PARTIALLY_FILLED if filled else S.NEW


@st.composite
def histories(draw: st.DrawFn) -> History:
    """Draw one order's true life at Alpaca: acknowledgements, partial fills, cancel/replace attempts
    (some rejected), day ends, and possibly a terminal outcome. filled_qty and updated_at only grow."""
    qty = draw(st.integers(1, 12))
    order = make_order("h-1", qty=qty, status=S.SUBMITTING)
    steps: list[tuple[OrderStatus, int, int]] = []  # (status, cumulative filled, execution qty)
    filled = 0
    for ack in draw(st.lists(st.sampled_from([S.ACCEPTED, S.PENDING_NEW, S.HELD]), max_size=2, unique=True)):
        steps.append((ack, 0, 0))
    steps.append((draw(st.sampled_from([S.NEW] * 9 + [S.REJECTED])), 0, 0))
    status = steps[-1][0]
    if status is S.NEW and draw(st.booleans()):
        # a rejected cancel/replace, or the next trading day, before any fill: back *down* to `new`
        steps += [
            (draw(st.sampled_from([S.PENDING_CANCEL, S.PENDING_REPLACE, S.DONE_FOR_DAY])), 0, 0),
            (S.NEW, 0, 0),
        ]
    for _ in range(draw(st.integers(0, 10))):
        if status.is_terminal:
            break
        # cancel/replace attempts first and twice: their rejections are the rows that move a tier down
        moves = ["pending_cancel", "pending_replace", "done_for_day", "pending_cancel", "fill_all"]
        moves += ["partial"] * 2 * (qty - filled >= 2) + ["cancel", "expire"]
        if status in (S.PENDING_CANCEL, S.PENDING_REPLACE, S.DONE_FOR_DAY):
            moves = ["back_to_work", "fill_all", "partial" if qty - filled >= 2 else "fill_all"]
            moves.append("cancel" if status is S.PENDING_CANCEL else "replace")
        move = draw(st.sampled_from(moves))
        if move == "partial":
            k = draw(st.integers(1, qty - filled - 1))
            filled += k
            status = S.PARTIALLY_FILLED
            steps.append((status, filled, k))
        elif move == "fill_all":
            k, filled, status = qty - filled, qty, S.FILLED
            steps.append((status, filled, k))
        else:
            status = {
                "cancel": S.CANCELED,
                "expire": S.EXPIRED,
                "replace": S.REPLACED,
                "pending_cancel": S.PENDING_CANCEL,
                "pending_replace": S.PENDING_REPLACE,
                "done_for_day": S.DONE_FOR_DAY,
                "back_to_work": _working(filled),  # cancel/replace rejected, or the next trading day
            }[move]
            steps.append((status, filled, 0))
    truth = tuple(_observation(order, i, *step) for i, step in enumerate(steps))
    return History(order, truth)


def _observation(order: Order, index: int, status: OrderStatus, filled: int, exec_qty: int) -> OrderObserved:
    view = BrokerOrderView(
        broker_order_id=BrokerOrderId("brk-h-1"),
        client_order_id=ClientOrderId(order.client_order_id),
        symbol=Symbol("AAPL"),
        status=status,
        qty=order.qty,
        filled_qty=Decimal(filled),
        filled_avg_price=Decimal("100.00") if filled else None,
        updated_at=T0 + timedelta(seconds=index + 1),
    )
    execution = None
    if exec_qty:
        execution = Execution(ExecutionId(f"exec-{index}"), Decimal(exec_qty), Decimal("100.00"))
    event = ("fill" if status is S.FILLED else "partial_fill") if execution else status.value
    return OrderObserved(view, Source.STREAM, view.updated_at, view.updated_at, event, execution)


@st.composite
def deliveries(draw: st.DrawFn, keep_last: bool = True) -> tuple[History, list[OrderObserved]]:
    """A history and what ordersync receives: a subset of the truth (the last event always, when asked),
    duplicated, shuffled, with stale polls (snapshots without the execution) mixed in."""
    history = draw(histories())
    truth = list(history.truth)
    received = [obs for obs in truth[:-1] if draw(st.integers(0, 3)) > 0] + (truth[-1:] if keep_last else [])
    received += [draw(st.sampled_from(truth)) for _ in range(draw(st.integers(0, 8)))]  # duplicates
    for _ in range(draw(st.integers(0, 6))):
        polled = draw(st.sampled_from(truth))
        received.append(replace(polled, source=Source.POLL, event=None, execution=None))
    return history, draw(st.permutations(received))


def _replay(
    order: Order, observations: list[OrderObserved]
) -> list[tuple[Order, OrderObserved, Order, Outcome]]:
    steps = []
    for obs in observations:
        result = apply(order, obs)
        steps.append((order, obs, result.order, result.outcome))
        order = result.order
    return steps


def _final(history: History, observations: list[OrderObserved]) -> Order:
    steps = _replay(history.order, observations)
    return steps[-1][2] if steps else history.order


@EXAMPLES
@given(deliveries())
def test_final_filled_qty_is_the_true_maximum(case: tuple[History, list[OrderObserved]]) -> None:
    history, received = case
    assert _final(history, received).filled_qty == max(o.order.filled_qty for o in history.truth)


@EXAMPLES
@given(deliveries())
def test_filled_qty_never_decreases_and_execution_ids_are_kept(
    case: tuple[History, list[OrderObserved]],
) -> None:
    history, received = case
    for before, _obs, after, _outcome in _replay(history.order, received):
        assert after.filled_qty >= before.filled_qty
        assert after.execution_ids >= before.execution_ids
        assert after.filled_qty <= after.qty


@EXAMPLES
@given(deliveries(keep_last=False))
def test_status_never_moves_to_a_lower_tier_except_by_a_newer_quirk_row(
    case: tuple[History, list[OrderObserved]],
) -> None:
    history, received = case
    for before, obs, after, _outcome in _replay(history.order, received):
        if TIER[after.status] < TIER[before.status]:
            assert (before.status, after.status) in DOWNWARD_QUIRKS
            assert before.broker_updated_at is not None
            assert obs.order.updated_at >= before.broker_updated_at


@EXAMPLES
@given(deliveries(keep_last=False))
def test_status_only_changes_on_an_observation_not_older_than_the_known_state(
    case: tuple[History, list[OrderObserved]],
) -> None:
    """A stale snapshot (older updated_at) never rolls the status back, whatever the tiers say."""
    history, received = case
    for before, obs, after, _outcome in _replay(history.order, received):
        if after.status != before.status and before.broker_updated_at is not None:
            assert obs.order.updated_at >= before.broker_updated_at, (
                f"{before.status} -> {after.status} taken from a snapshot of "
                f"{obs.order.updated_at:%S}s, older than the known {before.broker_updated_at:%S}s"
            )


@EXAMPLES
@given(deliveries(keep_last=False))
def test_any_observation_applied_twice_in_a_row_changes_nothing_the_second_time(
    case: tuple[History, list[OrderObserved]],
) -> None:
    history, received = case
    order = history.order
    for obs in received:
        order = apply(order, obs).order
        again = apply(order, obs)
        assert again.outcome in (Outcome.DUPLICATE, Outcome.STALE)
        assert again.order == order
        assert again.fill_delta == 0


@EXAMPLES
@given(deliveries(keep_last=False))
def test_once_terminal_the_status_never_changes(case: tuple[History, list[OrderObserved]]) -> None:
    history, received = case
    terminal: OrderStatus | None = None
    for _before, _obs, after, outcome in _replay(history.order, received):
        assert outcome is not Outcome.INVALID  # one true history never contradicts itself
        if terminal is not None:
            assert after.status is terminal
        elif after.is_terminal:
            terminal = after.status


@EXAMPLES
@given(deliveries())
def test_final_status_is_the_true_final_status_when_the_last_event_arrives(
    case: tuple[History, list[OrderObserved]],
) -> None:
    history, received = case
    final = _final(history, received)
    assert final.status is history.truth[-1].order.status
    assert final.broker_order_id == "brk-h-1"
