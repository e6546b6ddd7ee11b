"""The pure domain core: orders, their lifecycle, protection plans and reconciliation decisions.

Nothing here performs I/O, awaits, logs or imports an adapter or SDK (an import-linter contract keeps it
so): every rule that decides what ordersync does is a plain function of values, so it can be tested
exhaustively and replayed exactly after a crash.
"""
