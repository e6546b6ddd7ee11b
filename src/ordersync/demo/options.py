"""How a demo runs: the mode, the store, the platform baselines' intervals, and the embedded simulator's keys.

Apart from ``run.py`` so each mode's runner (``safe_run.py``, ``client_run.py``) can read them without
importing the driver that starts it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ordersync.demo.conductor import STALL_S

DEMO_KEY, DEMO_SECRET = "demo-key", "demo-secret"  # the embedded simulator's own keys, never real ones


DEFAULT_START = datetime(2025, 10, 10, 15, 59, tzinfo=UTC)  # the seed incident's first minute


@dataclass(frozen=True)
class DemoOptions:
    """How to run the demo."""

    mode: str = "safe"
    db_url: str | None = None
    log_path: Path | None = None
    naive_poll_interval_s: float = 30.0
    naive_max_child_attempts: int = 5
    poller_interval_s: float = 5.0
    stall_s: float = STALL_S  # real seconds without a step of virtual time before the demo fails


MODES = ("safe", "naive", "poller", "bracket")
