"""Fault injection: the broker's bad days, reproducible from a seed and settable at runtime.

Stream faults (decided once per event, for every listening connection): drop every connection
(`stream_drop_p` per event, or at `stream_drop_at_s` virtual seconds after start, or on `POST
/sim/stream/disconnect`), drop the event, duplicate it (same frame, same execution_id, even after a terminal
event, as Alpaca does), or hold it back and deliver it after the next one (reordering). HTTP faults on
`/v2/*` (optionally only on `routes`, written `"METHOD /path/template"` or `"/path/template"`): 5xx with a
probability, 429 bursts, a "lost response" where the request takes effect but the client gets a 504
(alpaca-py retries 504, so a retried POST then meets 422 40010001: realistic), a fixed extra latency, and
deterministic faults on the N-th matching request.

All random decisions come from one `random.Random(seed)`, so a scenario replays the same faults for the same
sequence of requests and events. Every injected fault is counted (see `counters.py`)."""

from __future__ import annotations

import math
import random
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .clock import SimClock
from .counters import Counters

__all__ = [
    "FaultConfig",
    "FaultInjector",
    "FaultRates",
    "FaultWindow",
    "HttpFault",
    "NthRequestFault",
    "StreamFault",
]

Probability = float
MAX_OFFSET_S = 10 * 366 * 86_400  # ten years of virtual time: further is a typo, not a scenario
FaultKind = Literal["500", "502", "503", "504", "429", "lost_response"]
StreamFault = Literal["disconnect", "drop", "duplicate", "reorder", "silent"]


class NthRequestFault(BaseModel):
    """Inject `fault` on `count` requests from the `nth` (1-based) matching `method`/`path`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    nth: int = Field(ge=1)
    count: int = Field(default=1, ge=1)
    fault: FaultKind
    method: str | None = None
    path: str | None = None


class FaultRates(BaseModel):
    """The probabilistic faults, shared by the whole-run config and its time windows."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    drop_event_p: Probability = Field(default=0.0, ge=0, le=1)
    duplicate_event_p: Probability = Field(default=0.0, ge=0, le=1)
    reorder_event_p: Probability = Field(default=0.0, ge=0, le=1)
    http_5xx_p: Probability = Field(default=0.0, ge=0, le=1)
    http_5xx_statuses: list[int] = Field(default_factory=lambda: [500, 503, 504])
    http_429_p: Probability = Field(default=0.0, ge=0, le=1)
    lost_response_p: Probability = Field(default=0.0, ge=0, le=1)
    # Real Alpaca sometimes sends no `canceled` event for the sibling of an OCO/bracket leg that filled
    # (docs/alpaca.md, "The omitted sibling cancel"); the books still cancel it, the event is withheld.
    omit_sibling_cancel_event_p: Probability = Field(default=0.0, ge=0, le=1)

    @field_validator("http_5xx_statuses")
    @classmethod
    def _server_errors(cls, value: list[int]) -> list[int]:
        if any(not 500 <= status <= 599 for status in value):
            raise ValueError("every status must be a 5xx code")
        return value


class FaultWindow(FaultRates):
    """Faults active only from `from_s` to `to_s` virtual seconds after the scenario start, optionally only
    for some symbols and/or routes. `stream_silent` drops every trade_updates event in the window (the
    connection stays up); `http_429_storm` answers every selected request 429 with
    `X-Ratelimit-Remaining: 0` and `X-Ratelimit-Reset` at the window's end; `latency_s` delays each selected
    request by that much virtual time."""

    from_s: float = Field(ge=0, le=MAX_OFFSET_S, allow_inf_nan=False)
    to_s: float = Field(gt=0, le=MAX_OFFSET_S, allow_inf_nan=False)
    symbols: list[str] = Field(default_factory=list)
    routes: list[str] = Field(default_factory=list)
    stream_silent: bool = False
    http_429_storm: bool = False
    latency_s: float = Field(default=0.0, ge=0, le=3600, allow_inf_nan=False)

    @model_validator(mode="after")
    def _ordered(self) -> FaultWindow:
        if self.to_s <= self.from_s:
            raise ValueError("to_s must be after from_s")
        return self


class FaultConfig(FaultRates):
    """The fault section of a scenario, also accepted by `POST /sim/faults`."""

    seed: int | None = None
    stream_drop_at_s: list[Annotated[float, Field(ge=0, le=MAX_OFFSET_S, allow_inf_nan=False)]] = Field(
        default_factory=list
    )
    stream_drop_p: Probability = Field(default=0.0, ge=0, le=1)
    http_429_burst: int = Field(default=1, ge=1, le=10_000)
    latency_ms: float = Field(default=0.0, ge=0, le=5000)
    routes: list[str] = Field(default_factory=list)
    on_request: list[NthRequestFault] = Field(default_factory=list)
    windows: list[FaultWindow] = Field(default_factory=list)


@dataclass(frozen=True)
class HttpFault:
    """What to do to one request: answer `status` before the handler, or let it run and lose the response.

    A 429 carries the `X-Ratelimit-Reset` it announces (Unix seconds): a storm window's end, or the next
    second for a random burst."""

    status: int
    lost_response: bool = False
    reset_epoch: int | None = None


class FaultInjector:
    """Seeded decisions about which faults hit which request or event; thread-safe."""

    def __init__(self, config: FaultConfig, counters: Counters, default_seed: int = 0) -> None:
        self._counters = counters
        self._lock = threading.Lock()
        self._default_seed = default_seed
        self._clock: SimClock | None = None
        self._start: datetime | None = None
        self.configure(config)

    def bind_clock(self, clock: SimClock, start: datetime) -> None:
        """Give the injector the virtual time its windows count from (the scenario's start)."""
        self._clock, self._start = clock, start

    def configure(self, config: FaultConfig) -> None:
        """Replace the configuration; restarts the random sequence and the N-th request counts."""
        with self._lock:
            self.config = config
            self._rng = random.Random(config.seed if config.seed is not None else self._default_seed)
            self._nth_seen = [0] * len(config.on_request)
            self._burst_left = 0

    def latency_s(self, method: str, route: str) -> float:
        config = self.config
        if config.latency_ms <= 0 or not _route_selected(config.routes, method, route):
            return 0.0
        self._counters.fault("latency")
        return config.latency_ms / 1000

    def window_latency_s(self, method: str, route: str, symbol: str | None) -> float:
        """Virtual seconds the active windows add before this request's answer."""
        delay = sum(w.latency_s for w in self._active(symbol, method, route))
        if delay > 0:
            self._counters.fault("window_latency")
        return delay

    def http_fault(self, method: str, route: str, symbol: str | None = None) -> HttpFault | None:
        """Decide the fault for one `/v2` request, if any, and count it."""
        with self._lock:
            fault = (
                self._nth_fault(method, route)
                or self._storm(method, route, symbol)
                or self._random_fault(method, route)
                or self._window_fault(method, route, symbol)
            )
        if fault is not None:
            self._counters.fault("lost_response" if fault.lost_response else f"http_{fault.status}")
        return fault

    def stream_fault(self, symbol: str | None = None) -> StreamFault | None:
        """Decide the fault for one trade_updates event, if any, and count it."""
        config = self.config
        windows = self._active(symbol)
        if any(w.stream_silent for w in windows):
            self._counters.fault("stream_silent")
            return "silent"
        with self._lock:
            draws = [
                ("disconnect", config.stream_drop_p),
                ("drop", config.drop_event_p),
                ("duplicate", config.duplicate_event_p),
                ("reorder", config.reorder_event_p),
            ]
            for window in windows:
                draws += [
                    ("drop", window.drop_event_p),
                    ("duplicate", window.duplicate_event_p),
                    ("reorder", window.reorder_event_p),
                ]
            chosen: StreamFault | None = None
            for kind, p in draws:
                if p > 0 and self._rng.random() < p and chosen is None:
                    chosen = kind  # type: ignore[assignment]
        if chosen is not None:
            self._counters.fault(f"stream_{chosen}")
        return chosen

    def omit_sibling_event(self, symbol: str) -> bool:
        """Whether to withhold the `canceled` event of an OCO/bracket sibling ended by a fill."""
        chances = [self.config.omit_sibling_cancel_event_p]
        chances += [w.omit_sibling_cancel_event_p for w in self._active(symbol)]
        with self._lock:
            omit = any(p > 0 and self._rng.random() < p for p in chances)
        if omit:
            self._counters.fault("omit_sibling_cancel_event")
        return omit

    def _elapsed_s(self) -> float | None:
        if self._clock is None or self._start is None:
            return None
        return (self._clock.now() - self._start).total_seconds()

    def _active(
        self, symbol: str | None, method: str | None = None, route: str | None = None
    ) -> list[FaultWindow]:
        windows = self.config.windows
        elapsed = self._elapsed_s() if windows else None
        if elapsed is None:
            return []
        return [
            w
            for w in windows
            if w.from_s <= elapsed < w.to_s
            and (not w.symbols or symbol in w.symbols)
            and (method is None or route is None or _route_selected(w.routes, method, route))
        ]

    def _storm(self, method: str, route: str, symbol: str | None) -> HttpFault | None:
        storms = [w for w in self._active(symbol, method, route) if w.http_429_storm]
        if not storms or self._start is None:
            return None
        end = max(self._start.timestamp() + w.to_s for w in storms)
        return HttpFault(429, reset_epoch=math.ceil(end))

    def _nth_fault(self, method: str, route: str) -> HttpFault | None:
        for index, rule in enumerate(self.config.on_request):
            if rule.method not in (None, method) or rule.path not in (None, route):
                continue
            self._nth_seen[index] += 1
            if rule.nth <= self._nth_seen[index] < rule.nth + rule.count:
                return _fault_of(rule.fault, self._next_second())
        return None

    def _random_fault(self, method: str, route: str) -> HttpFault | None:
        config = self.config
        if self._burst_left > 0:
            self._burst_left -= 1
            return HttpFault(429, reset_epoch=self._next_second())
        if not _route_selected(config.routes, method, route):
            return None
        return self._draw(config, method, route, burst=config.http_429_burst)

    def _window_fault(self, method: str, route: str, symbol: str | None) -> HttpFault | None:
        for window in self._active(symbol, method, route):
            fault = self._draw(window, method, route, burst=1)
            if fault is not None:
                return fault
        return None

    def _draw(self, rates: FaultRates, method: str, route: str, burst: int) -> HttpFault | None:
        if rates.http_429_p > 0 and self._rng.random() < rates.http_429_p:
            self._burst_left = burst - 1
            return HttpFault(429, reset_epoch=self._next_second())
        if rates.http_5xx_p > 0 and self._rng.random() < rates.http_5xx_p:
            return HttpFault(self._rng.choice(rates.http_5xx_statuses or [500]))
        is_submit = method == "POST" and route == "/v2/orders"
        if is_submit and rates.lost_response_p > 0 and self._rng.random() < rates.lost_response_p:
            return HttpFault(504, lost_response=True)
        return None

    def _next_second(self) -> int | None:
        if self._clock is None:
            return None
        return math.floor(self._clock.now().timestamp()) + 1


def _fault_of(kind: FaultKind, reset_epoch: int | None) -> HttpFault:
    if kind == "lost_response":
        return HttpFault(504, lost_response=True)
    status = int(kind)
    return HttpFault(status, reset_epoch=reset_epoch if status == 429 else None)


def _route_selected(routes: list[str], method: str, route: str) -> bool:
    return not routes or route in routes or f"{method} {route}" in routes
