"""Table definitions (SQLAlchemy Core) and the column types that keep Decimal and UTC exact.

Quantities and prices are stored as text: SQLite has no exact decimal type and a float column would
round them; text round-trips every Decimal exactly on both databases.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    false,
)


class DecimalText(TypeDecorator[Decimal]):
    """A Decimal stored as its exact text."""

    impl = String(40)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> str | None:
        return None if value is None else str(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite drops the zone; we put it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} refused: ordersync stores UTC only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

orders = Table(
    "orders",
    metadata,
    Column("client_order_id", String(128), primary_key=True),
    Column("broker_order_id", String(64), unique=True, nullable=True),
    Column("parent_id", String(128), nullable=True, index=True),
    Column("group_id", String(128), nullable=True, index=True),
    Column("role", String(8), nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("side", String(4), nullable=False),
    Column("type", String(16), nullable=False),
    Column("time_in_force", String(4), nullable=False),
    Column("qty", DecimalText(), nullable=False),
    Column("limit_price", DecimalText(), nullable=True),
    Column("stop_price", DecimalText(), nullable=True),
    Column("stop_limit_price", DecimalText(), nullable=True),
    Column("trail_price", DecimalText(), nullable=True),
    Column("trail_percent", DecimalText(), nullable=True),
    Column("status", String(24), nullable=False),
    Column("filled_qty", DecimalText(), nullable=False),
    Column("filled_avg_price", DecimalText(), nullable=True),
    Column("broker_updated_at", UtcDateTime(), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("leg_ids", JSON(), nullable=False),
    Column("is_open", Boolean(), nullable=False),
    Column("version", Integer(), nullable=False),
)
Index("ix_orders_open", orders.c.is_open)
# a release pass reads one symbol's open orders (migration 0006)
Index("ix_orders_symbol_open", orders.c.symbol, orders.c.is_open)

fills = Table(
    "fills",
    metadata,
    # the unique key that makes a duplicated execution a no-op even if the domain check were bypassed
    Column("execution_id", String(64), primary_key=True),
    Column("client_order_id", String(128), nullable=False, index=True),
    Column("qty", DecimalText(), nullable=False),
    Column("price", DecimalText(), nullable=False),
    Column("ts", UtcDateTime(), nullable=False),
)

plans = Table(
    "plans",
    metadata,
    Column("parent_id", String(128), primary_key=True),
    Column("tp_price", DecimalText(), nullable=True),
    Column("tp_offset", DecimalText(), nullable=True),
    Column("sl_price", DecimalText(), nullable=True),
    Column("sl_offset", DecimalText(), nullable=True),
    Column("sl_limit_price", DecimalText(), nullable=True),
    Column("sl_limit_offset", DecimalText(), nullable=True),
    Column("trail_price", DecimalText(), nullable=True),
    Column("trail_percent", DecimalText(), nullable=True),
    Column("policy", String(16), nullable=False),
    Column("release_failures", Integer(), nullable=False),
    Column("next_release_at", UtcDateTime(), nullable=True),
    Column("done", Boolean(), nullable=False, index=True),
    Column("closing", Boolean(), nullable=False, server_default=false()),
    Column("replaced_at", UtcDateTime(), nullable=True),
    Column("native", Boolean(), nullable=False, server_default=false()),
)

journal = Table(
    "journal",
    metadata,
    Column("seq", Integer(), primary_key=True, autoincrement=True),
    Column("ts", UtcDateTime(), nullable=False),
    Column("kind", String(48), nullable=False, index=True),
    Column("client_order_id", String(128), nullable=True, index=True),
    Column("payload", Text(), nullable=False),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer(), primary_key=True, autoincrement=True),
    Column("kind", String(48), nullable=False),
    Column("key", String(160), nullable=False),
    Column("message", Text(), nullable=False),
    Column("raised_at", UtcDateTime(), nullable=False),
    Column("resolved_at", UtcDateTime(), nullable=True),
)
Index("ix_alerts_open", alerts.c.kind, alerts.c.key, alerts.c.resolved_at)

cursors = Table(
    "cursors",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text(), nullable=False),
)

# one row per lease: the holder, its expiry in database time, and the fencing token (store/lease.py)
leases = Table(
    "leases",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("token", BigInteger(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
)
