"""The ``ordersync`` command line (typer + rich): parse, call, render. Exit codes per DESIGN.md §3:
0 success, 1 the run found problems, 2 bad input (one line on stderr)."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.live import Live

from ordersync import __version__

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from ordersync.config import Credentials, Settings
    from ordersync.demo.run import DemoOptions
    from ordersync.demo.summary import Summary
    from ordersync.sim.scenarios import Scenario

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Order-lifecycle sync for Alpaca.")
sim_app = typer.Typer(no_args_is_help=True, help="The Alpaca-compatible simulator.")
app.add_typer(sim_app, name="sim")
out = Console()
err = Console(stderr=True)


def _fail(error: Exception, code: int = 2) -> NoReturn:
    # one line, whatever the terminal width: scripts grep it, and DESIGN §3 promises a one-line reason
    err.print(f"{type(error).__name__}: {error}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _settings_and_keys(config: Path | None) -> tuple[Settings, Credentials]:
    # the config file and the keys (environment only), or exit 2 naming what is wrong
    from ordersync.config import credentials_from_env, load_settings
    from ordersync.domain.errors import OrderSyncError

    try:
        return load_settings(config), credentials_from_env()
    except OrderSyncError as e:
        _fail(e)


def _store_url(db: str | None, config: Path | None) -> str:
    # --db wins; otherwise the store named in the config file (or the default one)
    from ordersync.config import load_settings
    from ordersync.domain.errors import OrderSyncError

    try:
        return db or load_settings(config).store.url
    except OrderSyncError as e:
        _fail(e)


@app.command()
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
) -> None:
    """Replay a scenario on the embedded simulator and summarize what the broker saw."""
    from ordersync.demo.run import MODES

    if mode not in MODES:
        _fail(ValueError(f"--mode must be one of {', '.join(MODES)}, was {mode!r}"))
    if log is not None and (compare or mode == "safe"):
        where = "--compare" if compare else "safe mode"
        _fail(
            ValueError(f"--log writes one platform's seed-format log; {where} has none (safe mode: use --db)")
        )
    chosen = _demo_scenario(scenario)
    from ordersync.demo.run import UnsupportedScenario, check_supported

    if not compare:  # --compare runs the other modes and shows safe mode's refusal in its column
        try:
            check_supported(chosen, mode)
        except UnsupportedScenario as e:
            _fail(e)
    from ordersync.logging import configure

    configure(json=False, level="warning")  # engine warnings go to stderr; stdout stays the summary / JSON
    if compare:
        _demo_compare(chosen, as_json, db)
    else:
        _demo_one(chosen, mode, as_json, db, log)


def _demo_scenario(path: Path | None) -> Scenario:
    from ordersync.sim.scenarios import ScenarioError, default_scenario, load_scenario

    try:
        return load_scenario(path) if path else default_scenario()
    except ScenarioError as e:
        _fail(e)


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
        _fail(e)
    except DemoStalled as e:
        _fail(e, code=1)


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
    from ordersync.demo.run import MODES, DemoOptions, UnsupportedScenario, check_supported
    from ordersync.demo.summary import Summary
    from ordersync.demo.view import compare_table

    summaries = []
    for mode in MODES:
        try:
            check_supported(chosen, mode)
        except UnsupportedScenario as e:
            summaries.append(Summary(mode=mode, scenario=chosen.name, refused=str(e)))
            continue
        options = DemoOptions(mode=mode, db_url=db if mode == "safe" else None)
        summaries.append(_demo_run(chosen, options, _demo_progress(mode)))
    if as_json:
        out.print_json(json.dumps({s.mode: s.as_dict() for s in summaries}))
    else:
        out.print(compare_table(summaries))
        for summary in summaries:
            if summary.refused:
                out.print(f"{summary.mode}: refused: {summary.refused}", markup=False, soft_wrap=True)
    raise typer.Exit(1 if summaries[0].problems else 0)


@sim_app.command("serve")
def sim_serve(
    host: Annotated[str, typer.Option(help="bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8800,
    scenario: Annotated[Path | None, typer.Option(help="scenario YAML")] = None,
    clock: Annotated[str, typer.Option(help="real | fast:N | stepped")] = "real",
) -> None:
    """Serve the simulator for alpaca-py (TradingClient/TradingStream with url_override)."""
    from ordersync.sim.clock import ClockSpecError
    from ordersync.sim.scenarios import ScenarioError
    from ordersync.sim.server import serve

    try:
        serve(host, port, scenario, clock)
    except (ScenarioError, ClockSpecError) as e:
        _fail(e)


@app.command()
def run(
    config: Annotated[Path, typer.Option(help="YAML config (broker URLs, store, engine, metrics)")],
) -> None:
    """Run the engine against Alpaca or any compatible URL; keys from APCA_API_KEY_ID/APCA_API_SECRET_KEY."""
    from ordersync.bootstrap import build_engine
    from ordersync.config import secret_values
    from ordersync.logging import configure

    settings, credentials = _settings_and_keys(config)
    configure(json=True, secrets=secret_values())
    engine, store, _ = build_engine(settings, credentials)

    async def main() -> None:
        if settings.metrics.enabled:
            from prometheus_client import start_http_server

            start_http_server(settings.metrics.port, settings.metrics.host, registry=engine.metrics.registry)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        err.print("waiting for the lease (another instance may be active) ...")
        await engine.start()
        err.print("active: syncing orders")
        await engine.run_until_stopped(stop)

    try:
        asyncio.run(main())
    finally:
        store.close()
    if engine.lease_lost:
        err.print(
            "lease lost: another instance is active; exiting so a supervisor restarts this one as standby"
        )
        raise typer.Exit(1)


@app.command()
def submit(
    symbol: Annotated[str, typer.Option(help="ticker, e.g. AAPL")],
    qty: Annotated[str, typer.Option(help="quantity (decimal)")],
    side: Annotated[str, typer.Option(help="buy or sell")] = "buy",
    order_type: Annotated[str, typer.Option("--type", help="market | limit | stop | stop_limit")] = "market",
    limit_price: Annotated[str | None, typer.Option(help="limit price")] = None,
    stop_price: Annotated[str | None, typer.Option(help="stop price")] = None,
    tif: Annotated[str, typer.Option(help="day | gtc | ...")] = "day",
    client_order_id: Annotated[
        str | None, typer.Option(help="your idempotency key (default: generated)")
    ] = None,
    take_profit: Annotated[str | None, typer.Option(help="take-profit price")] = None,
    stop_loss: Annotated[str | None, typer.Option(help="stop-loss price")] = None,
    tp_offset: Annotated[str | None, typer.Option(help="take-profit as a fraction beyond the fill")] = None,
    sl_offset: Annotated[str | None, typer.Option(help="stop-loss as a fraction beyond the fill")] = None,
    policy: Annotated[str, typer.Option(help="each_fill | full_fill")] = "each_fill",
    db: Annotated[str | None, typer.Option(help="store URL")] = None,
    config: Annotated[Path | None, typer.Option(help="config file naming the store")] = None,
) -> None:
    """Record a parent order and its protection plan; the running engine (``ordersync run``) sends it."""
    import uuid
    from decimal import Decimal

    from ordersync.clocks import SystemClock
    from ordersync.domain.errors import OrderSyncError
    from ordersync.domain.order import new_order, to_decimal
    from ordersync.domain.protection import PartialFillPolicy, PriceRule, ProtectionPlan
    from ordersync.engine import record_parent
    from ordersync.store import open_store

    def rule(price: str | None, offset: str | None) -> PriceRule | None:
        if price is None and offset is None:
            return None
        return PriceRule(
            price=None if price is None else to_decimal(price, "price"),
            offset=None if offset is None else Decimal(offset),
        )

    url = _store_url(db, config)
    try:
        order = new_order(
            client_order_id=client_order_id or f"os-{uuid.uuid4().hex[:20]}",
            symbol=symbol,
            side=side,
            type=order_type,
            qty=qty,
            created_at=SystemClock().now(),
            time_in_force=tif,
            limit_price=limit_price,
            stop_price=stop_price,
        )
        tp, sl = rule(take_profit, tp_offset), rule(stop_loss, sl_offset)
        plan = ProtectionPlan(tp, sl, PartialFillPolicy(policy)) if tp or sl else None
        store = open_store(url)
        try:
            record_parent(store, order, plan, SystemClock().now())
        finally:
            store.close()
    except (OrderSyncError, ValueError, ArithmeticError) as e:
        _fail(e)
    out.print(order.client_order_id)


@app.command()
def status(
    db: Annotated[str | None, typer.Option(help="store URL")] = None,
    config: Annotated[Path | None, typer.Option(help="config file naming the store")] = None,
) -> None:
    """Show orders, their children and protection, and open alerts."""
    from ordersync.reports import status_tables
    from ordersync.store import open_store

    store = open_store(_store_url(db, config))
    try:
        with store.transaction() as tx:
            tables = status_tables(tx.all_orders(), tx.active_plans(), tx.open_alerts())
            alerts = tx.open_alerts()
    finally:
        store.close()
    for table in tables:
        out.print(table)
    raise typer.Exit(1 if alerts else 0)


@app.command()
def reconcile(
    config: Annotated[Path | None, typer.Option(help="YAML config")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="report only; change nothing")] = False,
) -> None:
    """Compare local orders and positions with the broker's; fix what can be fixed."""
    from ordersync.bootstrap import build_engine

    settings, credentials = _settings_and_keys(config)
    engine, store, _ = build_engine(settings, credentials, with_lease=False)
    try:
        report = asyncio.run(engine.watch.reconcile(dry_run=dry_run))
    finally:
        store.close()
    counts = f"corrections: {report.corrections}  lookups: {report.lookups}"
    out.print(f"{counts}  discrepancies: {len(report.discrepancies)}")
    for d in report.discrepancies:
        out.print(f"  {d.kind} {d.key}: {d.detail}", markup=False)
    raise typer.Exit(1 if report.discrepancies else 0)


@app.command()
def analyze(
    logs: Annotated[list[Path] | None, typer.Argument(help="platform log files (plain or gzip)")] = None,
    fmt: Annotated[str, typer.Option("--format", help="md or json")] = "md",
    db: Annotated[str | None, typer.Option(help="analyze ordersync's own journal at this store URL")] = None,
    still_failing_hours: Annotated[
        float, typer.Option(help="report parents still failing after N hours")
    ] = 1.0,
) -> None:
    """Write the incident report (the seed's analysis) from logs or from ordersync's journal."""
    from ordersync.forensics import (
        LogInputError,
        analyze_paths,
        analyze_records,
        render_json,
        render_markdown,
    )

    if fmt not in ("md", "json"):
        _fail(ValueError(f"--format must be md or json, was {fmt!r}"))
    if not logs and not db:
        _fail(ValueError("give log files, or --db URL for ordersync's own journal"))
    try:
        if db:
            from ordersync.reports import journal_records
            from ordersync.store import open_store

            store = open_store(db, migrate=False)
            try:
                report = analyze_records(
                    journal_records(store), source=db, still_failing_hours=still_failing_hours
                )
            finally:
                store.close()
        else:
            report = analyze_paths(
                logs or [], progress=sys.stderr.isatty(), still_failing_hours=still_failing_hours
            )
    except LogInputError as e:
        _fail(e)
    text = render_json(report) if fmt == "json" else render_markdown(report)
    out.print(text, markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(1 if report.summary.issues else 0)


@app.command()
def version() -> None:
    """Print the version."""
    out.print(__version__)


def main() -> None:
    """Console-script entry point."""
    app()
