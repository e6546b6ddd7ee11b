"""The ``ordersync`` command line (typer + rich): parse, call, render. Exit codes per docs/operations.md §6:
0 success, 1 the run found problems, 2 bad input (one line on stderr)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.live import Live

from ordersync import __version__
from ordersync.fleet.commands import accounts_app, run_worker
from ordersync.runner import run_engine

if TYPE_CHECKING:
    from collections.abc import Callable

    from ordersync.config import Credentials, Settings
    from ordersync.demo.run import DemoOptions
    from ordersync.demo.summary import Summary
    from ordersync.sim.scenarios import Scenario
    from ordersync.store import SqlAlchemyStore

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Order-lifecycle sync for Alpaca.")
sim_app = typer.Typer(no_args_is_help=True, help="The Alpaca-compatible simulator.")
app.add_typer(sim_app, name="sim")
app.add_typer(accounts_app, name="accounts")
out = Console()
err = Console(stderr=True)


def _fail(error: Exception | str, code: int = 2) -> NoReturn:
    # one line in plain words, whatever the terminal width: scripts grep it (docs/operations.md, exit codes)
    message = " ".join(str(error).split()) or type(error).__name__
    err.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _version(value: bool) -> None:
    if value:
        out.print(__version__)
        raise typer.Exit(0)


@app.callback()
def _root(
    show_version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    """Order-lifecycle sync for Alpaca."""


def _open_store(url: str, *, must_exist: bool = False, migrate: bool = True) -> SqlAlchemyStore:
    # a store URL the user typed: one line for a bad scheme, a missing folder or a store that will not open
    from ordersync.store import StoreUrlError, open_checked_store

    try:
        return open_checked_store(url, must_exist=must_exist, migrate=migrate)
    except StoreUrlError as e:
        _fail(e)


def _settings_and_keys(config: Path | None) -> tuple[Settings, Credentials]:
    # the config file and the keys (environment only), or exit 2 naming what is wrong
    from ordersync.config import credentials_from_env, load_settings
    from ordersync.domain.errors import OrderSyncError

    try:
        return load_settings(config), credentials_from_env()
    except OrderSyncError as e:
        _fail(e)


def _check_store(url: str) -> None:
    from ordersync.store import StoreUrlError, check_store_url

    try:
        check_store_url(url)
    except StoreUrlError as e:
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
    if log is not None and not (log.parent.is_dir() and os.access(log.parent, os.W_OK)):
        _fail(f"--log: cannot write {log}: folder {log.parent} does not exist or is not writable")
    if db is not None:
        _check_store(db)
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
        chosen = load_scenario(path) if path else default_scenario()
    except ScenarioError as e:
        _fail(e)
    if chosen.accounts is not None:
        # the demo drives one account with its own keys; a scenario of many accounts is for `sim serve`
        _fail(
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
    from ordersync.demo.compare import compare_modes
    from ordersync.demo.conductor import DemoStalled
    from ordersync.demo.view import compare_table

    try:  # the runs behind bench/bench_modes.py too
        summaries = compare_modes(chosen, db_url=db, progress=_demo_progress)
    except DemoStalled as e:
        _fail(e, code=1)
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
    from ordersync.sim.server import ServeError, serve

    if not 0 <= port <= 65535:
        _fail(f"--port must be between 0 and 65535, was {port}")
    try:
        serve(host, port, scenario, clock)
    except (ScenarioError, ClockSpecError, ServeError) as e:
        _fail(e)


LOG_FORMATS = ("json", "console")
LOG_LEVELS = ("debug", "info", "warning", "error")


def _log_options(log_format: str, log_level: str) -> None:
    if log_format not in LOG_FORMATS:
        _fail(f"--log-format must be json or console, was {log_format!r}")
    if log_level.lower() not in LOG_LEVELS:
        _fail(f"--log-level must be one of {', '.join(LOG_LEVELS)}, was {log_level!r}")


@app.command()
def run(
    config: Annotated[Path, typer.Option(help="YAML config (broker URLs, store, engine, metrics)")],
    log_format: Annotated[str, typer.Option(help="json (for log shippers) or console")] = "json",
    log_level: Annotated[str, typer.Option(help="debug | info | warning | error")] = "info",
    worker: Annotated[
        bool, typer.Option("--worker", help="run a share of the accounts catalog (`ordersync accounts`)")
    ] = False,
) -> None:
    """Run the engine against Alpaca or any compatible URL; keys from APCA_API_KEY_ID/APCA_API_SECRET_KEY."""
    from ordersync.bootstrap import build_engine
    from ordersync.config import secret_values
    from ordersync.logging import configure

    _log_options(log_format, log_level)
    if worker:
        run_worker(config, log_format, log_level.lower())
        return
    settings, credentials = _settings_and_keys(config)
    _check_store(settings.store.url)
    configure(json=log_format == "json", level=log_level.lower(), secrets=secret_values())
    engine, store, _ = build_engine(settings, credentials)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        err.print("waiting for the lease (another instance may be active) ...")

        def serve_metrics() -> None:
            # bound only once active, so a standby on the same host does not fight for the port
            if not settings.metrics.enabled:
                return
            from prometheus_client import start_http_server

            try:
                start_http_server(
                    settings.metrics.port, settings.metrics.host, registry=engine.metrics.registry
                )
            except OSError as e:
                _fail(
                    f"cannot serve metrics on {settings.metrics.host}:{settings.metrics.port}: {e.strerror}"
                )

        await run_engine(
            engine, stop, on_lease=serve_metrics, on_active=lambda: err.print("active: syncing orders")
        )

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
    from ordersync.domain.protection import PartialFillPolicy, PriceRule, ProtectionPlan, validate_plan
    from ordersync.engine import record_parent

    def rule(price: str | None, offset: str | None) -> PriceRule | None:
        if price is None and offset is None:
            return None
        return PriceRule(
            price=None if price is None else to_decimal(price, "price"),
            offset=None if offset is None else Decimal(offset),
        )

    url = _store_url(db, config)
    _check_submit_input(symbol, qty, client_order_id)
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
        if plan is not None:
            validate_plan(plan, order)  # before the store is opened: a refused submit writes nothing
        store = _open_store(url)
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
    watch: Annotated[
        bool, typer.Option("--watch", help="redraw every --interval seconds until Ctrl-C")
    ] = False,
    interval: Annotated[float, typer.Option(help="seconds between redraws with --watch")] = 2.0,
) -> None:
    """Show orders, their children and protection, and open alerts (exit 1 while any alert is open)."""
    import math
    import time

    from rich.console import Group

    from ordersync.reports import status_tables

    if not math.isfinite(interval) or not 0.1 <= interval <= 3600:
        _fail(f"--interval must be between 0.1 and 3600 seconds, was {interval}")
    store = _open_store(_store_url(db, config), must_exist=True)

    def snapshot() -> tuple[Group, bool]:
        with store.transaction() as tx:
            alerts = tx.open_alerts()
            tables = status_tables(tx.all_orders(), tx.active_plans(), alerts)
        return Group(*tables), bool(alerts)

    try:
        view, alerting = snapshot()
        if not watch:
            out.print(view)
            raise typer.Exit(1 if alerting else 0)
        with Live(view, console=out, refresh_per_second=1) as live, contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(interval)
                view, alerting = snapshot()
                live.update(view)
    finally:
        store.close()
    raise typer.Exit(1 if alerting else 0)


alerts_app = typer.Typer(help="Open alerts, and acknowledging them.", invoke_without_command=True)
app.add_typer(alerts_app, name="alerts")


@alerts_app.callback()
def alerts_list(
    ctx: typer.Context,
    db: Annotated[str | None, typer.Option(help="store URL")] = None,
    config: Annotated[Path | None, typer.Option(help="config file naming the store")] = None,
) -> None:
    """List the open alerts with their ids (exit 1 while any is open)."""
    if ctx.invoked_subcommand is not None:
        return
    from rich.table import Table
    from rich.text import Text

    store = _open_store(_store_url(db, config), must_exist=True)
    try:
        with store.transaction() as tx:
            alerts = tx.open_alerts()
    finally:
        store.close()
    table = Table(title=f"Open alerts: {len(alerts)}")
    for column in ("id", "since", "message"):
        table.add_column(column)
    for alert in alerts:
        since = alert.raised_at.isoformat(timespec="seconds")
        table.add_row(Text(f"{alert.kind}:{alert.key}"), Text(since), Text(alert.message))
    out.print(table)
    raise typer.Exit(1 if alerts else 0)


@alerts_app.command("ack")
def alerts_ack(
    alert_id: Annotated[str, typer.Argument(help="KIND:KEY as `ordersync alerts` lists it")],
    note: Annotated[str, typer.Option(help="why it is acknowledged (journaled)")] = "",
    db: Annotated[str | None, typer.Option(help="store URL")] = None,
    config: Annotated[Path | None, typer.Option(help="config file naming the store")] = None,
) -> None:
    """Acknowledge (close) an open alert; the engine raises it again if its condition still holds."""
    from ordersync.clocks import SystemClock
    from ordersync.ports import JournalEntry

    kind, sep, key = alert_id.partition(":")
    if not sep or not kind or not key:
        _fail(f"an alert id is KIND:KEY as `ordersync alerts` lists it, was {alert_id!r}")
    store = _open_store(_store_url(db, config), must_exist=True)
    try:
        now = SystemClock().now()
        with store.transaction() as tx:
            if not tx.resolve_alert(kind, key, now):
                _fail(f"no open alert {alert_id}")
            payload = {"alert": kind, "key": key, "note": note[:500]}
            tx.journal(JournalEntry(now, "alert_acknowledged", None, payload))
    finally:
        store.close()
    out.print(f"acknowledged {alert_id}")


@app.command()
def protect(
    parent_id: Annotated[str, typer.Argument(help="the parent whose protection a person canceled")],
    config: Annotated[Path | None, typer.Option(help="config file naming the store")] = None,
    db: Annotated[str | None, typer.Option(help="store URL (overrides the config's)")] = None,
) -> None:
    """Re-arm a parent a person unprotected: lift its operator hold; the engine protects it again.

    A cancel of our take-profit/stop-loss that ordersync did not ask for is a person's decision, so the
    engine holds the parent (alert `protection_cancelled_by_operator`) instead of re-arming it."""
    from ordersync.clocks import SystemClock
    from ordersync.domain.ids import ClientOrderId
    from ordersync.engine.context import UnknownParent, lift_hold

    store = _open_store(_store_url(db, config), must_exist=True)
    try:
        child = lift_hold(store, ClientOrderId(parent_id), SystemClock().now())
    except UnknownParent as e:
        _fail(e)
    finally:
        store.close()
    if child is None:
        out.print(f"{parent_id} is not on operator hold: nothing to do", markup=False)
    else:
        lifted = f"{parent_id}: hold lifted ({child} was canceled by hand); the engine re-arms it"
        out.print(lifted, markup=False)


@app.command()
def reconcile(
    config: Annotated[Path, typer.Option(help="YAML config naming the broker and the store")],
    db: Annotated[str | None, typer.Option(help="store URL (overrides the config's)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="report only; change nothing")] = False,
) -> None:
    """Compare local orders and positions with the broker's; fix what can be fixed.

    The broker is the one the config file names: without a config nothing is read or written."""
    from ordersync.bootstrap import build_engine

    settings, credentials = _settings_and_keys(config)
    if db is not None:
        settings = settings.model_copy(update={"store": settings.store.model_copy(update={"url": db})})
    _check_store(settings.store.url)
    engine, store, _ = build_engine(settings, credentials, with_lease=False)
    try:
        report = asyncio.run(engine.watch.reconcile(dry_run=dry_run))
    finally:
        store.close()
    counts = f"corrections: {report.corrections}  lookups: {report.lookups}"
    out.print(f"{counts}  discrepancies: {len(report.discrepancies)}")
    for d in report.discrepancies:
        out.print(f"  {d.kind} {d.key}: {d.detail}", markup=False)
    if report.notes:  # others' orders and shares: reported, not discrepancies of ours
        out.print(f"others (not ours, left alone): {len(report.notes)}")
    for n in report.notes:
        out.print(f"  {n.kind} {n.key}: {n.detail}", markup=False)
    raise typer.Exit(1 if report.discrepancies else 0)


ANALYZE_FORMATS = ("md", "json", "html")


@app.command()
def analyze(
    logs: Annotated[
        list[Path] | None,
        typer.Argument(
            help="logs (any format, plain or gzip; - for stdin) and broker exports (orders, fills)"
        ),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="md, json or html")] = "md",
    db: Annotated[str | None, typer.Option(help="analyze ordersync's own journal at this store URL")] = None,
    still_failing_hours: Annotated[
        str, typer.Option(help="report parents still failing after N hours")
    ] = "1",
    verify: Annotated[
        bool,
        typer.Option("--verify", help="also read the named orders and positions at the broker (read-only)"),
    ] = False,
    config: Annotated[Path | None, typer.Option(help="config file (broker URL) for --verify")] = None,
    verify_requests: Annotated[
        int, typer.Option(help="at most this many broker reads for --verify (of the 200/min budget)")
    ] = 50,
) -> None:
    """Write the incident report from logs and broker exports, or from ordersync's journal.

    Exit codes (docs/forensics.md): 0 no `40310000` refusal, 1 refusals found, 2 bad input. With
    --verify: 1 while anything is unprotected at the broker now, else 0."""
    from ordersync.forensics import LogInputError, analyze_paths, analyze_records

    if fmt not in ANALYZE_FORMATS:
        _fail(ValueError(f"--format must be md or json or html, was {fmt!r}"))
    hours = _analyze_hours(still_failing_hours)
    if not logs and not db:
        _fail(ValueError("give log files, or --db URL for ordersync's own journal"))
    spool: _JsonSpool | None = None
    try:
        if db:
            from ordersync.reports import journal_records
            from ordersync.store import open_store

            store = open_store(db, migrate=False)
            try:
                report = analyze_records(journal_records(store), source=db, still_failing_hours=hours)
            finally:
                store.close()
        else:
            from datetime import UTC, datetime

            spool = _json_spool() if fmt == "json" else None
            report = analyze_paths(
                logs or [],
                progress=sys.stderr.isatty(),
                still_failing_hours=hours,
                today=datetime.now(UTC),  # the edge's clock: only for syslog years read from stdin
                on_row=spool.write_row if spool else None,
            )
    except LogInputError as e:
        _fail(e)
    check = _verify_at_broker(report, config, verify_requests) if verify else None
    _write_report(report, fmt, check, spool)
    if check is not None:
        raise typer.Exit(1 if check.unprotected_now else 0)
    raise typer.Exit(1 if report.summary.issues else 0)


def _check_submit_input(symbol: str, qty: str, client_order_id: str | None) -> None:
    # what Alpaca would refuse anyway, refused here before anything is written (docs/operations.md)
    import re
    from decimal import Decimal, InvalidOperation

    if not re.fullmatch(r"[A-Z][A-Z0-9.]{0,15}(/[A-Z]{2,6})?", symbol):
        _fail(f"--symbol must be an upper-case ticker such as AAPL or BRK.B, was {symbol[:40]!r}")
    try:
        amount = Decimal(qty)
    except InvalidOperation:
        _fail(f"--qty must be a number, was {qty[:40]!r}")
    if not amount.is_finite() or amount <= 0 or amount > Decimal(10) ** 9:
        _fail(f"--qty must be positive and at most 1000000000, was {qty[:40]}")
    if -amount.as_tuple().exponent > 9:  # type: ignore[operator]
        _fail(f"--qty has more than 9 decimals: {qty[:40]}")
    if client_order_id is not None and (
        "~" in client_order_id or not client_order_id.isascii() or not client_order_id.isprintable()
    ):
        _fail("--client-order-id must be printable ASCII without '~' (reserved for protective children)")


def _verify_at_broker(report: object, config: Path | None, max_requests: int) -> Any:
    # issue 19: read-only reads through the same adapter `run` uses; keys from the environment
    import asyncio

    from ordersync.brokers.alpaca import AlpacaBroker
    from ordersync.clocks import SystemClock
    from ordersync.domain.errors import OrderSyncError
    from ordersync.forensics import IncidentReport
    from ordersync.incident_check import BUDGET_PER_MINUTE, check_at_broker

    assert isinstance(report, IncidentReport)
    if not 2 <= max_requests <= BUDGET_PER_MINUTE:
        _fail(ValueError(f"--verify-requests must be 2 to {BUDGET_PER_MINUTE}, was {max_requests}"))
    settings, keys = _settings_and_keys(config)
    broker = AlpacaBroker(
        keys.key_id.get_secret_value(),
        keys.secret_key.get_secret_value(),
        clock=SystemClock(),
        base_url=settings.broker.base_url,
        paper=settings.broker.paper,
        timeout_s=settings.broker.timeout_s,
        requests_per_minute=settings.broker.requests_per_minute,
    )
    try:
        if not sys.stderr.isatty():  # a log or cron: one plain progress line per read on stderr
            return asyncio.run(check_at_broker(report, broker, max_requests=max_requests, on_read=_read_line))
        from rich.progress import Progress

        with Progress(console=err, transient=True) as bar:
            task = bar.add_task("reading at the broker", total=max_requests)
            return asyncio.run(
                check_at_broker(
                    report,
                    broker,
                    max_requests=max_requests,
                    on_read=lambda spent, _most: bar.update(task, completed=spent),
                )
            )
    except OrderSyncError as e:
        _fail(e)


def _read_line(spent: int, most: int) -> None:
    sys.stderr.write(f"verify: broker read {spent} of at most {most}\n")
    sys.stderr.flush()


def _analyze_hours(text: str) -> float:
    # a finite number >= 0, or exit 2 with one line (typer's own float parsing accepts nan and inf)
    import math

    try:
        hours = float(text)
    except ValueError:
        hours = math.nan
    if not math.isfinite(hours) or hours < 0:
        _fail(ValueError(f"--still-failing-hours must be a finite number of hours >= 0, was {text!r}"))
    return hours


class _JsonSpool:
    """The `parents` rows as JSON lines in a temporary file, written once while the report is built.

    Building 150 000 rows a second time to write them cost as much as the whole analysis; the file (on
    disk, not in memory) is read back in order when the JSON is written.
    """

    def __init__(self) -> None:
        import tempfile

        from ordersync.forensics.render_json import parent_json

        # unlinked at once by the OS; closed by `_write_report` once the rows are copied out
        self.file = tempfile.TemporaryFile("w+", encoding="utf-8", newline="\n")  # noqa: SIM115
        self._json = parent_json

    def write_row(self, row: Any) -> None:
        self.file.write(self._json(row) + "\n")

    def rows(self) -> Iterator[str]:
        self.file.seek(0)
        return (line.rstrip("\n") for line in self.file)


def _json_spool() -> _JsonSpool:
    return _JsonSpool()


def _write_report(report: object, fmt: str, check: Any = None, spool: _JsonSpool | None = None) -> None:
    # streamed piece by piece: the JSON of a huge log is never held whole in memory
    from ordersync.forensics import IncidentReport, render_markdown
    from ordersync.forensics.render_html import iter_html
    from ordersync.forensics.render_json import iter_json

    assert isinstance(report, IncidentReport)
    write = sys.stdout.write
    if fmt == "json":
        extra: list[tuple[str, str]] = []
        if check is not None:  # the validation is one more top-level key
            from ordersync.incident_check import check_json

            extra.append(("validation", check_json(check)))
        pieces = iter_json(report, extra, parents=spool.rows() if spool else None)
    elif fmt == "html":
        sections: Any = ()
        if check is not None:
            from ordersync.incident_check import iter_check_html

            sections = iter_check_html(check)
        pieces = iter_html(report, extra=sections)
    else:
        text = render_markdown(report)
        if check is not None:
            from ordersync.incident_check import render_check_markdown

            text += "\n" + render_check_markdown(check)
        pieces = iter((text,))
    for piece in pieces:
        write(piece)
    sys.stdout.flush()
    if spool is not None:
        spool.file.close()


@app.command()
def version() -> None:
    """Print the version."""
    out.print(__version__)


def main() -> None:
    """Console-script entry point."""
    app()
