"""The Alpaca adapter: REST through alpaca-py's TradingClient, trade_updates through a small stream client.

Split by concern (docs/architecture.md §10): ``mapping`` turns SDK models into domain views, ``errors``
classifies
Alpaca failures, ``broker`` is the REST port, ``stream`` the event port.
"""

from ordersync.brokers.alpaca.broker import AlpacaBroker
from ordersync.brokers.alpaca.stream import AlpacaStream

__all__ = ["AlpacaBroker", "AlpacaStream"]
