"""The fleet's catalog on PostgreSQL: which accounts exist, where each one's store lives, which workers live.

Accounts are data, not processes: an operator adds one with ``ordersync accounts add`` and any worker may run
it. Each account's orders, plans, fills, alerts, journal and lease live in a PostgreSQL schema of their own
(``store_schema``), migrated like any store: every row is scoped by account and every index is per account,
with no account column threaded through the engine's queries. The catalog never holds API keys (they come
from a secrets directory or the environment, ``ordersync.config.account_credentials``).

Workers heartbeat a row with an expiry in database time, as the lease does (``store/lease.py``): a worker that
stops renewing (killed, frozen, partitioned) drops out of every other worker's view once it has expired.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    Boolean,
    Column,
    Engine,
    MetaData,
    String,
    Table,
    create_engine,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from ordersync.domain.errors import ConfigError
from ordersync.fleet.migrate import upgrade
from ordersync.store import open_store
from ordersync.store.tables import UtcDateTime

__all__ = ["Account", "Catalog", "account_store_url"]

metadata = MetaData()
accounts = Table(
    "fleet_accounts",
    metadata,
    Column("account_id", String(64), primary_key=True),
    Column("store_schema", String(63), nullable=False, unique=True),
    Column("enabled", Boolean(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)
workers = Table(
    "fleet_workers",
    metadata,
    Column("worker_id", String(200), primary_key=True),
    Column("expires_at", UtcDateTime(), nullable=False),
)

_ACCOUNT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_HEARTBEAT = text(
    """
    INSERT INTO fleet_workers (worker_id, expires_at) VALUES (:worker, now() + make_interval(secs => :ttl))
    ON CONFLICT (worker_id) DO UPDATE SET expires_at = EXCLUDED.expires_at
    """
)


@dataclass(frozen=True)
class Account:
    """One Alpaca account the fleet protects."""

    account_id: str
    store_schema: str
    enabled: bool
    created_at: datetime


def check_account_id(account_id: str) -> str:
    """Return ``account_id`` if it can name an account (letters, digits, ``_`` and ``-``, at most 64).

    Raises:
        ConfigError: one line saying what is wrong with it.
    """
    if not _ACCOUNT_ID.match(account_id):
        raise ConfigError(
            f"account id {account_id!r}: 1-64 letters, digits, '_' or '-', starting with a letter or a digit"
        )
    return account_id


def account_store_url(catalog_url: str, store_schema: str) -> str:
    """The store URL of one account: the catalog's server and database, the account's schema only.

    The catalog URL's other session settings (``options=-c name=value ...``, e.g. an idle-session limit)
    apply to every account's store too; only the ``search_path`` is the account's own.
    """
    url = make_url(catalog_url)
    query = {k: v for k, v in url.query.items() if k != "options"}
    given = url.query.get("options", ())
    tokens = " ".join([given] if isinstance(given, str) else given).split()
    settings: list[str] = []
    while tokens:
        token = tokens.pop(0)
        setting = tokens.pop(0) if token == "-c" and tokens else token.removeprefix("-c")
        if not setting.startswith("search_path="):
            settings.append(f"-c{setting}")
    options = " ".join([*settings, f"-csearch_path={store_schema}"])
    return url.set(query={**query, "options": options}).render_as_string(hide_password=False)


class Catalog:
    """Accounts and live workers, on the PostgreSQL database at ``url``."""

    def __init__(self, url: str) -> None:
        if not url.startswith("postgresql"):
            raise ConfigError(
                "many accounts need a PostgreSQL store.url (the catalog and the workers' leases)"
            )
        self.url = url
        self._engine: Engine = create_engine(url, future=True, pool_pre_ping=True)
        upgrade(self._engine)

    def add(self, account_id: str, now: datetime) -> Account:
        """Register an account and create its store (an empty, migrated schema).

        Raises:
            ConfigError: the id is malformed or already registered.
        """
        check_account_id(account_id)
        schema = f"ordersync_acct_{re.sub(r'[^a-z0-9]', '_', account_id.lower())[:30]}_{uuid.uuid4().hex[:8]}"
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    insert(accounts).values(
                        account_id=account_id, store_schema=schema, enabled=True, created_at=now
                    )
                )
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        except IntegrityError:
            raise ConfigError(f"account {account_id!r} is already registered") from None
        open_store(account_store_url(self.url, schema)).close()  # creates and migrates its tables
        return Account(account_id, schema, True, now)

    def accounts(self, *, enabled_only: bool = False) -> list[Account]:
        """Every registered account (or only the enabled ones), by id."""
        query = select(accounts).order_by(accounts.c.account_id)
        if enabled_only:
            query = query.where(accounts.c.enabled.is_(True))
        with self._engine.connect() as conn:
            return [
                Account(r.account_id, r.store_schema, r.enabled, r.created_at) for r in conn.execute(query)
            ]

    def account_url(self, account_id: str) -> str:
        """The store URL of a registered account (what ``ordersync submit --db`` takes).

        Raises:
            ConfigError: no such account.
        """
        for account in self.accounts():
            if account.account_id == account_id:
                return account_store_url(self.url, account.store_schema)
        raise ConfigError(f"no account {account_id!r} (see `ordersync accounts list`)")

    def states(self) -> dict[str, tuple[str | None, int]]:
        """Each account's engine holding its lease now (None: nobody) and its open alerts, read from the
        accounts' own schemas over the catalog's one connection (an account whose store cannot be read
        shows nobody and no alert)."""
        found: dict[str, tuple[str | None, int]] = {}
        with self._engine.connect() as conn:
            for account in self.accounts():
                schema = account.store_schema  # made by ``add`` from [a-z0-9_] only: safe to quote
                try:
                    with conn.begin_nested():
                        holder = conn.execute(
                            text(f'SELECT holder FROM "{schema}".leases WHERE expires_at > now()')
                        ).scalar()
                        alerts = conn.execute(
                            text(f'SELECT count(*) FROM "{schema}".alerts WHERE resolved_at IS NULL')
                        ).scalar()
                except SQLAlchemyError:
                    holder, alerts = None, 0
                found[account.account_id] = (None if holder is None else str(holder), int(alerts or 0))
        return found

    def set_enabled(self, account_id: str, enabled: bool) -> None:
        """Enable or disable an account: a disabled one is released by its worker within a heartbeat.

        Raises:
            ConfigError: no such account.
        """
        with self._engine.begin() as conn:
            changed = conn.execute(
                update(accounts).where(accounts.c.account_id == account_id).values(enabled=enabled)
            ).rowcount
        if not changed:
            raise ConfigError(f"no account {account_id!r} (see `ordersync accounts list`)")

    def heartbeat(self, worker_id: str, ttl_s: float) -> None:
        """Say that ``worker_id`` lives for ``ttl_s`` more seconds of database time."""
        with self._engine.begin() as conn:
            conn.execute(_HEARTBEAT, {"worker": worker_id, "ttl": ttl_s})

    def live_workers(self) -> list[str]:
        """The workers whose heartbeat has not expired, by id."""
        query = (
            select(workers.c.worker_id)
            .where(workers.c.expires_at > text("now()"))
            .order_by(workers.c.worker_id)
        )
        with self._engine.connect() as conn:
            return [str(w) for w in conn.execute(query).scalars()]

    def leave(self, worker_id: str) -> None:
        """Drop ``worker_id`` from the view now (a clean stop), so others take its accounts at once."""
        with self._engine.begin() as conn:
            conn.execute(workers.delete().where(workers.c.worker_id == worker_id))

    def close(self) -> None:
        """Release the catalog's connections."""
        self._engine.dispose()
