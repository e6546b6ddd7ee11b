"""Serving the simulator: `SimServer` (uvicorn in a background thread, for tests and the demo) and `serve()`.

`SimServer` binds its own socket first, so `port=0` picks a free port and `base_url` is known before the
first request; it runs uvicorn in a daemon thread the way httpx's test suite does, and offers in-process
callers the same things the control API does (state snapshot, clock advance, prices, manual fills, faults,
stream drops), thread-safe through the exchange's lock. `serve()` is the blocking entry point behind
`ordersync sim serve`: uvicorn in the main thread, which shuts down cleanly on SIGINT/SIGTERM."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import FrameType, TracebackType

import uvicorn

from .app import build_app
from .banner import startup_banner
from .clock import SimClock, SteppedClock, parse_clock_spec
from .faults import FaultConfig
from .scenarios import Scenario, default_scenario, load_scenario
from .simulator import Simulator
from .wire import JsonDict

__all__ = ["ServeError", "SimServer", "serve"]

log = logging.getLogger(__name__)

STARTUP_TIMEOUT_S = 10.0


class ServeError(RuntimeError):
    """`serve()` cannot start (the address cannot be bound); the message is one line."""


class SimServer:
    """An Alpaca-compatible simulator on loopback, in a background thread."""

    def __init__(
        self,
        scenario: Scenario | None = None,
        clock: SimClock | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        secret_key: str | None = None,
    ) -> None:
        self.scenario = scenario or default_scenario()
        self.clock = clock or SteppedClock(self.scenario.start or datetime.now(tz=UTC))
        self.simulator = Simulator(self.scenario, self.clock, api_key, secret_key)
        self.host = host
        self._requested_port = port
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> SimServer:
        """Bind, start uvicorn in a thread and wait until it serves.

        Raises:
            RuntimeError: uvicorn did not start within STARTUP_TIMEOUT_S.
        """
        self._socket = socket.create_server((self.host, self._requested_port))
        # Accepted sockets inherit TCP_NODELAY; without it every response waits ~40 ms for a delayed ACK.
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._server = uvicorn.Server(
            _uvicorn_config(self.simulator, self.host, self._socket.getsockname()[1])
        )
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="ordersync-sim", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                self.stop()
                raise RuntimeError(f"simulator did not start on {self.host}:{self.port}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Drop stream connections, stop uvicorn and join its thread."""
        if self._server is not None:
            self.simulator.disconnect_all()
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- addresses -----------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (the real one when constructed with port=0)."""
        if self._socket is None:
            return self._requested_port
        port: int = self._socket.getsockname()[1]
        return port

    @property
    def base_url(self) -> str:
        """For `TradingClient(url_override=...)`: no trailing slash, no /v2."""
        return f"http://{self.host}:{self.port}"

    @property
    def stream_url(self) -> str:
        """For `TradingStream(url_override=...)`."""
        return f"ws://{self.host}:{self.port}/stream"

    # -- in-process control (thread-safe) ---------------------------------------------------------------

    def snapshot(self, account: str | None = None) -> JsonDict:
        """The same data as GET /sim/state (of the named account; the first by default)."""
        return self.simulator.state(self.simulator.account_named(account))

    def accounts(self) -> list[JsonDict]:
        """The same data as GET /sim/accounts."""
        return self.simulator.accounts_summary()

    def now(self) -> datetime:
        return self.clock.now()

    def advance(self, seconds: float) -> datetime:
        """Advance a stepped clock, firing every due event at its own time; return the new now."""
        return self.advance_to(self.clock.now() + timedelta(seconds=seconds))

    def advance_to(self, t: datetime) -> datetime:
        """Advance a stepped clock to `t`.

        Raises:
            RuntimeError: the clock is real or fast.
        """
        if not isinstance(self.clock, SteppedClock):
            raise RuntimeError(f"the simulator clock is {type(self.clock).__name__}, not stepped")
        self.simulator.exchange.advance_to(t)
        return self.clock.now()

    def set_price(self, symbol: str, price: Decimal | str) -> None:
        """Move (or list) a symbol in the market every account trades in."""
        self.simulator.set_price(symbol, Decimal(str(price)))

    def fill(
        self,
        order_id: str | None = None,
        client_order_id: str | None = None,
        qty: Decimal | str | None = None,
        price: Decimal | str | None = None,
        account: str | None = None,
    ) -> JsonDict:
        """Fill an order now (all of it at the current price by default); returns the order JSON."""
        return self.simulator.account_named(account).exchange.manual_fill(
            order_id, client_order_id, _opt_decimal(qty), _opt_decimal(price)
        )

    def set_faults(self, config: FaultConfig | JsonDict, account: str | None = None) -> None:
        faults = config if isinstance(config, FaultConfig) else FaultConfig.model_validate(config)
        self.simulator.set_faults(faults, self.simulator.account_named(account))

    def set_rate_limit(self, limit_per_min: int) -> None:
        self.simulator.limiter.set_limit(limit_per_min)

    def disconnect_streams(self, account: str | None = None) -> int:
        """Drop every stream connection now (of one account when named); returns how many."""
        if account is None:
            return self.simulator.disconnect_all()
        return self.simulator.account_named(account).hub.disconnect_all()

    def stream_listeners(self, account: str | None = None) -> int:
        """Listening stream connections (of one account when named, else of all)."""
        if account is None:
            return sum(a.hub.listening_count() for a in self.simulator.accounts)
        return self.simulator.account_named(account).hub.listening_count()


def serve(host: str, port: int, scenario_path: Path | None, clock_spec: str) -> None:
    """Run the simulator in the foreground until SIGINT/SIGTERM (the `ordersync sim serve` command).

    Keys: the pair in APCA_API_KEY_ID / APCA_API_SECRET_KEY when set, otherwise any non-empty pair. Prints
    the start-up banner (URLs, keys, clock, control API, symbols) on stderr once the port is bound.

    Raises:
        ServeError: the address cannot be bound.
        ScenarioError: the scenario file is missing or invalid.
        ClockSpecError: the clock spec is not real, fast:N or stepped.
    """
    scenario = load_scenario(scenario_path) if scenario_path is not None else default_scenario()
    clock = parse_clock_spec(clock_spec, scenario.start)
    simulator = Simulator(
        scenario,
        clock,
        os.environ.get("APCA_API_KEY_ID") or None,
        os.environ.get("APCA_API_SECRET_KEY") or None,
    )
    # Bind first, so the banner shows the real port (with --port 0 too) and nothing is printed for a port
    # that cannot be bound.
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = socket.create_server((host, port), family=family)
    except OSError as e:
        raise ServeError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    bound_port: int = listener.getsockname()[1]
    server = uvicorn.Server(_uvicorn_config(simulator, host, bound_port, log_level="info"))
    keys_from_env = bool(os.environ.get("APCA_API_KEY_ID") and os.environ.get("APCA_API_SECRET_KEY"))
    sys.stderr.write(startup_banner(simulator, host, bound_port, clock_spec, keys_from_env))
    sys.stderr.flush()
    # uvicorn stops gracefully on SIGINT/SIGTERM, then re-raises the signal to the handler in place before it
    # ran; a logging no-op handler there makes serve() simply return, so the CLI exits 0 after a clean stop.
    previous = {sig: signal.signal(sig, _stopped) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run(sockets=[listener])
    finally:
        listener.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stopped(signum: int, frame: FrameType | None) -> None:
    log.info("simulator stopped by signal %d", signum)


def _uvicorn_config(simulator: Simulator, host: str, port: int, log_level: str = "warning") -> uvicorn.Config:
    return uvicorn.Config(
        build_app(simulator),
        host=host,
        port=port,
        log_level=log_level,
        ws="websockets-sansio",  # the non-legacy websockets implementation: no deprecation warnings
        lifespan="on",
        timeout_graceful_shutdown=2,
    )


def _opt_decimal(value: Decimal | str | None) -> Decimal | None:
    return None if value is None else Decimal(str(value))
