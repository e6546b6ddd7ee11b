"""``ordersync demo``: replay a scenario on the embedded simulator in one mode or all four, and print the
summary the simulator's books give (docs/architecture.md §9). Only parsing and rendering live here; the
runs are ``ordersync.demo``'s.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.live import Live

from ordersync.cli.common import check_store, err, fail, out

if TYPE_CHECKING:
    from collections.abc import Callable

    from ordersync.demo.run import DemoOptions
    from ordersync.demo.summary import Summary
    from ordersync.sim.scenarios import Scenario


def demo(
    mode: Annotated[
        str,
        typer.Option(
            help="safe (ordersync), naive (the seed's platform), poller (a list poller), "
            "bracket (Alpaca brackets)"
        ),
    ] = "safe",
    scenario: Annotated[Path | None, typer.Option(help="scenario YAML (default: the seed incident)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as one JSON object")] = False,
    compare: Annotated[
        bool, typer.Option("--compare", help="run all four modes on the scenario and print one table")
    ] = False,
    db: Annotated[
        str | None, typer.Option(help="store URL for safe mode (default: a temporary SQLite)")
    ] = None,
    log: Annotated[
        Path | None,
        typer.Option(help="write the platform's log here (seed format; naive, poller and bracket modes)"),
    ] = None,
    accounts: Annotated[
        int | None,
        typer.Option(
            help="run the scenario on N simulated accounts with real `run --worker` processes on PostgreSQL "
            f"(--db, else ${FLEET_DB_ENV}, else {DEFAULT_FLEET_DB}); one worker is SIGKILLed mid-run"
        ),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="worker processes for --accounts (default: min(N, 4))")
    ] = None,
    keep: Annotated[
        bool, typer.Option("--keep", help="with --accounts: keep the catalog and account schemas afterwards")
    ] = False,
) -> None:
    """Replay a scenario on the embedded simulator and summarize what the broker saw."""
    from ordersync.demo.run import MODES

    if accounts is not None or workers is not None or keep:
        fleet_workers = check_fleet_options(accounts, workers, keep, mode, compare, log)
        assert accounts is not None  # checked above
        _demo_fleet(_fleet_scenario(scenario), accounts, fleet_workers, _fleet_db(db), as_json, keep)
        return
    if mode not in MODES:
        fail(ValueError(f"--mode must be one of {', '.join(MODES)}, was {mode!r}"))
    if log is not None and (compare or mode == "safe"):
        where = "--compare" if compare else "safe mode"
        fail(
            ValueError(f"--log writes one platform's seed-format log; {where} has none (safe mode: use --db)")
        )
    if log is not None and not (log.parent.is_dir() and os.access(log.parent, os.W_OK)):
        fail(f"--log: cannot write {log}: folder {log.parent} does not exist or is not writable")
    if db is not None:
        check_store(db)
    chosen = _demo_scenario(scenario)
    from ordersync.demo.run import UnsupportedScenario, check_supported

    if not compare:  # --compare runs the other modes and shows safe mode's refusal in its column
        try:
            check_supported(chosen, mode)
        except UnsupportedScenario as e:
            fail(e)
    from ordersync.logging import configure

    configure(json=False, level="warning")  # engine warnings go to stderr; stdout stays the summary / JSON
    if compare:
        _demo_compare(chosen, as_json, db)
    else:
        _demo_one(chosen, mode, as_json, db, log)


FLEET_DB_ENV = "ORDERSYNC_DEMO_PG_URL"
DEFAULT_FLEET_DB = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
MAX_ACCOUNTS = 80  # each account's engine holds PostgreSQL connections; a default server allows 100
MAX_WORKERS = 16


def check_fleet_options(
    accounts: int | None, workers: int | None, keep: bool, mode: str, compare: bool, log: Path | None
) -> int:
    """Refuse a fleet run the options cannot make (exit 2, one line); return the number of workers."""
    if accounts is None:
        given = "--workers" if workers is not None else "--keep"
        fail(f"{given} is for the many-account demo: give --accounts N too")
    if not 1 <= accounts <= MAX_ACCOUNTS:
        fail(f"--accounts must be between 1 and {MAX_ACCOUNTS}, was {accounts}")
    if workers is None:
        workers = min(accounts, 4)
    if not 1 <= workers <= min(accounts, MAX_WORKERS):
        fail(
            f"--workers must be between 1 and {min(accounts, MAX_WORKERS)} (at most one per account, "
            f"at most {MAX_WORKERS}), was {workers}"
        )
    if mode != "safe" or compare or log is not None:
        given = "--compare" if compare else "--log" if log is not None else f"--mode {mode}"
        fail(f"--accounts runs ordersync's engine (safe mode) on every account; {given} does not apply")
    return workers


def _fleet_db(db: str | None) -> str:
    """The PostgreSQL server the fleet demo uses, or exit 2 with one line: not PostgreSQL, not reachable."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    url = db or os.environ.get(FLEET_DB_ENV) or DEFAULT_FLEET_DB
    try:
        parsed = make_url(url)
    except ArgumentError:
        fail("--accounts needs a PostgreSQL URL (postgresql+psycopg://user@host:5432/db); --db is not one")
    if not parsed.drivername.startswith("postgresql"):
        fail(
            f"--accounts needs PostgreSQL (the catalog and the workers' leases); --db is {parsed.drivername}"
        )
    where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database or ''}"
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as e:
        reason = " ".join(str(getattr(e, "orig", e)).split())[:160]
        fail(f"--accounts needs PostgreSQL: cannot reach {where} (give --db or ${FLEET_DB_ENV}): {reason}")
    finally:
        engine.dispose()
    return url


def _fleet_scenario(path: Path | None) -> Scenario:
    from ordersync.demo.fleet_scenario import UnsupportedFleetScenario, check_fleet_scenario
    from ordersync.sim.scenarios import ScenarioError, default_scenario, load_scenario

    try:
        chosen = load_scenario(path) if path else default_scenario()
        check_fleet_scenario(chosen)
        from ordersync.demo.run import check_supported

        check_supported(chosen, "safe")
    except (ScenarioError, UnsupportedFleetScenario, ValueError) as e:
        fail(e)
    return chosen


def _demo_fleet(chosen: Scenario, accounts: int, workers: int, db: str, as_json: bool, keep: bool) -> None:
    import time

    from ordersync.demo.fleet import DemoFailed, FleetOptions, run_fleet_demo
    from ordersync.demo.fleet_view import fleet_table
    from ordersync.logging import configure

    configure(json=False, level="warning")
    began = time.monotonic()

    def say(line: str) -> None:
        err.print(
            f"[{time.monotonic() - began:5.1f} s] {line}", markup=False, highlight=False, soft_wrap=True
        )

    try:
        summary = run_fleet_demo(chosen, FleetOptions(accounts, workers, db, keep=keep), say)
    except DemoFailed as e:
        fail(e, code=1)
    if as_json:
        out.print_json(json.dumps(summary.as_dict()))
    else:
        if not out.is_terminal:  # a pipe or a file: rich would assume 80 columns and cut every figure
            out.width = max(out.width, 120)
        out.print(fleet_table(summary))
    raise typer.Exit(1 if summary.problems else 0)


def _demo_scenario(path: Path | None) -> Scenario:
    from ordersync.sim.scenarios import ScenarioError, default_scenario, load_scenario

    try:
        chosen = load_scenario(path) if path else default_scenario()
    except ScenarioError as e:
        fail(e)
    if chosen.accounts is not None:
        # the demo drives one account with its own keys; a scenario of many accounts is for `sim serve`
        fail(
            f"{path}: this scenario defines several accounts; ordersync demo runs one account (use sim serve)"
        )
    return chosen


def _demo_progress(mode: str) -> Callable[[dict[str, Any]], None]:
    """Progress without the live view (no terminal, ``--json``, ``--compare``): a line on stderr every 5 s."""
    from ordersync.demo.view import ProgressLines

    return ProgressLines(mode, err)


def _demo_run(chosen: Scenario, options: DemoOptions, progress: Callable[[dict[str, Any]], None]) -> Summary:
    from ordersync.demo.conductor import DemoStalled
    from ordersync.demo.run import UnsupportedScenario, run_demo

    try:
        return asyncio.run(run_demo(chosen, options, progress))
    except UnsupportedScenario as e:
        fail(e)
    except DemoStalled as e:
        fail(e, code=1)


def _demo_one(chosen: Scenario, mode: str, as_json: bool, db: str | None, log: Path | None) -> None:
    from ordersync.demo.run import DemoOptions
    from ordersync.demo.view import live_view, summary_table

    options = DemoOptions(mode=mode, db_url=db, log_path=log)
    if as_json or not err.is_terminal:
        summary = _demo_run(chosen, options, _demo_progress(mode))
    else:
        with Live(console=err, refresh_per_second=4, transient=True) as live:
            summary = _demo_run(chosen, options, lambda state: live.update(live_view(mode, state)))
    if as_json:
        out.print_json(json.dumps(summary.as_dict()))
    else:
        out.print(summary_table(summary))
    raise typer.Exit(1 if summary.problems else 0)


def _demo_compare(chosen: Scenario, as_json: bool, db: str | None) -> None:
    from ordersync.demo.compare import compare_modes
    from ordersync.demo.conductor import DemoStalled
    from ordersync.demo.view import compare_table

    try:  # the runs behind bench/bench_modes.py too
        summaries = compare_modes(chosen, db_url=db, progress=_demo_progress)
    except DemoStalled as e:
        fail(e, code=1)
    if as_json:
        out.print_json(json.dumps({s.mode: s.as_dict() for s in summaries}))
    else:
        out.print(compare_table(summaries))
        for summary in summaries:
            if summary.refused:
                out.print(f"{summary.mode}: refused: {summary.refused}", markup=False, soft_wrap=True)
    raise typer.Exit(1 if summaries[0].problems else 0)
