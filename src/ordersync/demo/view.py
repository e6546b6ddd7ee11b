"""The demo's live rich view and its final summary table."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from ordersync.demo.summary import Summary


def live_view(mode: str, state: dict[str, Any]) -> Group:
    """Return the live view: per symbol, the broker's position, what is reserved, open orders, refusals."""
    table = Table(title=f"ordersync demo --mode {mode}   virtual time {state['now']}", expand=False)
    for column in ("symbol", "position", "held", "available", "open buys", "open sells"):
        table.add_column(column, justify="right" if column != "symbol" else "left")
    positions = {p["symbol"]: p for p in state["positions"]}
    opens: dict[str, list[int]] = {}
    for order in state["orders"]:
        if order["status"] not in ("filled", "canceled", "expired", "replaced", "rejected"):
            counts = opens.setdefault(order["symbol"], [0, 0])
            counts[0 if order["side"] == "buy" else 1] += 1
    for symbol in sorted(set(positions) | set(opens)):
        p = positions.get(symbol, {})
        buys, sells = opens.get(symbol, [0, 0])
        table.add_row(
            symbol,
            p.get("qty", "0"),
            p.get("held_for_orders", "0"),
            p.get("qty_available", "0"),
            str(buys),
            str(sells),
        )
    by_code = state["counters"]["rejections"]["by_code"]
    line = Text(f"broker refusals: {sum(by_code.values())}   40310000: {by_code.get('40310000', 0)}")
    return Group(table, line)


def summary_table(summary: Summary) -> Table:
    """Return the final summary as a two-column table."""
    table = Table(title=f"ordersync demo --mode {summary.mode}: {summary.scenario}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows: list[tuple[str, Any]] = [
        ("parents", summary.parents),
        ("children_submitted", summary.children_submitted),
        ("broker_rejections", summary.broker_rejections),
        ("insufficient_qty_rejections", summary.insufficient_qty_rejections),
        ("wash_trade_rejections", summary.wash_trade_rejections),
        ("unprotected_qty", summary.unprotected_qty),
        ("unprotected share-seconds", summary.unprotected_share_s),
        (
            "others' shares in the account / under our exits",
            f"{summary.others_qty} / {summary.exits_on_others_qty}",
        ),
        ("overprotected_qty", summary.overprotected_qty),
        ("duplicate_submissions", summary.duplicate_submissions),
        ("discrepancies", summary.discrepancies),
        ("fill_to_protect_ms p50 / p99 / max", _latency(summary.fill_to_protect_ms)),
        ("broker_requests", summary.broker_requests),
        ("alerts raised", ", ".join(f"{k}={v}" for k, v in sorted(summary.alerts.items())) or "none"),
        ("virtual time / real time (s)", f"{summary.virtual_duration_s:.0f} / {summary.real_duration_s:.1f}"),
        *(("error", e) for e in summary.errors),
        *(("note", n) for n in summary.notes),
    ]
    for name, value in rows:
        style = "red" if _bad(name, value) else ""
        table.add_row(name, Text(str(value), style=style))
    return table


def _latency(figures: dict[str, float | None]) -> str:
    return " / ".join("-" if figures.get(k) is None else f"{figures[k]:.0f}" for k in ("p50", "p99", "max"))


def _bad(name: str, value: Any) -> bool:
    watched = {
        "insufficient_qty_rejections",
        "unprotected_qty",
        "overprotected_qty",
        "duplicate_submissions",
        "discrepancies",
    }
    return name in watched and Decimal(str(value)) != 0


COMPARED: tuple[tuple[str, str], ...] = (
    ("parents", "parents"),
    ("children_submitted", "exits submitted"),
    ("broker_requests", "broker requests"),
    ("broker_rejections", "broker refusals"),
    ("insufficient_qty_rejections", "  insufficient qty (40310000)"),
    ("wash_trade_rejections", "  potential wash trade"),
    ("unprotected_share_s", "unprotected share-seconds"),
    ("unprotected_qty", "unprotected qty at the end"),
    ("overprotected_qty", "overprotected qty at the end"),
    ("others_qty", "others' shares in the account"),
    ("exits_on_others_qty", "  of them under our exits"),
    ("duplicate_submissions", "duplicate submissions"),
    ("discrepancies", "discrepancies"),
)


def compare_rows(summaries: list[Summary]) -> list[tuple[str, list[str]]]:
    """Return the comparison's rows: one figure per mode, in the order of ``summaries``."""

    def cell(summary: Summary, value: str) -> str:
        return "refused" if summary.refused else value

    rows = [(label, [cell(s, str(getattr(s, key))) for s in summaries]) for key, label in COMPARED]
    latency = [cell(s, _latency(s.fill_to_protect_ms)) for s in summaries]
    rows.append(("fill->protect p50 / p99 / max (ms)", latency))
    rows.append(("real seconds", [f"{s.real_duration_s:.1f}" for s in summaries]))
    return rows


def compare_table(summaries: list[Summary]) -> Table:
    """Return one table with a column per mode (``ordersync demo --compare``)."""
    scenario = summaries[0].scenario if summaries else ""
    table = Table(title=f"ordersync demo --compare: {scenario} (figures from the simulator's books)")
    table.add_column("figure")
    for summary in summaries:
        table.add_column(summary.mode, justify="right")
    for label, values in compare_rows(summaries):
        table.add_row(label, *values)
    return table


class ProgressLines:
    """Progress as plain lines on stderr (no terminal: CI, a pipe, ``--json``), one every ``every_s``."""

    def __init__(self, mode: str, console: Console, every_s: float = 5.0) -> None:
        self._mode = mode
        self._console = console
        self._every_s = every_s
        self._started = time.monotonic()
        self._last: float | None = None  # the first report prints at once

    def __call__(self, state: dict[str, Any]) -> None:
        now = time.monotonic()
        if self._last is not None and now - self._last < self._every_s:
            return
        self._last = now
        by_code = state["counters"]["rejections"]["by_code"]
        line = (
            f"demo {self._mode}: virtual {state['now'][:19]}, {len(state['orders'])} orders at the broker, "
            f"{sum(by_code.values())} refusals, {now - self._started:.0f} s"
        )
        self._console.print(line, markup=False, highlight=False, soft_wrap=True)
