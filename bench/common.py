"""Shared helpers of the benchmark scripts: result rows, ratio formatting, the table, timing, scratch stores.

Every figure a benchmark reports is a *ratio* measured side by side in one run (absolute times on shared
2-core machines are noise); the absolute values are printed beside it only so the ratio can be checked.
Scripts import this module as ``common`` (they run from ``bench/``, which Python puts on ``sys.path``).
"""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from ordersync.domain.ids import BrokerOrderId
from ordersync.domain.order import OrderStatus, new_order
from ordersync.store import open_store

PG_URL = os.environ.get("ORDERSYNC_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
HEADERS = ("#", "measure", "ordersync", "against", "ratio", "target")


@dataclass(frozen=True)
class Row:
    """One line of the results table."""

    bench: str  # "1 latency", "2 throughput", ...
    measure: str
    ordersync: str
    against: str  # the baseline or floor, named, with its value
    ratio: str  # ordersync / against, formatted by ``ratio``
    target: str = ""  # the target and whether it is met, when the issue sets one


def ratio(value: float | None, base: float | None) -> str:
    """Return ``value / base`` for the table: ``2.31x``, ``0.42x``, or ``1/2,701`` below 0.1."""
    if value is None or base is None:
        return "n/a"
    if base == 0:
        return "n/a (floor 0)" if value else "1.00x"
    r = value / base
    if r == 0:
        return "0x"
    if r < 0.1:
        return f"1/{1 / r:,.0f}"
    if r >= 100:
        return f"{r:,.0f}x"
    return f"{r:.2f}x"


def num(value: float | None, unit: str = "", digits: int = 0) -> str:
    """Return a number with thousands separators and its unit (``-`` for None)."""
    if value is None:
        return "-"
    text = f"{value:,.{digits}f}"
    return f"{text} {unit}".rstrip()


def table(rows: Sequence[Row]) -> str:
    """Return ``rows`` as a Markdown table (readable in a terminal, pasteable into the README)."""
    cells = [HEADERS, *((r.bench, r.measure, r.ordersync, r.against, r.ratio, r.target) for r in rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADERS))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |" for line in cells
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def print_rows(title: str, rows: Sequence[Row], file: TextIO | None = None) -> None:
    """Print one benchmark's rows under a title (to stdout unless ``file`` says otherwise)."""
    print(f"\n{title}\n", file=file)
    print(table(rows), file=file, flush=True)


def quiet_logs(level: str = "error") -> None:
    """Send ordersync's structlog output to stderr, errors only (stdout holds only the tables)."""
    from ordersync.logging import configure

    configure(json=False, level=level)


def log(message: str) -> None:
    """Progress on stderr, so stdout holds only the tables."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def timed() -> Iterator[list[float]]:
    """Measure the block's wall time (seconds, perf_counter); read ``box[0]`` after it."""
    box = [0.0]
    start = time.perf_counter()
    try:
        yield box
    finally:
        box[0] = time.perf_counter() - start


def percentile(samples: Sequence[float], p: float) -> float | None:
    """Return the nearest-rank percentile (as the demo summary computes it), None when empty."""
    if not samples:
        return None
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(p * len(ordered) + 0.5) - 1))
    return ordered[index]


def median(samples: Sequence[float]) -> float | None:
    return statistics.median(samples) if samples else None


def environment() -> str:
    """Return one line naming the machine and the revision measured."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        rev = "unknown"
    cores = os.cpu_count()
    stamp = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return f"{stamp}, git {rev}, Python {platform.python_version()}, {cores} cores"


# -- scratch stores ------------------------------------------------------------------------------------


@contextlib.contextmanager
def sqlite_url(tmp: Path) -> Iterator[str]:
    """A SQLite file in ``tmp`` (the store sets WAL and synchronous=FULL itself)."""
    yield f"sqlite:///{tmp / f'bench-{uuid.uuid4().hex[:8]}.db'}"


@contextlib.contextmanager
def postgres_url() -> Iterator[str | None]:
    """A URL whose connections see only a fresh schema (dropped afterwards); None if PostgreSQL is down."""
    from ordersync.store.isolation import isolated_schema
    from ordersync.testing import postgres_unreachable

    reason = postgres_unreachable(PG_URL)
    if reason is not None:
        log(reason)
        yield None
        return
    with isolated_schema(PG_URL, "ordersync_bench") as url:
        yield url


def seed_store(
    url: str,
    orders: Sequence[dict[str, Any]],
    status: OrderStatus,
    created_at: datetime | None = None,
    time_in_force: str = "day",
) -> None:
    """Put simulator orders (``/sim/state`` shapes: limit buys) in the store as the engine would hold them
    once their POST was answered, in ``status``; ``created_at`` None takes each order's own time."""
    store = open_store(url)
    with store.transaction() as tx:
        for o in orders:
            created = created_at or datetime.fromisoformat(o["created_at"].replace("Z", "+00:00"))
            order = new_order(
                client_order_id=o["client_order_id"],
                symbol=o["symbol"],
                side="buy",
                type="limit",
                qty=o["qty"],
                limit_price=o["limit_price"],
                time_in_force=time_in_force,
                created_at=created,
            )
            acknowledged = replace(
                order, status=status, broker_order_id=BrokerOrderId(o["id"]), broker_updated_at=created
            )
            tx.add_order(acknowledged)
    store.close()
