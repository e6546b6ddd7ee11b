"""Engine tunables, with units in their names (seconds of the injected clock)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EngineOptions:
    """How often and how patiently the engine does things; defaults suit Alpaca's 200 req/min."""

    # the bound on noticing a fill whatever the stream does: FILL activities are read at 0.9 of it
    # (loops.DETECT_FRACTION), so the read and the apply fit inside it
    poll_interval_s: float = 2.0
    # what the poller's own reads (activities, the orders they show behind, catch-ups) may spend a minute
    # while the stream is not trusted; protection, cancels and reconciliation come on top (§12's 60/min)
    poll_budget_per_min: float = 42.0
    stream_silence_s: float = 60.0  # no message for this long with open orders: stop trusting the stream
    reconcile_interval_s: float = 60.0  # full orders + positions reconciliation
    tick_s: float = 1.0  # release retries, alert ages
    release_backoff_base_s: float = 2.0
    release_backoff_cap_s: float = 300.0
    lookup_backoff_base_s: float = 1.0
    lookup_backoff_cap_s: float = 60.0
    lookups_before_not_found: int = 2  # an unknown submit is settled "never arrived" after this many 404s
    batch_max: int = 500  # observations applied per transaction
    unprotected_alert_s: float = 10.0
    # a lone exit held by the wash-trade rule this long has our blocking orders canceled (architecture §14)
    wash_trade_bound_s: float = 30.0
    # a native parent part-filled this long has its rest cancelled, then its fill protected (comparison §8)
    native_partial_bound_s: float = 30.0
    unknown_alert_s: float = 30.0
    drift_alert_runs: int = 2  # a discrepancy must persist this many reconciliations to alert
    lease_poll_s: float = 1.0  # a standby tries to take the lease this often
    startup_read_attempts: int = 5  # then start anyway; the start-up read goes on in the background
    read_attempts: int = 4  # a reconciliation's reads, each retried this often on a 5xx/429

    def __post_init__(self) -> None:
        for name in (
            "poll_interval_s",
            "poll_budget_per_min",
            "stream_silence_s",
            "reconcile_interval_s",
            "tick_s",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, was {getattr(self, name)}")
        for name in ("startup_read_attempts", "read_attempts", "drift_alert_runs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, was {getattr(self, name)}")
