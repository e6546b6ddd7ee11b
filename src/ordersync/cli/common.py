"""What every ``ordersync`` command shares: the typer app, the two consoles and the one way to fail.

Exit codes per docs/operations.md §6: 0 success, 1 the run found problems, 2 bad input (one line on stderr).
Bad input is reported by ``fail`` in plain words on one line, whatever the terminal width, because scripts
grep it; the store and config helpers turn what a person typed wrong into exactly that line.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console

from ordersync import __version__

if TYPE_CHECKING:
    from ordersync.config import Credentials, Settings
    from ordersync.store import SqlAlchemyStore

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Order-lifecycle sync for Alpaca.")
out = Console()
err = Console(stderr=True)


def fail(error: Exception | str, code: int = 2) -> NoReturn:
    # one line in plain words, whatever the terminal width: scripts grep it (docs/operations.md, exit codes)
    message = " ".join(str(error).split()) or type(error).__name__
    err.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _version(value: bool) -> None:
    if value:
        out.print(__version__)
        raise typer.Exit(0)


def root(
    show_version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    """Order-lifecycle sync for Alpaca."""


def open_store(url: str, *, must_exist: bool = False, migrate: bool = True) -> SqlAlchemyStore:
    # a store URL the user typed: one line for a bad scheme, a missing folder or a store that will not open
    from ordersync.store import StoreUrlError, open_checked_store

    try:
        return open_checked_store(url, must_exist=must_exist, migrate=migrate)
    except StoreUrlError as e:
        fail(e)


def settings_and_keys(config: Path | None) -> tuple[Settings, Credentials]:
    # the config file and the keys (environment only), or exit 2 naming what is wrong
    from ordersync.config import credentials_from_env, load_settings
    from ordersync.domain.errors import OrderSyncError

    try:
        return load_settings(config), credentials_from_env()
    except OrderSyncError as e:
        fail(e)


def check_store(url: str) -> None:
    from ordersync.store import StoreUrlError, check_store_url

    try:
        check_store_url(url)
    except StoreUrlError as e:
        fail(e)


def store_url(db: str | None, config: Path | None) -> str:
    # --db wins; otherwise the store named in the config file (or the default one)
    from ordersync.config import load_settings
    from ordersync.domain.errors import OrderSyncError

    try:
        return db or load_settings(config).store.url
    except OrderSyncError as e:
        fail(e)
