"""Prometheus metrics of one engine (own registry, so several engines can live in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class EngineMetrics:
    """The counters and gauges ``ordersync run`` serves on /metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.observations = Counter(
            "ordersync_observations", "Broker observations applied", ["source", "outcome"], registry=r
        )
        self.submits = Counter("ordersync_submits", "Orders sent to the broker", ["role"], registry=r)
        self.rejections = Counter(
            "ordersync_broker_rejections", "Submits the broker refused", ["kind"], registry=r
        )
        self.alerts = Counter("ordersync_alerts_raised", "Alerts raised", ["kind"], registry=r)
        self.open_alerts = Gauge("ordersync_open_alerts", "Alerts currently open", ["kind"], registry=r)
        self.unprotected_age = Gauge(
            "ordersync_unprotected_age_seconds", "Oldest unprotected fill age", registry=r
        )
        self.stream_up = Gauge(
            "ordersync_stream_connected", "1 while the trade_updates stream is up", registry=r
        )
        self.catch_ups = Counter(
            "ordersync_catch_ups", "Catch-up reads after stream loss", ["reason"], registry=r
        )
        self.lease_held = Gauge(
            "ordersync_lease_held",
            "1 while this instance holds the lease (0: standby, lost or unconfirmed)",
            registry=r,
        )
        self.unknown_orders = Gauge(
            "ordersync_unknown_submits", "Submits whose outcome is unknown", registry=r
        )
