"""``ordersync accounts ...`` and ``ordersync run --worker``: the operator's side of many accounts.

Accounts are rows of the catalog on the configured PostgreSQL ``store.url``; keys stay out of it (a secrets
folder or per-account environment variables, ``ordersync.config.account_credentials``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ordersync.cli.common import err, fail, out
from ordersync.domain.errors import OrderSyncError

if TYPE_CHECKING:  # pydantic and SQLAlchemy load when a command runs, not for `ordersync --help`
    from ordersync.config import Settings
    from ordersync.fleet.catalog import Catalog

accounts_app = typer.Typer(no_args_is_help=True, help="Many accounts: the catalog the workers share out.")

ConfigOption = Annotated[Path | None, typer.Option(help="YAML config; its store.url must be PostgreSQL")]


def open_catalog(config: Path | None) -> tuple[Settings, Catalog]:
    from sqlalchemy.exc import SQLAlchemyError

    from ordersync.config import load_settings
    from ordersync.fleet.catalog import Catalog

    try:
        settings = load_settings(config)
        return settings, Catalog(settings.store.url)
    except OrderSyncError as e:
        fail(e)
    except SQLAlchemyError as e:
        fail(f"cannot open the catalog: {' '.join(str(getattr(e, 'orig', e)).split())[:200]}")


@accounts_app.command("add")
def add(
    account_ids: Annotated[list[str], typer.Argument(help="one or more names for accounts")],
    config: ConfigOption = None,
) -> None:
    """Register accounts and create their stores; the workers pick them up within a heartbeat."""
    from ordersync.config import account_credentials

    settings, catalog = open_catalog(config)
    secrets = settings.fleet.secrets_dir
    try:
        for account_id in account_ids:
            account = catalog.add(account_id, datetime.now(UTC))
            out.print(f"added {account.account_id} (store schema {account.store_schema})", markup=False)
            try:
                account_credentials(account_id, Path(secrets) if secrets else None)
            except OrderSyncError as e:
                err.print(f"warning: {e} (needed where the workers run)", markup=False, highlight=False)
    except OrderSyncError as e:
        fail(e)
    finally:
        catalog.close()


@accounts_app.command("list")
def list_accounts(
    config: ConfigOption = None, as_json: Annotated[bool, typer.Option("--json", help="JSON lines")] = False
) -> None:
    """Every account: enabled or not, and which worker's engine holds its lease now."""
    _, catalog = open_catalog(config)
    try:
        states = catalog.states()
        rows = [(a, *states[a.account_id]) for a in catalog.accounts()]
        live = catalog.live_workers()
    finally:
        catalog.close()
    if as_json:
        for account, holder, alerts in rows:
            line = {
                "account": account.account_id,
                "enabled": account.enabled,
                "active_on": holder,
                "open_alerts": alerts,
                "store_schema": account.store_schema,
            }
            typer.echo(json.dumps(line))
    else:
        from rich.table import Table

        table = Table("account", "enabled", "active on", "open alerts", "store schema")
        for account, holder, alerts in rows:
            enabled = "yes" if account.enabled else "no"
            table.add_row(account.account_id, enabled, holder or "-", str(alerts), account.store_schema)
        out.print(table)
        open_total = sum(alerts for _, _, alerts in rows)
        out.print(f"{len(rows)} accounts, {len(live)} live workers, {open_total} open alerts", markup=False)
    if any(alerts for _, _, alerts in rows):
        raise typer.Exit(1)  # as `ordersync status`: an open alert anywhere is a finding


@accounts_app.command("disable")
def disable(account_id: Annotated[str, typer.Argument()], config: ConfigOption = None) -> None:
    """Stop protecting an account: its worker stops its engine within a heartbeat (the store is kept)."""
    _set_enabled(account_id, False, config)


@accounts_app.command("enable")
def enable(account_id: Annotated[str, typer.Argument()], config: ConfigOption = None) -> None:
    """Protect a disabled account again."""
    _set_enabled(account_id, True, config)


def _set_enabled(account_id: str, enabled: bool, config: Path | None) -> None:
    _, catalog = open_catalog(config)
    try:
        catalog.set_enabled(account_id, enabled)
    except OrderSyncError as e:
        fail(e)
    finally:
        catalog.close()
    out.print(f"{account_id}: {'enabled' if enabled else 'disabled'}", markup=False)
