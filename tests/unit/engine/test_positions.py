"""The position a fill event stated (engine/positions.py): usable only while it provably is the account's."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from ordersync.domain.events import BrokerOrderView, Execution, OrderObserved, Source
from ordersync.domain.ids import BrokerOrderId, ClientOrderId, ExecutionId, Symbol
from ordersync.domain.order import OrderStatus
from ordersync.engine.positions import MAX_AGE_S, PositionEvidence
from ordersync.testing import FakeClock

AAPL = Symbol("AAPL")


def fill(at: datetime, position: Decimal | None, source: Source = Source.STREAM) -> OrderObserved:
    view = BrokerOrderView(
        BrokerOrderId("b-1"),
        ClientOrderId("p1"),
        AAPL,
        OrderStatus.PARTIALLY_FILLED,
        Decimal(10),
        Decimal(4),
        Decimal(100),
        at,
    )
    execution = Execution(ExecutionId(f"e-{at.timestamp()}"), Decimal(4), Decimal(100), position)
    return OrderObserved(view, source, at, at, "partial_fill", execution)


def test_a_streamed_position_equal_to_our_book_is_usable_until_our_book_moves() -> None:
    now = FakeClock().now()
    kept = PositionEvidence()
    kept.note(fill(now, Decimal(4)), {AAPL: Decimal(4)}, now)

    assert kept.usable(AAPL, {AAPL: Decimal(4)}, now) == Decimal(4)
    assert kept.usable(AAPL, {AAPL: Decimal(7)}, now) is None, "a fill of ours learned another way"
    assert kept.usable(AAPL, None, now) is None, "the book is being re-read (a reconciliation)"


def test_a_position_with_others_shares_in_it_is_never_used() -> None:
    now = FakeClock().now()
    kept = PositionEvidence()
    kept.note(fill(now, Decimal(9)), {AAPL: Decimal(4)}, now)

    assert kept.usable(AAPL, {AAPL: Decimal(4)}, now) is None


def test_a_late_older_event_never_replaces_a_newer_position() -> None:
    now = FakeClock().now()
    kept = PositionEvidence()
    kept.note(fill(now, Decimal(7)), {AAPL: Decimal(7)}, now)
    kept.note(fill(now - timedelta(seconds=1), Decimal(4)), {AAPL: Decimal(7)}, now)

    assert kept.usable(AAPL, {AAPL: Decimal(7)}, now) == Decimal(7)


def test_polled_fills_missing_positions_a_dropped_stream_and_age_leave_nothing_usable() -> None:
    now = FakeClock().now()
    book = {AAPL: Decimal(4)}
    polled, bare, dropped, aged = (PositionEvidence() for _ in range(4))
    polled.note(fill(now, Decimal(4), Source.POLL), book, now)
    bare.note(fill(now, None), book, now)
    dropped.note(fill(now, Decimal(4)), book, now)
    dropped.forget()
    aged.note(fill(now, Decimal(4)), book, now)

    assert polled.usable(AAPL, book, now) is None
    assert bare.usable(AAPL, book, now) is None
    assert dropped.usable(AAPL, book, now) is None
    assert aged.usable(AAPL, book, now + timedelta(seconds=MAX_AGE_S)) == Decimal(4)
    assert aged.usable(AAPL, book, now + timedelta(seconds=MAX_AGE_S + 1)) is None
