"""The fleet catalog: accounts (each with its own store schema) and worker heartbeats.

Revision ID: fleet0001
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ordersync.store.tables import UtcDateTime

revision = "fleet0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fleet_accounts",
        sa.Column("account_id", sa.String(64), primary_key=True),
        sa.Column("store_schema", sa.String(63), nullable=False, unique=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "fleet_workers",
        sa.Column("worker_id", sa.String(200), primary_key=True),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("fleet_workers")
    op.drop_table("fleet_accounts")
