"""Every mode on one scenario, side by side: the runs behind ``ordersync demo --compare`` and
``bench/bench_modes.py``, and the Markdown table the bench prints (docs/comparison.md).

Each mode runs alone on a fresh embedded simulator (one ``run_demo`` each, one after the other), so no mode
competes with another for the machine while it is measured; every figure comes from that run's simulator
books (``demo/summary.py``). A mode that cannot play the scenario (safe mode and a trailing stop) gets a
summary that says why and carries no figure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from ordersync.demo.conductor import STALL_S
from ordersync.demo.run import MODES, DemoOptions, UnsupportedScenario, check_supported, run_demo
from ordersync.demo.summary import Summary
from ordersync.sim.scenarios import Scenario

__all__ = ["COLUMNS", "compare_modes", "markdown_table", "table_row"]

Progress = Callable[[dict[str, Any]], None]


def compare_modes(
    scenario: Scenario,
    *,
    modes: Sequence[str] = MODES,
    db_url: str | None = None,
    progress: Callable[[str], Progress | None] | None = None,
    stall_s: float = STALL_S,
) -> list[Summary]:
    """Run ``scenario`` in every mode of ``modes``, in order, and return one summary per mode.

    ``db_url`` is safe mode's store; ``progress(mode)`` may return a callback for that run's progress.

    Raises:
        DemoStalled: a run made no step of virtual time for its stall bound (never a hang).
    """
    summaries = []
    for mode in modes:
        try:
            check_supported(scenario, mode)
        except UnsupportedScenario as e:
            summaries.append(Summary(mode=mode, scenario=scenario.name, refused=str(e)))
            continue
        options = DemoOptions(mode=mode, db_url=db_url if mode == "safe" else None, stall_s=stall_s)
        on_progress = progress(mode) if progress is not None else None
        summaries.append(asyncio.run(run_demo(scenario, options, on_progress)))
    return summaries


COLUMNS = (
    "scenario",
    "mode",
    "unprotected share-seconds",
    "bare at end",
    "refusals 40310000 / wash / other",
    "fill->protect p50 / p99 / max (s)",
    "broker requests",
    "exits (children)",
)


def table_row(summary: Summary) -> tuple[str, ...]:
    """Return one line of the comparison: a mode's figures on a scenario."""
    if summary.refused:
        void = "refused: " + summary.refused.split(": ", 1)[-1]
        return (summary.scenario, summary.mode, void, "", "", "", "", "")
    other = summary.broker_rejections - summary.insufficient_qty_rejections - summary.wash_trade_rejections
    refusals = f"{summary.insufficient_qty_rejections} / {summary.wash_trade_rejections} / {other}"
    return (
        summary.scenario,
        summary.mode,
        f"{float(summary.unprotected_share_s):,.1f}",
        summary.unprotected_qty,
        refusals,
        _latency_s(summary.fill_to_protect_ms),
        f"{summary.broker_requests:,}",
        str(summary.children_submitted),
    )


def _latency_s(figures: dict[str, float | None]) -> str:
    def seconds(key: str) -> str:
        value = figures.get(key)
        return "-" if value is None else f"{value / 1000:,.1f}"

    return " / ".join(seconds(k) for k in ("p50", "p99", "max"))


def markdown_table(summaries: Sequence[Summary]) -> str:
    """Return the summaries as one Markdown table, a line per (scenario, mode), in the given order."""
    cells = [COLUMNS, *(table_row(s) for s in summaries)]
    numeric = {i for i, name in enumerate(COLUMNS) if i >= 2}
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]

    def line(row: Sequence[str]) -> str:
        padded = (
            c.rjust(w) if i in numeric else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        return "| " + " | ".join(padded) + " |"

    rule = (
        "|"
        + "|".join(("-" * (w + 1) + ":") if i in numeric else "-" * (w + 2) for i, w in enumerate(widths))
        + "|"
    )
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])
