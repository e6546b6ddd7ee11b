"""Invariant 9 (bounded delay) and the figures a chaos run prints.

Kept apart from invariants 1-7 because it is a measurement, not a yes/no look at the books: each fill's
wait for protection (``ordersync.demo.delays``, the demo's own figure) is excused by the part that
overlaps engine downtime or a fault window that blocked the order routes, and the figures report both.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal

from ordersync.demo.books import TERMINAL, ts
from ordersync.demo.delays import fill_protections, percentiles
from tools.chaos.evidence import Evidence, Verdict, Window
from tools.chaos.grouping import Books

__all__ = ["bounded_delay", "figures"]


def bounded_delay(books: Books, evidence: Evidence, verdict: Verdict) -> list[str]:
    """(9) Each fill is protected within 2 x the poll interval plus the overlap of its wait with engine
    downtime and blocking fault windows; fills the broker's books show, times in its virtual clock."""
    end = ts(evidence.state["now"])
    members = {pid: [m for g in gs for m in g] for pid, gs in books.groups.items()}
    found: list[str] = []
    overall: list[float] = []
    own: list[float] = []
    in_downtime = 0
    for pid, at, covered_at in fill_protections(list(books.parent.values()), members):
        done = covered_at or end  # never covered: unprotected until the end of the run
        symbol = str(books.parent[pid].get("symbol", ""))
        down = _overlap_s(at, done, evidence.downtime)
        excused = _overlap_s(
            at, done, [*evidence.downtime, *(w for w in evidence.fault_windows if w.blocks(symbol))]
        )
        delay = (done - at).total_seconds()
        overall.append(delay * 1000)
        own.append((delay - excused) * 1000)
        in_downtime += down > 0
        if evidence.poll_interval_s is None:
            continue
        bound = 2 * evidence.poll_interval_s + excused
        if delay > bound:
            protected = "never" if covered_at is None else f"at {covered_at:%H:%M:%S.%f}"[:-3]
            found.append(
                f"{pid}: fill at {at:%H:%M:%S.%f}"[:-3] + f" protected {protected}: {delay:.1f} s > bound "
                f"{bound:.1f} s (2 x poll {evidence.poll_interval_s:.1f} s + {excused:.1f} s impossible)"
            )
    verdict.fill_to_protect_ms = percentiles(overall)
    verdict.fill_to_protect_own_ms = percentiles(own)
    verdict.fills_in_downtime = in_downtime
    return found


def _overlap_s(start: datetime, end: datetime, windows: Iterable[Window]) -> float:
    """Seconds of [start, end] inside the union of ``windows``."""
    spans = sorted((max(start, w.start), min(end, w.end)) for w in windows)
    total = timedelta(0)
    reach: datetime | None = None
    for lo, hi in spans:
        if reach is not None:
            lo = max(lo, reach)
        if hi > lo:
            total += hi - lo
        reach = hi if reach is None else max(reach, hi)
    return total.total_seconds()


def _seconds(latency: Mapping[str, float | None]) -> str:
    return "/".join(
        "-" if latency[k] is None else f"{(latency[k] or 0) / 1000:.1f}" for k in ("p50", "p99", "max")
    )


def figures(books: Books, evidence: Evidence, verdict: Verdict) -> dict[str, int | str]:
    counters = evidence.state["counters"]
    by_code: dict[str, int] = counters["rejections"]["by_code"]
    by_message: dict[str, int] = counters["rejections"]["by_message"]
    groups = [g for gs in books.groups.values() for g in gs]
    return {
        "parents at the broker": len(books.parent),
        "parent fills (executions)": sum(len(p["sim"].get("executions", [])) for p in books.parent.values()),
        "parents filled in full": sum(1 for p in books.parent.values() if p["status"] == "filled"),
        "parents dead unfilled": sum(
            1 for p in books.parent.values() if p["status"] in TERMINAL and Decimal(p["filled_qty"]) == 0
        ),
        "children submitted": len(groups),
        "of them OCO": sum(1 for g in groups if len(g) > 1),
        "children that traded": sum(1 for g in groups if any(Decimal(m["filled_qty"]) > 0 for m in g)),
        "broker requests": sum(counters["requests"].values()),
        "error answers by code (404: lookups)": ", ".join(f"{c} {n}" for c, n in sorted(by_code.items()))
        or "none",
        "40310000 refusals": by_code.get("40310000", 0),
        "duplicate client_order_id refusals": sum(
            n for m, n in by_message.items() if "client_order_id must be unique" in m
        ),
        "refusals journaled": sum(evidence.refusals.values()),
        "fill-to-protect p50/p99/max (virtual s)": _seconds(verdict.fill_to_protect_ms),
        "  the same less engine downtime and fault windows": _seconds(verdict.fill_to_protect_own_ms),
        "  fills that waited through engine downtime": verdict.fills_in_downtime,
        "  bound: 2 x poll interval (virtual s)": "-"
        if evidence.poll_interval_s is None
        else f"{2 * evidence.poll_interval_s:.1f}",
        "  engine downtime (virtual s, SIGKILL to first reconcile)": ", ".join(
            f"{w.seconds:.0f}" for w in evidence.downtime
        )
        or "none",
        "open alerts": ", ".join(
            f"{k} {n}" for k, n in sorted(Counter(a.kind for a in evidence.open_alerts).items())
        )
        or "none",
    }
