"""Stop-limit and trailing exits: a plan's stop-limit limit and trail, an order's trail.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ordersync.store.tables import DecimalText

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_PLAN_COLUMNS = ("sl_limit_price", "sl_limit_offset", "trail_price", "trail_percent")
_ORDER_COLUMNS = ("trail_price", "trail_percent")


def upgrade() -> None:
    with op.batch_alter_table("plans") as batch:
        for name in _PLAN_COLUMNS:
            batch.add_column(sa.Column(name, DecimalText(), nullable=True))
    with op.batch_alter_table("orders") as batch:
        for name in _ORDER_COLUMNS:
            batch.add_column(sa.Column(name, DecimalText(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        for name in reversed(_ORDER_COLUMNS):
            batch.drop_column(name)
    with op.batch_alter_table("plans") as batch:
        for name in reversed(_PLAN_COLUMNS):
            batch.drop_column(name)
