"""`ordersync demo --accounts N --workers W`: what it refuses before anything starts (exit 2, one line).

Nothing here reaches PostgreSQL except the unreachable-server case, which names a port nobody listens on.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from ordersync.cli import app
from ordersync.sim.process import free_port


def _demo(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["demo", *args], env={"COLUMNS": "300"})
    return result.exit_code, " ".join(result.output.split())


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--workers", "2"], "--workers is for the many-account demo: give --accounts N too"),
        (["--keep"], "--keep is for the many-account demo"),
        (["--accounts", "0"], "--accounts must be between 1 and"),
        (["--accounts", "-3"], "--accounts must be between 1 and"),
        (["--accounts", "500"], "--accounts must be between 1 and"),
        (["--accounts", "3", "--workers", "4"], "--workers must be between 1 and 3"),
        (["--accounts", "3", "--workers", "0"], "--workers must be between 1 and 3"),
        (["--accounts", "3", "--mode", "naive"], "--mode naive does not apply"),
        (["--accounts", "3", "--compare"], "--compare does not apply"),
        (["--accounts", "3", "--db", "sqlite:///fleet.db"], "--accounts needs PostgreSQL"),
        (["--accounts", "3", "--db", "not a url"], "--accounts needs a PostgreSQL URL"),
    ],
)
def test_bad_fleet_options_are_refused_in_one_line(args: list[str], says: str) -> None:
    code, output = _demo(*args)
    assert code == 2
    assert output.startswith("error: ")
    assert says in output


def test_no_postgresql_reachable_is_one_line_and_exit_2() -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing"
    code, output = _demo("--accounts", "2", "--db", url)
    assert code == 2
    assert output.startswith("error: --accounts needs PostgreSQL: cannot reach 127.0.0.1:")
    assert output.count("error:") == 1


def test_a_scenario_with_its_own_accounts_is_refused(tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        'name: many\nsymbols: {OKE: {price: "72.10"}}\naccounts: {count: 2}\n'
        'parents: [{id: p1, symbol: OKE, qty: "1", fills: [{after_s: 1, qty: "1"}]}]\n'
    )
    code, output = _demo("--accounts", "2", "--scenario", str(scenario))
    assert code == 2
    assert "declares its own accounts" in output
