"""The chaos harness: a seeded scenario generator, an engine worker that may be SIGKILLed at any time, and a
driver that checks every invariant of docs/architecture.md §2 against the simulator's books afterwards.

A development tool, not part of the installed package: run it from the repository's root. The worker builds
its engine with ``ordersync.bootstrap.wire`` like ``ordersync run`` (its crash points wrap the store and
broker the engine sees) and changes nothing in the engine, store, broker adapter or simulator. Entry points:
``python -m tools.chaos`` (``driver.py``), ``python -m tools.chaos.worker`` and
``python -m tools.chaos.generate``.
"""
