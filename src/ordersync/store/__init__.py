"""Durable state on SQLAlchemy 2: SQLite (WAL) embedded by default, PostgreSQL for production.

Every change to an order, a plan, a fill or an alert commits in the same transaction as its journal
entry, so a crash at any point leaves a consistent state to resume from (docs/architecture.md §2,
invariant 4).
"""

from ordersync.store.sqlalchemy_store import SqlAlchemyStore, open_store
from ordersync.store.url import StoreUrlError, check_store_url, open_checked_store

__all__ = ["SqlAlchemyStore", "StoreUrlError", "check_store_url", "open_checked_store", "open_store"]
