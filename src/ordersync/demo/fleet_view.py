"""The fleet demo's rendering: one row per account, the totals, and what happened to the killed worker."""

from __future__ import annotations

from decimal import Decimal

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from ordersync.demo.fleet_summary import FleetSummary
from ordersync.demo.summary import Summary

__all__ = ["fleet_table"]

# (header, Summary attribute, a figure that must be 0)
COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("parents", "parents", False),
    ("exits", "children_submitted", False),
    ("refused", "broker_rejections", False),
    ("40310000", "insufficient_qty_rejections", True),
    ("unprot", "unprotected_qty", True),
    ("overprot", "overprotected_qty", True),
    ("dupes", "duplicate_submissions", True),
    ("discrep", "discrepancies", True),
)


def _p99(summary: Summary) -> str:
    value = summary.fill_to_protect_ms.get("p99")
    return "-" if value is None else f"{value / 1000:.2f}"


def _cells(summary: Summary) -> list[Text]:
    cells = []
    for _, key, must_be_zero in COLUMNS:
        value = getattr(summary, key)
        bad = must_be_zero and Decimal(str(value)) != 0
        cells.append(Text(str(value), style="red" if bad else ""))
    cells.append(Text(_p99(summary)))
    cells.append(Text(str(len(summary.errors)), style="red" if summary.errors else ""))
    return cells


def fleet_table(summary: FleetSummary) -> Group:
    """Every account's figures (red: a figure that must be 0 is not), the totals, then the kill's story."""
    killed = set(summary.killed.accounts) if summary.killed else set()
    table = Table(
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
        caption="unprot/overprot: shares at the end; p99: fill->protect (real s); *: on the killed worker",
        title=f"ordersync demo --accounts {len(summary.accounts)} --workers {summary.workers}: "
        f"{summary.scenario} (figures from each account's books at the simulator)",
    )
    table.add_column("account", no_wrap=True)
    for header, _, _ in COLUMNS:
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("p99 s", justify="right", no_wrap=True)
    table.add_column("errors", justify="right", no_wrap=True)
    for name, account in summary.accounts.items():
        table.add_row(Text(name + (" *" if name in killed else "")), *_cells(account))
    if summary.total is not None:
        table.add_section()
        table.add_row(Text("total", style="bold"), *_cells(summary.total))
    lines = []
    if summary.killed is not None:
        k = summary.killed
        takeover = "never" if k.takeover_s is None else f"after {k.takeover_s:.1f} s"
        lines.append(
            f"* worker {k.pid} SIGKILLed {k.at_s:.0f} s into the timeline, "
            f"running {len(k.accounts)} accounts "
            f"({k.fills_before} fills before, {k.fills_after} after); the others took them over {takeover}"
        )
    else:
        lines.append("no worker was killed")
    verdict = (
        f"{len(summary.failing)} of {len(summary.accounts)} accounts show the incident's symptoms: "
        + ", ".join(summary.failing[:10])
        if summary.failing
        else f"every account's figures are 0 ({len(summary.accounts)} accounts)"
    )
    lines.append(verdict)
    lines += [f"error: {e}" for e in summary.errors]
    lines.append(
        f"real time {summary.real_duration_s:.0f} s; the scenario ran {summary.compression:.0f}x compressed, "
        f"in real time, on {summary.database}"
    )
    return Group(table, *(Text(line, style="red" if line.startswith("error") else "") for line in lines))
