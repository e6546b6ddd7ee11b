"""``ordersync demo``: the seed incident replayed on the embedded simulator, safe mode vs the naive baseline.

The simulator runs in-process on loopback; the engine (or the naive platform) reaches it only through
alpaca-py over HTTP and the trade_updates websocket, exactly as it would reach Alpaca.
"""
