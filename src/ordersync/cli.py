"""The ``ordersync`` command line (typer + rich): parse, call, render. Exit codes per DESIGN.md §3:
0 success, 1 the run found problems, 2 bad input (one line on stderr)."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.live import Live

from ordersync import __version__

if TYPE_CHECKING:
    from ordersync.config import Credentials, Settings

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
    mode: Annotated[str, typer.Option(help="safe (ordersync) or naive (the seed's platform)")] = "safe",
    scenario: Annotated[Path | None, typer.Option(help="scenario YAML (default: the seed incident)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as one JSON object")] = False,
    db: Annotated[
        str | None, typer.Option(help="store URL for safe mode (default: a temporary SQLite)")
    ] = None,
    log: Annotated[
        Path | None, typer.Option(help="write the naive platform's log here (seed format)")
    ] = None,
) -> None:
    """Replay a scenario on the embedded simulator and summarize what the broker saw."""
    from ordersync.demo.run import DemoOptions, run_demo
    from ordersync.demo.view import live_view, summary_table
    from ordersync.sim.scenarios import ScenarioError, default_scenario, load_scenario

    if mode not in ("safe", "naive"):
        _fail(ValueError(f"--mode must be safe or naive, was {mode!r}"))
    try:
        chosen = load_scenario(scenario) if scenario else default_scenario()
    except ScenarioError as e:
        _fail(e)
    from ordersync.logging import configure

    configure(json=False, level="warning")  # engine warnings go to stderr; stdout stays the summary / JSON
    options = DemoOptions(mode=mode, db_url=db, log_path=log)
    if as_json:
        summary = asyncio.run(run_demo(chosen, options))
        out.print_json(json.dumps(summary.as_dict()))
    else:
        with Live(console=err, refresh_per_second=4, transient=True) as live:
            summary = asyncio.run(
                run_demo(chosen, options, lambda state: live.update(live_view(mode, state)))
            )
        out.print(summary_table(summary))
    raise typer.Exit(1 if summary.problems else 0)


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

            report = analyze_paths(
                logs or [],
                progress=sys.stderr.isatty(),
                still_failing_hours=hours,
                today=datetime.now(UTC),  # the edge's clock: only for syslog years read from stdin
            )
    except LogInputError as e:
        _fail(e)
    check = _verify_at_broker(report, config, verify_requests) if verify else None
    _write_report(report, fmt, check)
    if check is not None:
        raise typer.Exit(1 if check.unprotected_now else 0)
    raise typer.Exit(1 if report.summary.issues else 0)


def _verify_at_broker(report: object, config: Path | None, max_requests: int) -> Any:
    # issue 19: read-only reads through the same adapter `run` uses; keys from the environment
    import asyncio

    from ordersync.brokers.alpaca import AlpacaBroker
    from ordersync.clocks import SystemClock
    from ordersync.domain.errors import OrderSyncError
    from ordersync.forensics import IncidentReport
    from ordersync.incident_check import check_at_broker

    assert isinstance(report, IncidentReport)
    if max_requests < 2:
        _fail(ValueError(f"--verify-requests must be 2 or more, was {max_requests}"))
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
        if not sys.stderr.isatty():
            return asyncio.run(check_at_broker(report, broker, max_requests=max_requests))
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


def _write_report(report: object, fmt: str, check: Any = None) -> None:
    # streamed piece by piece: the JSON of a huge log is never held whole in memory
    from ordersync.forensics import IncidentReport, render_markdown
    from ordersync.forensics.render_html import iter_html
    from ordersync.forensics.render_json import iter_json

    assert isinstance(report, IncidentReport)
    write = sys.stdout.write
    if fmt == "json":
        pieces = iter_json(report)
        if check is not None:  # the validation goes in as one more key before the closing brace
            from ordersync.incident_check import check_to_dict

            body = "".join(pieces).rstrip().removesuffix("}")
            pieces = iter((body, ',\n  "validation": ', json.dumps(check_to_dict(check), indent=2), "\n}\n"))
    elif fmt == "html":
        pieces = iter_html(report)
        if check is not None:
            from html import escape

            from ordersync.incident_check import render_check_markdown

            section = f"<h2>Validation at the broker</h2><pre>{escape(render_check_markdown(check))}</pre>"
            page = "".join(pieces).replace("</body></html>", section + "</body></html>")
            pieces = iter((page,))
    else:
        text = render_markdown(report)
        if check is not None:
            from ordersync.incident_check import render_check_markdown

            text += "\n" + render_check_markdown(check)
        pieces = iter((text,))
    for piece in pieces:
        write(piece)
    sys.stdout.flush()


@app.command()
def version() -> None:
    """Print the version."""
    out.print(__version__)


def main() -> None:
    """Console-script entry point."""
    app()
