"""The ``ordersync`` command line (typer + rich): parse, call, render. Exit codes per docs/operations.md §6:
0 success, 1 the run found problems, 2 bad input (one line on stderr).

The commands live by kind: ``demo``, ``service`` (the long-running simulator and engine), ``operate``
(one-shot commands against the store) and ``analyze``, sharing ``common``'s consoles and its one way to
fail. They are registered here, in one table, in the order ``ordersync --help`` lists them.
"""

from __future__ import annotations

import typer

from ordersync import __version__
from ordersync.cli.accounts import accounts_app
from ordersync.cli.analyze import analyze
from ordersync.cli.common import app, out, root
from ordersync.cli.demo import demo
from ordersync.cli.operate import alerts_ack, alerts_list, protect, reconcile, status, submit
from ordersync.cli.service import run, sim_serve

__all__ = ["app", "main"]


def version() -> None:
    """Print the version."""
    out.print(__version__)


app.callback()(root)
for command in (demo, run, submit, status, protect, reconcile, analyze, version):
    app.command()(command)
sim_app = typer.Typer(no_args_is_help=True, help="The Alpaca-compatible simulator.")
sim_app.command("serve")(sim_serve)
app.add_typer(sim_app, name="sim")
alerts_app = typer.Typer(help="Open alerts, and acknowledging them.", invoke_without_command=True)
alerts_app.callback()(alerts_list)
alerts_app.command("ack")(alerts_ack)
app.add_typer(alerts_app, name="alerts")
app.add_typer(accounts_app, name="accounts")


def main() -> None:
    """Console-script entry point."""
    app()
