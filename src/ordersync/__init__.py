"""ordersync: order-lifecycle and synchronization engine for the Alpaca Trading API.

The broker is the truth: local state converges to it, dependent orders are released only for
broker-confirmed fills, and every decision is journaled durably before it acts (see docs/architecture.md §2).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
