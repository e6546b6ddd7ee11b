"""The chaos harness: a seeded scenario generator, an engine worker that may be SIGKILLed at any time, and a
driver that checks every invariant of docs/architecture.md §2 against the simulator's books afterwards.

A composition root like ``ordersync.bootstrap``: it wires the real engine, store, broker adapter and
simulator, and changes none of them. Entry points: ``python -m tools.chaos`` (``driver.py``),
``python -m tools.chaos.worker`` and ``python -m tools.chaos.generate``.
"""
