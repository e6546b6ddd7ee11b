"""Alembic environment of the fleet catalog: runs online against the engine in ``config.attributes``."""

from __future__ import annotations

from alembic import context

from ordersync.fleet.catalog import metadata
from ordersync.fleet.migrate import VERSION_TABLE

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(connection=connection, target_metadata=metadata, version_table=VERSION_TABLE)
    with context.begin_transaction():
        context.run_migrations()
