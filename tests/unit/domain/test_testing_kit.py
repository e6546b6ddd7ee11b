"""The shipped test kit (ordersync.testing): the fakes other tests lean on must behave as documented."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from ordersync.domain.lifecycle import Outcome, apply
from ordersync.domain.order import OrderStatus
from ordersync.testing import T0, FakeClock, make_fill, make_order, observe


def test_fake_clock_is_utc_settable_and_only_moves_forward_when_advanced() -> None:
    clock = FakeClock()
    assert clock.now() == T0
    assert clock.now().utcoffset() == timedelta(0)
    assert clock.advance(1.5) == T0 + timedelta(seconds=1.5)
    clock.set(datetime(2026, 1, 5, 12, 0, tzinfo=timezone(timedelta(hours=-5))))
    assert clock.now() == datetime(2026, 1, 5, 17, 0, tzinfo=UTC)
    assert clock.now().tzinfo is UTC
    with pytest.raises(ValueError, match="naive"):
        clock.set(datetime(2026, 1, 5, 12, 0))  # noqa: DTZ001 - the point of the test
    with pytest.raises(ValueError, match="non-negative"):
        clock.advance(-1)


async def test_fake_clock_sleep_advances_virtual_time_at_once() -> None:
    clock = FakeClock()
    await clock.sleep(3600)
    assert clock.now() == T0 + timedelta(hours=1)


def test_make_fill_builds_the_next_execution_with_the_cumulative_average() -> None:
    order = make_order(qty=10, status=OrderStatus.NEW)
    first = make_fill(order, 4, "100")
    assert first == make_fill(order, 4, "100"), "the same fill built twice must be the same duplicated event"
    assert first.event == "partial_fill"
    after = apply(order, first).order
    second = make_fill(after, 6, "110")
    assert second.event == "fill"
    assert second.order.filled_avg_price == Decimal("106")
    assert second.execution is not None
    assert first.execution is not None
    assert second.execution.execution_id != first.execution.execution_id
    assert apply(after, second).order.status is OrderStatus.FILLED


def test_observe_defaults_follow_the_order() -> None:
    order = make_order(qty=10, status=OrderStatus.PARTIALLY_FILLED, filled_qty=3, broker_updated_at=T0)
    obs = observe(order, OrderStatus.PARTIALLY_FILLED, 5, execution_id="e-2")
    assert obs.order.updated_at == T0 + timedelta(seconds=1)
    assert obs.execution is not None
    assert obs.execution.qty == 2
    assert obs.event == "partial_fill"
    assert apply(order, obs).outcome is Outcome.APPLIED
    with pytest.raises(ValueError, match="give exec_qty"):
        observe(order, OrderStatus.PARTIALLY_FILLED, 3, execution_id="e-3")


def test_make_order_places_a_known_order_at_the_broker() -> None:
    order = make_order("abc", status=OrderStatus.FILLED, filled_qty=10, qty=10)
    assert order.broker_order_id == "brk-abc"
    assert order.filled_avg_price == Decimal("100.00")
    assert make_order("local").broker_order_id is None
