"""A worker's ``/metrics``: every engine's series with an ``account`` label, and the worker's own gauges.

Each engine keeps its own registry (``engine/metrics.py``), so series never collide in one process. The
worker re-labels them on every scrape instead of sharing one registry: an engine that stops (its account
moved to another worker) simply drops out of the next scrape, with nothing to unregister. Labels stay
bounded: ``account`` adds one series per account the worker runs, never one per order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ordersync.engine import Engine

__all__ = ["FleetCollector", "fleet_registry"]


class FleetCollector(Collector):
    """Collects the engines that ``engines()`` returns (account id -> engine) at scrape time."""

    def __init__(self, engines: Callable[[], Mapping[str, Engine]], active: Callable[[], set[str]]) -> None:
        self._engines = engines
        self._active = active

    def collect(self) -> Iterable[Metric]:
        engines = dict(self._engines())
        families: dict[str, Metric] = {}
        for account_id, engine in sorted(engines.items()):
            for metric in engine.metrics.registry.collect():
                family = families.get(metric.name)
                if family is None:
                    family = families[metric.name] = Metric(metric.name, metric.documentation, metric.type)
                for sample in metric.samples:
                    labels = {**sample.labels, "account": account_id}
                    family.add_sample(sample.name, labels, sample.value, sample.timestamp, sample.exemplar)
        yield from families.values()
        active = self._active()
        accounts = GaugeMetricFamily(
            "ordersync_worker_accounts", "Accounts this worker runs, by state", labels=["state"]
        )
        accounts.add_metric(["active"], len(active & engines.keys()))
        accounts.add_metric(["standby"], len(engines.keys() - active))
        yield accounts


def fleet_registry(
    engines: Callable[[], Mapping[str, Engine]], active: Callable[[], set[str]]
) -> CollectorRegistry:
    """A registry serving a worker's engines (see ``FleetCollector``)."""
    registry = CollectorRegistry()
    registry.register(FleetCollector(engines, active))
    return registry
