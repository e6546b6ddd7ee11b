"""Checking a store URL a person typed before anything is created or written.

SQLAlchemy reports a bad URL, a missing folder or a read-only file as a long traceback, and SQLite happily
creates a new empty database for a mistyped path; an operator needs one line that says which of these it is,
and a command like ``ordersync status`` must never leave a fresh ``ordersync.db`` behind."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from ordersync.domain.errors import OrderSyncError
from ordersync.store.sqlalchemy_store import SqlAlchemyStore, open_store

__all__ = ["StoreUrlError", "check_store_url", "open_checked_store"]

_BACKENDS = ("sqlite", "postgresql")


class StoreUrlError(OrderSyncError):
    """The store URL is malformed, names an unsupported backend, or the store cannot be opened."""


def check_store_url(url: str, *, must_exist: bool = False) -> None:
    """Refuse a URL that cannot name a usable store, without touching the store.

    Raises:
        StoreUrlError: one line naming the problem (the password, if any, is never shown).
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreUrlError(f"not a store URL: {url!r} (e.g. sqlite:///ordersync.db)") from None
    if parsed.get_backend_name() not in _BACKENDS:
        raise StoreUrlError(
            f"unsupported store {parsed.get_backend_name()!r}: use sqlite:///FILE or postgresql+psycopg://..."
        )
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return
    path = Path(parsed.database or "")
    if must_exist and not path.is_file():
        raise StoreUrlError(f"no store at {path} (give --db URL or --config FILE naming an existing store)")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise StoreUrlError(f"cannot create the store {path}: folder {folder} does not exist")
    writable = os.access(path, os.W_OK) if path.exists() else os.access(folder, os.W_OK)
    if not writable:
        raise StoreUrlError(f"the store {path} is not writable")


def open_checked_store(url: str, *, must_exist: bool = False, migrate: bool = True) -> SqlAlchemyStore:
    """Check ``url``, then open (and migrate) the store, turning driver failures into one line.

    Raises:
        StoreUrlError: the URL is unusable or the database refused the connection.
    """
    check_store_url(url, must_exist=must_exist)
    try:
        return open_store(url, migrate=migrate)
    except SQLAlchemyError as e:
        reason = " ".join(str(getattr(e, "orig", None) or e).split()).split(" (Background")[0]
        where = make_url(url).render_as_string(hide_password=True)
        raise StoreUrlError(f"cannot open the store {where}: {reason}") from None
    except ModuleNotFoundError as e:
        hint = "pip install 'ordersync[postgres]'"
        raise StoreUrlError(f"the store driver is not installed ({e.name}): {hint}") from None
