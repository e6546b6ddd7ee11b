"""Open orders by symbol through an index: a release pass reads one symbol's open orders, and with only
the ``is_open`` index that read walked every open order (its cost grew with all open orders, not the
symbol's).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_orders_symbol_open", "orders", ["symbol", "is_open"])


def downgrade() -> None:
    op.drop_index("ix_orders_symbol_open", table_name="orders")
