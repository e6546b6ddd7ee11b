"""The demo's summary, computed from the simulator's own books: the broker is the judge, not the client.

Children are tied to their parent by client_order_id (``<parent>~...`` for ordersync and the poller,
``naive-<parent>-`` for the naive baseline, an OCO leg through its group, a bracket's legs through their
entry, which is the parent itself). Coverage of a parent = live exits in full plus what ended exits sold,
as docs/architecture.md §2, invariant 2 counts it. An exit is live from its acceptance (a bracket's
legs: from the moment the
entry completely filled and the broker released them) until it ends.

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

TERMINAL = {"filled", "canceled", "expired", "replaced", "rejected"}


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


def parent_of(coid: str, parent_ids: set[str]) -> str | None:
    """Return the scenario parent a child belongs to, from its client_order_id."""
    if "~" in coid:
        head = coid.split("~", 1)[0]
        return head if head in parent_ids else None
    if coid.startswith("naive-"):
        head = coid[len("naive-") :].rsplit("-", 2)[0]
        return head if head in parent_ids else None
    return None


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


@dataclass(frozen=True)
class ExitGroup:
    """One exit at the broker (a simple order, an OCO pair, a bracket's legs) and when it was live."""

    members: tuple[Mapping[str, Any], ...]
    live_from: datetime | None  # accepted (a bracket's legs: released when the entry completely filled)
    live_until: datetime | None  # every member ended

    @property
    def qty(self) -> Decimal:
        return max(Decimal(m["qty"]) for m in self.members)

    def sold_by(self, at: datetime) -> Decimal:
        return sum((_filled_by(m, at) for m in self.members), Decimal(0))

    def cover_at(self, at: datetime) -> Decimal:
        """Shares this exit protects at ``at``: its quantity while live, what it sold otherwise."""
        if (
            self.live_from is not None
            and self.live_from <= at
            and (self.live_until is None or at < self.live_until)
        ):
            return self.qty
        return min(self.qty, self.sold_by(at))

    def moments(self) -> list[datetime]:
        """Every moment its cover may change."""
        points = [t for t in (self.live_from, self.live_until) if t is not None]
        return points + [_ts(e["at"]) for m in self.members for e in m["sim"].get("executions", [])]


def exit_groups(parent: Mapping[str, Any], children: Sequence[Mapping[str, Any]]) -> list[ExitGroup]:
    """Return the parent's exits at the broker, one group per OCO pair / bracket legs / simple order."""
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for child in children:
        grouped.setdefault(child["sim"].get("group_id") or child["id"], []).append(child)
    found = []
    for key, members in grouped.items():
        ends = [_ended_at(m) for m in members]
        live_until = None if any(e is None for e in ends) else max(e for e in ends if e is not None)
        if key == parent["id"]:  # a bracket's or OTO's legs: released once the entry completely filled
            live_from = (
                _ts(parent["filled_at"]) if parent["status"] == "filled" and parent.get("filled_at") else None
            )
            if live_from is not None and live_until is not None and live_until <= live_from:
                live_from = None  # ended with a partly filled entry: never live
        else:
            roots = [m for m in members if is_group_root(m)] or members
            live_from = _ts(roots[0].get("submitted_at") or roots[0]["created_at"])
        found.append(ExitGroup(tuple(members), live_from, live_until))
    return found


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
    firsts = [_ts(p["sim"]["executions"][0]["at"]) for p in parents if p["sim"].get("executions")]
    if not firsts:
        return Decimal(0)
    first = min(firsts)
    fills = [
        (_ts(e["at"]), Decimal(e["qty"]) * (1 if o["side"] == "buy" else -1))
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
            filled = _filled_by(parent, at)
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
        _ts(a["at"])
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


_ENDS = ("filled_at", "canceled_at", "expired_at", "failed_at", "replaced_at")


def _ended_at(order: Mapping[str, Any]) -> datetime | None:
    if order["status"] not in TERMINAL:
        return None
    ends = [_ts(order[k]) for k in _ENDS if order.get(k)]
    return min(ends) if ends else _ts(order["updated_at"])


def _filled_by(order: Mapping[str, Any], at: datetime) -> Decimal:
    executions = order["sim"].get("executions", [])
    return sum((Decimal(e["qty"]) for e in executions if _ts(e["at"]) <= at), Decimal(0))


def owner_of(order: Mapping[str, Any], by_id: Mapping[str, Any], parent_ids: set[str]) -> str | None:
    """Return the parent a broker order belongs to: by its client_order_id, a leg through its group, and an
    exit that replaced one of a parent's exits (a PATCH, ours or a person's: Alpaca gives the replacement a
    new id and client_order_id and points it at its predecessor with ``replaces``) through that chain.

    A replaced *entry*'s successor is not a child: it stays unattributed, as before."""
    seen: set[str] = set()
    while order["id"] not in seen:
        seen.add(order["id"])
        group = order["sim"].get("group_id")
        if group and group in by_id and group != order["id"]:
            order = by_id[group]  # a leg: its group's root decides
            if order["client_order_id"] in parent_ids:
                return str(order["client_order_id"])  # a bracket's legs belong to their entry
            continue
        owner = parent_of(order["client_order_id"], parent_ids)
        predecessor = by_id.get(order.get("replaces") or "")
        if owner is not None or predecessor is None or predecessor["client_order_id"] in parent_ids:
            return owner
        order = predecessor
    return None


def is_group_root(order: Mapping[str, Any]) -> bool:
    """True for a simple order or the root of a group (not a leg)."""
    group = order["sim"].get("group_id")
    return group is None or group == order["id"]


def books_coverage(children: Sequence[Mapping[str, Any]]) -> Decimal:
    """Return what broker-side children cover (open groups in full, ended ones by their fills)."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for child in children:
        groups.setdefault(child["sim"].get("group_id") or child["id"], []).append(child)
    total = Decimal(0)
    for members in groups.values():
        qty = max(Decimal(m["qty"]) for m in members)
        if any(m["status"] not in TERMINAL for m in members):
            total += qty
        else:
            total += min(qty, sum((Decimal(m["filled_qty"]) for m in members), Decimal(0)))
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


def fill_to_protect(
    parents: Sequence[Mapping[str, Any]], children: Mapping[str, Sequence[Mapping[str, Any]]], end: datetime
) -> dict[str, float | None]:
    """Return p50/p99/max of the time from each fill to the moment live exits covered it (ms).

    A fill never covered counts until ``end`` (the position stayed unprotected for the whole run).
    """
    samples = [
        ((covered_at or end) - at).total_seconds() * 1000
        for _, at, covered_at in fill_protections(parents, children)
    ]
    return percentiles(samples)


def fill_protections(
    parents: Sequence[Mapping[str, Any]], children: Mapping[str, Sequence[Mapping[str, Any]]]
) -> list[tuple[str, datetime, datetime | None]]:
    """Return every fill of ``parents`` as (parent client_order_id, fill time, time live exits covered it).

    The cover time is None for a fill no exit ever covered.
    """
    found: list[tuple[str, datetime, datetime | None]] = []
    for parent in parents:
        groups = exit_groups(parent, children.get(parent["client_order_id"], []))
        accepted = sorted((g.live_from, g.qty) for g in groups if g.live_from is not None)
        cumulative = Decimal(0)
        for execution in parent["sim"].get("executions", []):
            cumulative += Decimal(execution["qty"])
            at = _ts(execution["at"])
            found.append((parent["client_order_id"], at, _covered_at(accepted, cumulative, at)))
    return found


def _covered_at(
    accepted: Sequence[tuple[datetime, Decimal]], need: Decimal, since: datetime
) -> datetime | None:
    total = Decimal(0)
    for at, qty in accepted:
        total += qty
        if total >= need:
            return max(at, since)
    return None


def percentiles(samples: Sequence[float]) -> dict[str, float | None]:
    """Return p50, p99 and max of ``samples`` (nearest rank), None when empty."""
    if not samples:
        return {"p50": None, "p99": None, "max": None, "n": 0}
    ordered = sorted(samples)

    def rank(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, max(0, round(p * len(ordered) + 0.5) - 1))], 1)

    return {"p50": rank(0.50), "p99": rank(0.99), "max": round(ordered[-1], 1), "n": len(ordered)}


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
