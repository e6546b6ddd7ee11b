"""The PostgreSQL server the tests use for real: is it reachable, and a fresh schema per test.

A schema of its own per test keeps parallel and repeated runs apart without a database per test.
"""

from __future__ import annotations

from contextlib import AbstractContextManager


def postgres_unreachable(url: str) -> str | None:
    """Return why the PostgreSQL server at ``url`` cannot be used, or None if it answers."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as e:
        return f"PostgreSQL unreachable at {url}: {e.orig}"
    finally:
        engine.dispose()
    return None


def fresh_postgres_schema(url: str, prefix: str = "ordersync_test") -> AbstractContextManager[str]:
    """Create an empty schema, yield a URL whose connections see only it, drop it (and its tables) after."""
    from ordersync.store.isolation import isolated_schema

    return isolated_schema(url, prefix)
