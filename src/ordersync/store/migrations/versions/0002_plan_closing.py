"""Plans remember a flatten request and when the plan was last changed (exit sequencing).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ordersync.store.tables import UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("plans") as batch:
        batch.add_column(sa.Column("closing", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("replaced_at", UtcDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("plans") as batch:
        batch.drop_column("replaced_at")
        batch.drop_column("closing")
