"""The async runtime: stream intake, catch-up polling, reconciliation, release gate, alerts.

It depends on the domain and the ports only (an import contract keeps it so); the broker and the store
are injected by ``ordersync.bootstrap``.
"""

from ordersync.engine.options import EngineOptions
from ordersync.engine.supervisor import Engine, Notification, record_parent

__all__ = ["Engine", "EngineOptions", "Notification", "record_parent"]
