"""The two long-running commands: ``ordersync sim serve`` (the simulator) and ``ordersync run`` (the engine).

``run`` stands by for the lease, starts, and syncs until SIGINT/SIGTERM; a signal ends whichever phase it
is in at once (standing by and starting up can each take minutes), and a lost lease exits 1 so a supervisor
restarts the instance as a standby (docs/operations.md §3).
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ordersync.cli.common import check_store, err, fail, settings_and_keys

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from ordersync.config import Settings


def sim_serve(
    host: Annotated[str, typer.Option(help="bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8800,
    scenario: Annotated[Path | None, typer.Option(help="scenario YAML")] = None,
    clock: Annotated[str, typer.Option(help="real | fast:N | stepped | flowing")] = "real",
) -> None:
    """Serve the simulator for alpaca-py (TradingClient/TradingStream with url_override)."""
    from ordersync.sim.clock import ClockSpecError
    from ordersync.sim.scenarios import ScenarioError
    from ordersync.sim.server import ServeError, serve

    if not 0 <= port <= 65535:
        fail(f"--port must be between 0 and 65535, was {port}")
    try:
        serve(host, port, scenario, clock)
    except (ScenarioError, ClockSpecError, ServeError) as e:
        fail(e)


LOG_FORMATS = ("json", "console")
LOG_LEVELS = ("debug", "info", "warning", "error")


def _log_options(log_format: str, log_level: str) -> None:
    if log_format not in LOG_FORMATS:
        fail(f"--log-format must be json or console, was {log_format!r}")
    if log_level.lower() not in LOG_LEVELS:
        fail(f"--log-level must be one of {', '.join(LOG_LEVELS)}, was {log_level!r}")


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
    from ordersync.runner import run_engine

    _log_options(log_format, log_level)
    if worker:
        _run_worker(config, log_format, log_level.lower())
        return
    settings, credentials = settings_and_keys(config)
    check_store(settings.store.url)
    configure(json=log_format == "json", level=log_level.lower(), secrets=secret_values())
    engine, store, _ = build_engine(settings, credentials)

    def serve_metrics() -> None:  # bound only once the lease is held: a standby never holds the port
        _serve_metrics(settings, engine.metrics.registry)

    async def main() -> None:
        stop = _stop_on_signals()
        err.print("waiting for the lease (another instance may be active) ...")
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


def _run_worker(config: Path, log_format: str, log_level: str) -> None:
    """``ordersync run --worker``: run this process's share of the catalog's accounts until a signal."""
    from ordersync.cli.accounts import open_catalog
    from ordersync.config import secret_values
    from ordersync.fleet.metrics import fleet_registry
    from ordersync.fleet.worker import Worker, alpaca_factory
    from ordersync.logging import configure

    settings, catalog = open_catalog(config)
    secrets = settings.fleet.secrets_dir
    configure(
        json=log_format == "json", level=log_level, secrets=secret_values(Path(secrets) if secrets else None)
    )
    worker = Worker(settings, catalog, alpaca_factory(catalog))

    async def main() -> None:
        stop = _stop_on_signals()
        _serve_metrics(
            settings,
            fleet_registry(lambda: {a: run.engine for a, run in worker.runs.items()}, worker.active_accounts),
        )
        err.print(f"worker {worker.worker_id}: sharing out the accounts", markup=False)
        await worker.run(stop)

    try:
        asyncio.run(main())
    finally:
        catalog.close()


def _stop_on_signals() -> asyncio.Event:
    # SIGINT/SIGTERM end the current phase at once (inside the running loop)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def _serve_metrics(settings: Settings, registry: CollectorRegistry) -> None:
    if not settings.metrics.enabled:
        return
    from prometheus_client import start_http_server

    try:
        start_http_server(settings.metrics.port, settings.metrics.host, registry=registry)
    except OSError as e:
        fail(f"cannot serve metrics on {settings.metrics.host}:{settings.metrics.port}: {e.strerror}")
