"""The README's command table and the CLI say the same things (issue 20).

Every option a command has appears in its README row, and every option a README row names exists on that
command: a renamed flag or an undocumented one fails here instead of confusing a newcomer.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer.main

from ordersync.cli import app

README = Path(__file__).resolve().parents[3] / "README.md"
COMMANDS = [
    "demo",
    "sim serve",
    "run",
    "submit",
    "status",
    "alerts",
    "alerts ack",
    "reconcile",
    "analyze",
    "accounts add",
    "accounts list",
    "accounts disable",
    "accounts enable",
]


def _command(path: str) -> Any:
    # typer builds click-shaped commands (its own vendored click): read them by their attributes
    command: Any = typer.main.get_command(app)
    for name in path.split():
        command = command.commands[name]
    return command


def _options(command: Any) -> set[str]:
    return {
        opt
        for param in command.params
        if param.param_type_name == "option"
        for opt in param.opts
        if opt.startswith("--") and opt != "--help"
    }


def _row(path: str) -> str:
    # the cell that shows the command: "`ordersync alerts [..]`, `ordersync alerts ack KIND:KEY ...`"
    rows = [
        line for line in README.read_text(encoding="utf-8").splitlines() if line.startswith("| `ordersync ")
    ]
    pattern = re.compile(rf"`ordersync {re.escape(path)}(?: [^`]*)?`")
    cells = [m.group(0) for line in rows for m in [pattern.search(line.split(" | ")[0])] if m]
    assert cells, f"README.md has no row for `ordersync {path}`"
    return " ".join(cells)


@pytest.mark.parametrize("path", COMMANDS)
def test_every_option_of_a_command_is_in_its_readme_row(path: str) -> None:
    missing = _options(_command(path)) - set(re.findall(r"--[a-z][a-z-]*", _row(path)))
    assert not missing, f"`ordersync {path}`: options not in the README: {sorted(missing)}"


@pytest.mark.parametrize("path", COMMANDS)
def test_every_option_a_readme_row_names_exists(path: str) -> None:
    named = set(re.findall(r"--[a-z][a-z-]*", _row(path)))
    if path == "alerts":  # the row shows `alerts ack` too
        named -= {"--note"}
    unknown = named - _options(_command(path))
    assert not unknown, f"`ordersync {path}`: the README names options it does not have: {sorted(unknown)}"


def test_the_version_flag_is_documented() -> None:
    assert "`ordersync --version`" in README.read_text(encoding="utf-8")
