"""A throw-away PostgreSQL schema: tests, benchmarks and chaos runs each get an empty database of their own
on a shared server, selected through ``search_path`` and dropped (with its tables) afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text


@contextmanager
def isolated_schema(url: str, prefix: str = "ordersync") -> Iterator[str]:
    """Create an empty schema on the server at ``url``; yield a URL whose connections see only it.

    Raises:
        sqlalchemy.exc.OperationalError: the server cannot be reached (nothing was created).
    """
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        separator = "&" if "?" in url else "?"
        try:
            yield f"{url}{separator}options=-csearch_path%3D{schema}"
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()
