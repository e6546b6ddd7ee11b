"""A buffered save sends the columns whose stored value changed: ``changed_row`` (which maps only the
fields that are not the very objects of the order it was read as) against the whole row compared column
by column, as the store did before."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from ordersync.domain.order import Order, OrderStatus
from ordersync.store.known import Known, changed_row
from ordersync.store.mapping import order_to_row
from ordersync.testing import T0, make_order


def _reference(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    changed = ["version"]
    for key, value in after.items():
        old = before.get(key)
        if value is old or (
            type(value) is type(old)
            and value == old
            and (type(value) is not Decimal or value.as_tuple() == old.as_tuple())
        ):
            continue
        changed.append(key)
    return changed


BASE = make_order(status=OrderStatus.NEW, broker_order_id="b-1", broker_updated_at=T0, limit_price="12.5")

CASES = {
    "nothing": lambda o: replace(o),
    "a fill": lambda o: replace(o, filled_qty=Decimal(4), filled_avg_price=Decimal("12.5")),
    "terminal (is_open flips)": lambda o: replace(o, status=OrderStatus.FILLED, filled_qty=o.qty),
    "same status, another object": lambda o: replace(o, status=OrderStatus("new")),
    "same digits, another exponent": lambda o: replace(o, limit_price=Decimal("12.50")),
    "equal Decimal, new object": lambda o: replace(o, limit_price=Decimal("12.5")),
    "same instant, another zone": lambda o: replace(
        o, broker_updated_at=T0.astimezone(timezone(timedelta(hours=-4)))
    ),
    "a later instant": lambda o: replace(o, broker_updated_at=T0 + timedelta(seconds=1)),
    "legs named": lambda o: replace(o, leg_ids=("leg-1", "leg-2")),
    "executions only": lambda o: replace(o, execution_ids=frozenset({"e-1"})),
}


@pytest.mark.parametrize("change", list(CASES), ids=list(CASES))
def test_changed_row_finds_what_the_whole_row_comparison_finds(change: str) -> None:
    row = order_to_row(BASE)
    known = Known(BASE, BASE.version, BASE.execution_ids, row)
    after: Order = CASES[change](BASE)
    new_row, changed = changed_row(known, after)
    expected = order_to_row(after)
    assert sorted(changed) == sorted(_reference(row, expected))
    assert {k: v for k, v in new_row.items() if k != "version"} == {
        k: v for k, v in expected.items() if k != "version"
    }
    assert known.row == row == order_to_row(BASE)  # the known row (maybe the store's kept one) is left as is


def test_as_stored_copies_every_field_with_the_new_version_executions_and_utc_times() -> None:
    """``as_stored`` builds the copy field by field: a field it forgot would come back as its default."""
    from dataclasses import fields

    from ordersync.domain.order import OrderRole
    from ordersync.store.known import as_stored

    eastern = timezone(timedelta(hours=-4))
    order = replace(
        BASE,
        role=OrderRole.STOP_LOSS,
        parent_id="parent-1",
        group_id="group-1",
        stop_price=Decimal("9.75"),
        stop_limit_price=Decimal("9.25"),
        trail_price=Decimal("0.5"),
        trail_percent=Decimal("1.5"),
        leg_ids=("leg-1",),
        filled_qty=Decimal(3),
        filled_avg_price=Decimal("12.25"),
        created_at=T0.astimezone(eastern),
        broker_updated_at=T0.astimezone(eastern),
        version=7,
    )
    assert as_stored(order, 7, order.execution_ids) is not order  # the times are put in UTC
    copy = as_stored(order, 8, frozenset({"e-1"}))
    changed = {"version": 8, "execution_ids": frozenset({"e-1"}), "created_at": T0, "broker_updated_at": T0}
    for f in fields(Order):
        expected = changed.get(f.name, getattr(order, f.name))
        assert getattr(copy, f.name) == expected, f.name
    assert copy.created_at.tzinfo is UTC
    assert copy.broker_updated_at is not None
    assert copy.broker_updated_at.tzinfo is UTC
    assert as_stored(copy, 8, copy.execution_ids) is copy  # nothing to change: the same object
