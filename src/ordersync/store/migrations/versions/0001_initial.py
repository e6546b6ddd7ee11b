"""Initial schema: orders, fills, plans, journal, alerts, cursors.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ordersync.store.tables import DecimalText, UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("client_order_id", sa.String(128), primary_key=True),
        sa.Column("broker_order_id", sa.String(64), unique=True, nullable=True),
        sa.Column("parent_id", sa.String(128), nullable=True, index=True),
        sa.Column("group_id", sa.String(128), nullable=True, index=True),
        sa.Column("role", sa.String(8), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("side", sa.String(4), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("time_in_force", sa.String(4), nullable=False),
        sa.Column("qty", DecimalText(), nullable=False),
        sa.Column("limit_price", DecimalText(), nullable=True),
        sa.Column("stop_price", DecimalText(), nullable=True),
        sa.Column("stop_limit_price", DecimalText(), nullable=True),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("filled_qty", DecimalText(), nullable=False),
        sa.Column("filled_avg_price", DecimalText(), nullable=True),
        sa.Column("broker_updated_at", UtcDateTime(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("leg_ids", sa.JSON(), nullable=False),
        sa.Column("is_open", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.create_index("ix_orders_open", "orders", ["is_open"])
    op.create_table(
        "fills",
        sa.Column("execution_id", sa.String(64), primary_key=True),
        sa.Column("client_order_id", sa.String(128), nullable=False, index=True),
        sa.Column("qty", DecimalText(), nullable=False),
        sa.Column("price", DecimalText(), nullable=False),
        sa.Column("ts", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "plans",
        sa.Column("parent_id", sa.String(128), primary_key=True),
        sa.Column("tp_price", DecimalText(), nullable=True),
        sa.Column("tp_offset", DecimalText(), nullable=True),
        sa.Column("sl_price", DecimalText(), nullable=True),
        sa.Column("sl_offset", DecimalText(), nullable=True),
        sa.Column("policy", sa.String(16), nullable=False),
        sa.Column("release_failures", sa.Integer(), nullable=False),
        sa.Column("next_release_at", UtcDateTime(), nullable=True),
        sa.Column("done", sa.Boolean(), nullable=False, index=True),
    )
    op.create_table(
        "journal",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("ts", UtcDateTime(), nullable=False),
        sa.Column("kind", sa.String(48), nullable=False, index=True),
        sa.Column("client_order_id", sa.String(128), nullable=True, index=True),
        sa.Column("payload", sa.Text(), nullable=False),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(48), nullable=False),
        sa.Column("key", sa.String(160), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("raised_at", UtcDateTime(), nullable=False),
        sa.Column("resolved_at", UtcDateTime(), nullable=True),
    )
    op.create_index("ix_alerts_open", "alerts", ["kind", "key", "resolved_at"])
    op.create_table(
        "cursors",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    for name in ("cursors", "alerts", "journal", "plans", "fills", "orders"):
        op.drop_table(name)
