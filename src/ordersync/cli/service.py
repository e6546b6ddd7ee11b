"""The two long-running commands: ``ordersync sim serve`` (the simulator) and ``ordersync run`` (the engine).

``run`` stands by for the lease, starts, and syncs until SIGINT/SIGTERM; a signal ends whichever phase it
is in at once (standing by and starting up can each take minutes), and a lost lease exits 1 so a supervisor
restarts the instance as a standby (docs/operations.md §3).
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Annotated

import typer

from ordersync.cli.common import check_store, err, fail, settings_and_keys


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
        from ordersync.cli.accounts import run_worker

        run_worker(config, log_format, log_level.lower())
        return
    settings, credentials = settings_and_keys(config)
    check_store(settings.store.url)
    configure(json=log_format == "json", level=log_level.lower(), secrets=secret_values())
    engine, store, _ = build_engine(settings, credentials)

    def serve_metrics() -> None:
        # bound only once the lease is held, so a standby on the same host does not fight for the port
        if not settings.metrics.enabled:
            return
        from prometheus_client import start_http_server

        try:
            start_http_server(settings.metrics.port, settings.metrics.host, registry=engine.metrics.registry)
        except OSError as e:
            fail(f"cannot serve metrics on {settings.metrics.host}:{settings.metrics.port}: {e.strerror}")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
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
