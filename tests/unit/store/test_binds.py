"""The store's own SQLite datetime binding writes the very text SQLAlchemy's DATETIME writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.dialects import postgresql, sqlite

from ordersync.store import tables as t
from ordersync.store.statements import bind_processor

DIALECT = sqlite.dialect()
SQLALCHEMY = t.UtcDateTime().dialect_impl(DIALECT).bind_processor(DIALECT)
OURS = bind_processor(t.UtcDateTime(), DIALECT)

TIMES = [
    datetime(2025, 10, 10, 14, 30, tzinfo=UTC),
    datetime(2025, 10, 10, 14, 30, 0, 1, tzinfo=UTC),
    datetime(2025, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(2025, 10, 10, 10, 30, 0, 500000, tzinfo=timezone(timedelta(hours=-4))),
    datetime(2026, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    datetime(2025, 3, 1, 0, 0, tzinfo=timezone(timedelta(0), "Z")),  # a zero offset, not the UTC object
    datetime(1, 1, 1, 0, 0, tzinfo=timezone(timedelta(hours=-1))).astimezone(UTC),
    None,
]


@pytest.mark.parametrize("value", TIMES)
def test_a_datetime_binds_as_sqlalchemy_binds_it(value: datetime | None) -> None:
    assert OURS is not SQLALCHEMY
    assert OURS(value) == SQLALCHEMY(value)


def test_a_naive_datetime_is_refused_as_before() -> None:
    naive = datetime(2025, 10, 10, 14, 30)  # noqa: DTZ001 - the point of the test
    with pytest.raises(ValueError, match="naive"):
        SQLALCHEMY(naive)
    with pytest.raises(ValueError, match="naive"):
        OURS(naive)


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.dialect()], ids=["sqlite", "postgresql"])
@pytest.mark.parametrize("value", [Decimal("12.50"), Decimal("1E+2"), Decimal("-0.000001"), Decimal(0), None])
def test_a_decimal_binds_as_sqlalchemy_binds_it(dialect: Any, value: Decimal | None) -> None:
    sqlalchemy = t.DecimalText().dialect_impl(dialect).bind_processor(dialect)
    ours = bind_processor(t.DecimalText(), dialect)
    assert ours is not None
    assert sqlalchemy is not None
    assert ours(value) == sqlalchemy(value)
