"""The demo's summary, computed from the simulator's own books: the broker is the judge, not the client.

Children are tied to their parent by client_order_id (``<parent>~...`` for ordersync and the poller,
``naive-<parent>-`` for the naive baseline, an OCO leg through its group, a bracket's legs through their
entry, which is the parent itself). Coverage of a parent = live exits in full plus what ended exits sold,
as docs/architecture.md §2, invariant 2 counts it (``books.py``). An exit is live from its acceptance (a
bracket's legs: from the moment the entry completely filled and the broker released them) until it ends.

Exposure, one figure for every mode: unprotected share-seconds, the integral over virtual time of each
parent's filled shares not covered by a live exit (from its first fill to the end of the run).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from ordersync.demo.books import (
    TERMINAL,
    ExitGroup,
    books_coverage,
    ended_at,
    exit_groups,
    filled_by,
    is_group_root,
    owner_of,
    parent_of,
    ts,
)
from ordersync.demo.delays import fill_protections, fill_to_protect, percentiles

# reading the books and the protection delays live in books.py and delays.py; importable from here as before
__all__ = [
    "TERMINAL",
    "ExitGroup",
    "Summary",
    "books_coverage",
    "ended_at",
    "exit_groups",
    "fill_protections",
    "fill_to_protect",
    "filled_by",
    "is_group_root",
    "owner_of",
    "parent_of",
    "percentiles",
    "summarize_books",
    "ts",
]


@dataclass
class Summary:
    """The figures docs/operations.md §6 promises for ``ordersync demo --json``."""

    mode: str
    scenario: str
    parents: int = 0
    children_submitted: int = 0
    broker_rejections: int = 0
    insufficient_qty_rejections: int = 0
    wash_trade_rejections: int = 0
    unprotected_qty: str = "0"
    overprotected_qty: str = "0"
    duplicate_submissions: int = 0
    discrepancies: int = 0
    unprotected_share_s: str = "0"  # exposure: sum over time of filled shares without a live exit
    others_qty: str = "0"  # shares in the account at the end that our orders did not trade (others')
    exits_on_others_qty: str = "0"  # our live exits beyond our own shares: they reserve others' shares
    operator_unprotected_qty: str = "0"  # filled shares whose exit a person canceled (left so on purpose)
    fill_to_protect_ms: dict[str, float | None] = field(default_factory=dict)
    broker_requests: int = 0
    alerts: dict[str, int] = field(default_factory=dict)  # raised during the run, by kind
    faults: dict[str, int] = field(default_factory=dict)  # injected by the simulator, by kind
    virtual_duration_s: float = 0.0
    real_duration_s: float = 0.0
    errors: list[str] = field(default_factory=list)  # what the demo could not do (e.g. a final read)
    notes: list[str] = field(default_factory=list)  # what the mode did differently from the scenario
    refused: str | None = None  # the mode cannot play the scenario (nothing ran; every figure is void)

    @property
    def problems(self) -> bool:
        """True when the run shows the incident's symptoms (exit code 1)."""
        return bool(
            self.insufficient_qty_rejections
            or Decimal(self.unprotected_qty)
            or Decimal(self.overprotected_qty)
            or self.duplicate_submissions
            or self.discrepancies
            or self.errors
            or self.refused
        )

    def as_dict(self) -> dict[str, Any]:
        """Return the summary as a JSON-ready dict."""
        return asdict(self)


def summarize_books(
    summary: Summary, state: Mapping[str, Any], parent_ids: set[str], end: datetime
) -> Summary:
    """Fill ``summary`` from the simulator's state (GET /sim/state)."""
    orders: list[dict[str, Any]] = state["orders"]
    by_id = {o["id"]: o for o in orders}
    counters = state["counters"]
    by_code: dict[str, int] = counters["rejections"]["by_code"]
    by_message: dict[str, int] = counters["rejections"]["by_message"]
    summary.broker_rejections = sum(by_code.values())
    summary.wash_trade_rejections = sum(n for m, n in by_message.items() if "wash trade" in m)
    summary.insufficient_qty_rejections = by_code.get("40310000", 0) - sum(
        n for m, n in by_message.items() if m.startswith("40310000") and "wash trade" in m
    )
    summary.broker_requests = sum(counters["requests"].values())
    summary.faults = dict(counters.get("faults", {}))
    parents = [o for o in orders if o["client_order_id"] in parent_ids]
    summary.parents = len(parents)
    children: dict[str, list[dict[str, Any]]] = {}
    for o in orders:
        if o["client_order_id"] in parent_ids:
            continue
        pid = owner_of(o, by_id, parent_ids)
        if pid is not None:
            children.setdefault(pid, []).append(o)
    groups = {p["client_order_id"]: exit_groups(p, children.get(p["client_order_id"], [])) for p in parents}
    summary.children_submitted = sum(len(g) for g in groups.values())  # an OCO pair or bracket legs: one
    under_by_symbol: dict[str, Decimal] = {}
    over, by_person = Decimal(0), Decimal(0)
    for parent in parents:
        filled = Decimal(parent["filled_qty"])
        kids = groups[parent["client_order_id"]]
        covered = sum((g.cover_at(end) for g in kids), Decimal(0))
        symbol = parent["symbol"]
        # a person canceled these exits: the shares were left bare on purpose (docs/architecture.md §2,
        # invariant 8: an operator's cancel is respected), reported apart from what we failed to protect
        released = min(max(Decimal(0), filled - covered), _canceled_by_person(state, symbol, kids, end))
        by_person += released
        short = max(Decimal(0), filled - covered - released)
        under_by_symbol[symbol] = under_by_symbol.get(symbol, Decimal(0)) + short
        over += max(Decimal(0), covered - filled)
    # shares of ours someone else sold (a person's close, a hand sell) are gone, not unprotected
    gone = _ours_gone(state, parents, groups, end)
    under = sum(
        (max(Decimal(0), q - gone.get(s, Decimal(0))) for s, q in under_by_symbol.items()), Decimal(0)
    )
    summary.unprotected_qty, summary.overprotected_qty = str(under), str(over)
    summary.operator_unprotected_qty = _plain(by_person)
    exposure = sum(
        (
            _symbol_exposure(state, symbol, [p for p in parents if p["symbol"] == symbol], groups, end)
            for symbol in {p["symbol"] for p in parents}
        ),
        Decimal(0),
    )
    summary.unprotected_share_s = str(exposure.quantize(Decimal("0.1")))
    summary.others_qty, summary.exits_on_others_qty = _others(state, parents, groups, end)
    summary.duplicate_submissions = _duplicates(parents, parent_ids)
    summary.fill_to_protect_ms = fill_to_protect(parents, children, end)
    return summary


def _symbol_exposure(
    state: Mapping[str, Any],
    symbol: str,
    parents: Sequence[Mapping[str, Any]],
    groups: Mapping[str, Sequence[ExitGroup]],
    end: datetime,
) -> Decimal:
    """Share-seconds of our filled shares of ``symbol`` without a live exit, from the first fill to ``end``.

    Shares of ours that someone else sold (a person's close, a hand sell) leave the account at that moment:
    from then on they are gone, not unprotected. The account's position at each moment is the final one
    less every later execution on the symbol, whoever's order it was.
    """
    firsts = [ts(p["sim"]["executions"][0]["at"]) for p in parents if p["sim"].get("executions")]
    if not firsts:
        return Decimal(0)
    first = min(firsts)
    fills = [
        (ts(e["at"]), Decimal(e["qty"]) * (1 if o["side"] == "buy" else -1))
        for o in state["orders"]
        if o["symbol"] == symbol
        for e in o["sim"].get("executions", [])
    ]
    final = sum((Decimal(p["qty"]) for p in state.get("positions", []) if p["symbol"] == symbol), Decimal(0))
    points = {first, end, *(t for t, _ in fills)}
    for parent in parents:
        points.update(t for g in groups.get(parent["client_order_id"], []) for t in g.moments())
    timeline = sorted(t for t in points if first <= t <= end)
    total = Decimal(0)
    for at, following in itertools.pairwise(timeline):
        short, ours = Decimal(0), Decimal(0)
        for parent in parents:
            kids = groups.get(parent["client_order_id"], [])
            filled = filled_by(parent, at)
            short += max(Decimal(0), filled - sum((g.cover_at(at) for g in kids), Decimal(0)))
            sign = 1 if parent["side"] == "buy" else -1
            ours += sign * (filled - sum((g.sold_by(at) for g in kids), Decimal(0)))
        held = final - sum((q for t, q in fills if t > at), Decimal(0))
        gone = max(Decimal(0), ours - max(held, Decimal(0))) if ours > 0 else max(Decimal(0), held - ours)
        short = max(Decimal(0), short - gone)
        if short > 0:
            total += short * Decimal(str((following - at).total_seconds()))
    return total


def _canceled_by_person(
    state: Mapping[str, Any], symbol: str, groups: Sequence[ExitGroup], end: datetime
) -> Decimal:
    """Shares of exits that a scenario action (a person) canceled: a `cancel` naming one of its orders, or a
    `cancel_all` / `close_position` with `cancel_orders` that ran while the exit was live and ended it."""
    actions = [a for a in state.get("actions", []) if a.get("outcome") == "done"]
    named = {a["order_id"] for a in actions if a["action"] == "cancel" and a.get("order_id")}
    sweeps = [
        ts(a["at"])
        for a in actions
        if a["action"] == "cancel_all"
        or (a["action"] == "close_position" and a["target"] == symbol and "canceled first" in a["detail"])
    ]
    total = Decimal(0)
    for group in groups:
        ended = all(m["status"] in TERMINAL for m in group.members)
        if not ended or not any(m["status"] == "canceled" for m in group.members):
            continue
        by_name = any(m["id"] in named for m in group.members)
        swept = any(
            group.live_from is not None
            and group.live_from <= at
            and (group.live_until is None or at <= group.live_until)
            for at in sweeps
        )
        if by_name or swept:
            total += max(Decimal(0), group.qty - group.sold_by(end))
    return total


def _ours(
    parents: Sequence[Mapping[str, Any]], groups: Mapping[str, Sequence[ExitGroup]], end: datetime
) -> dict[str, Decimal]:
    """Per symbol, what our parents bought less what our exits sold (signed: a short is negative)."""
    ours: dict[str, Decimal] = {}
    for parent in parents:
        sign = Decimal(1 if parent["side"] == "buy" else -1)
        symbol = parent["symbol"]
        ours[symbol] = ours.get(symbol, Decimal(0)) + sign * Decimal(parent["filled_qty"])
        for group in groups.get(parent["client_order_id"], []):
            ours[symbol] -= sign * group.sold_by(end)
    return ours


def _ours_gone(
    state: Mapping[str, Any],
    parents: Sequence[Mapping[str, Any]],
    groups: Mapping[str, Sequence[ExitGroup]],
    end: datetime,
) -> dict[str, Decimal]:
    """Per symbol, how many of our shares the account no longer holds (sold by someone other than us)."""
    positions = {p["symbol"]: Decimal(p["qty"]) for p in state.get("positions", [])}
    gone = {}
    for symbol, qty in _ours(parents, groups, end).items():
        held = positions.get(symbol, Decimal(0))
        gone[symbol] = (
            max(Decimal(0), qty - max(held, Decimal(0))) if qty > 0 else max(Decimal(0), held - qty)
        )
    return gone


def _others(
    state: Mapping[str, Any],
    parents: Sequence[Mapping[str, Any]],
    groups: Mapping[str, Sequence[ExitGroup]],
    end: datetime,
) -> tuple[str, str]:
    """Return the account's shares that are not ours, and how many of them our live exits reserve.

    Ours, per symbol: what our parents bought less what our exits sold. The rest of the broker's position
    belongs to others (starting positions, other applications, a person's trades), reported apart from our
    exposure. An exit of ours live beyond our own shares reserves (and may sell) someone else's.
    """
    ours: dict[str, Decimal] = {}
    live: dict[str, Decimal] = {}
    for parent in parents:
        sign = Decimal(1 if parent["side"] == "buy" else -1)
        symbol = parent["symbol"]
        ours[symbol] = ours.get(symbol, Decimal(0)) + sign * Decimal(parent["filled_qty"])
        for group in groups.get(parent["client_order_id"], []):
            sold = group.sold_by(end)
            ours[symbol] -= sign * sold
            if group.cover_at(end) > sold:  # live now: its unsold rest reserves shares
                live[symbol] = live.get(symbol, Decimal(0)) + group.qty - sold
    positions = {p["symbol"]: Decimal(p["qty"]) for p in state.get("positions", [])}
    others = sum(
        (abs(positions.get(s, Decimal(0)) - ours.get(s, Decimal(0))) for s in {*positions, *ours}), Decimal(0)
    )
    beyond = sum((max(Decimal(0), qty - abs(ours.get(s, Decimal(0)))) for s, qty in live.items()), Decimal(0))
    return _plain(others), _plain(beyond)


def _plain(value: Decimal) -> str:
    # "0", "40", "0.5": no exponent, no trailing zeros
    return f"{value.normalize():f}" if value else "0"


def _duplicates(parents: Sequence[Mapping[str, Any]], parent_ids: set[str]) -> int:
    seen: dict[str, int] = {}
    for parent in parents:
        seen[parent["client_order_id"]] = seen.get(parent["client_order_id"], 0) + 1
    return sum(n - 1 for n in seen.values())
