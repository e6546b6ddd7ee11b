"""One simulator instance: the exchange, its stream hub, faults, rate limiter and counters, wired together.

`Simulator` is what the REST app, the control API and `SimServer` share. It holds no logic of its own beyond
the wiring: credentials (the configured key pair, or any non-empty pair when none is configured), scheduled
stream drops from the fault config, the state snapshot of `/sim/state`, and the background ticker that fires
timed events for real and fast clocks (and zero-latency events for a stepped clock)."""

from __future__ import annotations

import asyncio
import hmac

from .actions import ActionRunner
from .clock import SimClock
from .counters import Counters
from .exchange import Exchange
from .faults import FaultConfig, FaultInjector
from .ratelimit import RateLimiter
from .scenarios import Scenario, ScenarioError
from .stream import StreamHub
from .wire import JsonDict

__all__ = ["TICK_INTERVAL_S", "Simulator"]

TICK_INTERVAL_S = 0.01  # real seconds between ticker passes


class Simulator:
    """A scenario running on a clock, ready to be served."""

    def __init__(
        self, scenario: Scenario, clock: SimClock, api_key: str | None = None, secret_key: str | None = None
    ) -> None:
        self.scenario = scenario
        self.clock = clock
        self._credentials = (api_key, secret_key) if api_key and secret_key else None
        self.counters = Counters()
        self.faults = FaultInjector(scenario.faults, self.counters, default_seed=scenario.seed)
        self.hub = StreamHub(self.faults, self.counters, self.check_credentials)
        try:
            self.exchange = Exchange(scenario.exchange_config(), clock, self.hub)
        except ValueError as e:
            raise ScenarioError(f"scenario {scenario.name!r}: {e}") from None
        self.faults.bind_clock(clock, self.exchange.started_at)
        self.exchange.venue.omit_sibling_event = self.faults.omit_sibling_event
        self.actions = ActionRunner(self.exchange, scenario.parents, scenario.actions)
        self.limiter = RateLimiter(scenario.rate_limit_per_min, clock)
        self._schedule_stream_drops(scenario.faults, elapsed_s=0.0)

    def check_credentials(self, key: str, secret: str) -> bool:
        """Accept the configured pair, or any non-empty pair when none is configured."""
        if self._credentials is None:
            return bool(key) and bool(secret)
        want_key, want_secret = self._credentials
        return hmac.compare_digest(key, want_key or "") and hmac.compare_digest(secret, want_secret or "")

    def set_faults(self, config: FaultConfig) -> None:
        """Replace the fault configuration at runtime; `stream_drop_at_s` then counts from now."""
        self.faults.configure(config)
        elapsed = (self.clock.now() - self.exchange.started_at).total_seconds()
        self._schedule_stream_drops(config, elapsed_s=elapsed)

    def state(self) -> JsonDict:
        """The whole observable state: books, counters, faults, rate limit and stream connections."""
        state = self.exchange.snapshot()
        state["counters"] = self.counters.snapshot()
        state["faults"] = self.faults.config.model_dump(mode="json")
        state["rate_limit"] = self.limiter.snapshot()
        state["stream"] = {"listening": self.hub.listening_count()}
        state["scenario"] = self.scenario.name
        state["actions"] = self.actions.log()
        state["counters"]["actions"] = self.actions.counts()
        return state

    async def run_ticker(self) -> None:
        """Fire due timed events every TICK_INTERVAL_S until cancelled."""
        while True:
            self.exchange.tick()
            self.hub.flush_stale()
            await asyncio.sleep(TICK_INTERVAL_S)

    def http_latency_s(self, method: str, route: str, symbol: str | None) -> float:
        """Virtual seconds before a /v2 answer: the scenario's `latency.routes` (else `http_s`) plus the
        latency of the active fault windows."""
        latency = self.scenario.latency
        base = latency.routes.get(f"{method} {route}", latency.routes.get(route, latency.http_s))
        return base + self.faults.window_latency_s(method, route, symbol)

    def _schedule_stream_drops(self, config: FaultConfig, elapsed_s: float) -> None:
        for at_s in config.stream_drop_at_s:
            self.exchange.schedule_at(elapsed_s + at_s, "stream drop", self._drop_streams)

    def _drop_streams(self) -> None:
        self.hub.disconnect_all()
