"""What the report adds to the counts: who competed for the shares, how long they were exposed, what next.

Per parent row (docs/forensics.md, "Reading the report"):

- what the row's order is. `related_orders` names the order Alpaca says blocks the sell. When it names a
  buy (the log or the export gives the side), that is the parent itself, still open: the child came before
  the fill. When it names a sell, or an order whose side is unknown while every share is held for orders
  (only open sells hold shares), it is the competing order, and the row's parent is that order's parent
  when the export nests it as a leg, else unknown;
- the competing orders, with side, quantity and status from the export, else the log, else inferred;
- the exposure: the refused child's quantity (Alpaca's "requested: N", else the parent's filled quantity)
  from the parent's fill (else the first refusal that shows the shares existed) until the first sell of
  the symbol accepted after the last refusal. Without such a sell it ends, marked open, at the latest time
  the broker export covers (the export lists every order, so none was placed before then) or, with no
  export, at the parent's last refusal: what the refusals prove, a lower bound;
- a timeline, the cause distribution across parents, and next steps that follow from the causes found.

Stdlib only.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Final

from ordersync.forensics.exports import BrokerBook, BrokerOrder
from ordersync.forensics.records import Submission
from ordersync.forensics.report import (
    Cause,
    CauseShare,
    Exposure,
    OrderRef,
    ParentIssue,
    SymbolExposure,
    TimelineEvent,
)
from ordersync.forensics.submissions import brief
from ordersync.forensics.timeutil import from_us, to_us
from ordersync.forensics.verdict import BodyClass

MAX_COMPETING: Final = 5
_FAILED: Final = frozenset({"rejected", "canceled", "expired"})


@dataclass(frozen=True, slots=True)
class GroupFacts:
    """What the correlation knows about one parent beyond its counts (built per row, never stored)."""

    quotes: dict[BodyClass, str]
    related: dict[str, int]
    requested: Decimal | None
    child_ids: tuple[str, ...]
    first_held_us: int | None


class Context:
    """The evidence beside the refusals: log submissions, the export, sells by symbol, the last time."""

    def __init__(self, submissions: Mapping[str, Submission], book: BrokerBook) -> None:
        self.submissions, self.book = submissions, book
        self.export_end = max(book.times(), default=None)
        sells: dict[str, list[tuple[int, str]]] = {}
        for order_id, at_us, symbol, side in brief(submissions):
            if side == "sell" and symbol and at_us is not None:
                sells.setdefault(symbol, []).append((at_us, order_id))
        for o in book.orders.values():
            if o.side == "sell" and o.symbol and o.created_at is not None and o.status not in _FAILED:
                sells.setdefault(o.symbol, []).append((to_us(o.created_at), o.id))
        self.sells = {k: sorted(v) for k, v in sells.items()}

    def side_of(self, order_id: str) -> str | None:
        order = self.book.order(order_id)
        sub = self.submissions.get(order_id)
        return (order.side if order else None) or (sub.side if sub else None)

    def ref(self, order_id: str, refusals: int, *, inferred_side: str | None = None) -> OrderRef:
        order = self.book.order(order_id)
        if order is not None:
            return _from_export(order, refusals)
        sub = self.submissions.get(order_id)
        if sub is not None and (sub.side or sub.qty is not None or sub.client_order_id):
            return OrderRef(
                order_id, sub.client_order_id, sub.side, sub.qty, None, None, None, "log", refusals
            )
        side = inferred_side if sub is None or sub.side is None else sub.side
        source = "inferred from the bodies" if inferred_side else "log" if sub else "named by the broker only"
        return OrderRef(order_id, None, side, None, None, None, None, source, refusals)

    def first_sell_after(self, symbol: str, at: datetime) -> tuple[datetime, str] | None:
        rows = self.sells.get(symbol)
        if not rows:
            return None
        i = bisect_left(rows, (to_us(at) + 1, ""))
        return (from_us(rows[i][0]), rows[i][1]) if i < len(rows) else None


def _from_export(o: BrokerOrder, refusals: int) -> OrderRef:
    return OrderRef(
        o.id, o.client_order_id, o.side, o.qty, o.status, o.type, o.parent_id, "broker export", refusals
    )


def enrich(p: ParentIssue, group: GroupFacts, ctx: Context) -> ParentIssue:
    """Complete one parent row (just built, not shared yet) with its role, competing orders, quantities,
    fills and exposure; returns the same row."""
    role, note, parent_id, competing = _role(p, group, ctx)
    quotes = tuple(sorted((k.value, v) for k, v in group.quotes.items())) if group.quotes else ()
    qty, filled_qty, filled_at = _quantities(parent_id, ctx)
    if p.submitted_at is None and parent_id and parent_id != p.broker_order_id:
        sub = ctx.submissions.get(parent_id)
        if sub is not None and sub.qty is not None:
            qty = qty or sub.qty
    # `p` is the row `ParentRows.build` has just made and nobody else holds yet: its fields are set in
    # place, as a frozen dataclass's own __post_init__ would, instead of copying all of them twice
    # (`dataclasses.replace` was a fifth of the time of a report of 150 000 parents), one call per field
    # (a keyword dict and a loop over it cost ~3 µs a row more)
    set_ = object.__setattr__
    set_(p, "listed_role", role)
    set_(p, "listed_note", note)
    set_(p, "parent_order_id", parent_id if parent_id != p.broker_order_id else None)
    set_(p, "competing", competing)
    set_(p, "quotes", quotes)
    set_(p, "requested_qty", group.requested)
    set_(p, "qty", qty)
    set_(p, "filled_qty", filled_qty)
    set_(p, "filled_at", filled_at)
    child_ids = group.child_ids
    set_(p, "child_ids", tuple(sorted(child_ids)) if len(child_ids) > 1 else child_ids)
    set_(p, "side", p.side or (ctx.side_of(p.broker_order_id) if p.broker_order_id else None))
    set_(p, "exposure", _exposure(p, group, ctx))
    return p


def _role(
    p: ParentIssue, group: GroupFacts, ctx: Context
) -> tuple[str, str | None, str | None, tuple[OrderRef, ...]]:
    listed = p.broker_order_id
    related = group.related or {}
    if len(related) > 1:  # one related order (most rows): nothing to rank
        related = dict(sorted(related.items(), key=lambda kv: -kv[1])[:MAX_COMPETING])
    if listed is None:
        return "unknown", None, None, ()
    others = {k: n for k, n in related.items() if k != listed}
    competing = tuple(ctx.ref(k, n) for k, n in others.items())
    side = ctx.side_of(listed)
    e = p.evidence
    if not related or (others and listed not in related):
        return "parent", None, listed, competing
    n_self = related.get(listed, 0)
    if side == "buy":
        # Alpaca names the open buy itself when a sell would go short against it: the child came first
        what = (
            "the buy was still open, not filled, when the child was sent: the child came before the fill"
            if e.sell_before_fill >= n_self
            else "the buy was still open (partly filled at most) when the child was sent, so its own "
            "remaining quantity blocked the sell"
        )
        note = f"`related_orders` names the parent itself in {n_self} refusal(s): {what}."
        return "parent", note, listed, competing
    order = ctx.book.order(listed)
    held = e.all_reserved + e.partly_reserved
    if side == "sell" or (side is None and held > e.sell_before_fill):
        ref = ctx.ref(listed, n_self, inferred_side="sell" if side is None else None)
        parent = order.parent_id if order is not None else None
        if side is None:
            note = (
                "The log gives no side for this order, but the bodies show every share held for orders, "
                "which only open sell orders do: it is the competing sell (most likely the first child) "
                "that held the shares, not the parent buy."
            )
        else:
            note = "This order is a sell holding the shares: the competing order, not the parent."
        note += (
            f" Parent: {parent}."
            if parent
            else " The parent is not named in the evidence (give the orders export)."
        )
        return "competing order", note, parent, (ref, *competing)
    return "unknown", None, listed, competing


def _quantities(
    parent_id: str | None, ctx: Context
) -> tuple[Decimal | None, Decimal | None, datetime | None]:
    if parent_id is None:
        return None, None, None
    order = ctx.book.order(parent_id)
    sub = ctx.submissions.get(parent_id)
    qty = (order.qty if order else None) or (sub.qty if sub else None)
    filled_qty, first_fill, _ = ctx.book.filled(order.id if order else parent_id)
    return qty, filled_qty, first_fill


def _exposure(p: ParentIssue, group: GroupFacts, ctx: Context) -> Exposure | None:
    if p.symbol is None or p.last_error_at is None:
        return None
    qty = p.requested_qty or p.filled_qty or p.qty
    start = p.filled_at or (from_us(group.first_held_us) if group.first_held_us is not None else None)
    if qty is None or qty <= 0 or start is None:
        return None
    after = max(start, p.last_error_at)
    sell = ctx.first_sell_after(p.symbol, after)
    if sell is not None:
        return Exposure(qty, start, sell[0], open_at_end=False, ended_by=sell[1])
    end = max(ctx.export_end or after, after)
    return Exposure(qty, start, end, open_at_end=True, ended_by=None)


def symbol_exposures(parents: Iterable[ParentIssue]) -> tuple[SymbolExposure, ...]:
    """Exposure per symbol: parents, the largest quantity, share-hours summed, the window."""
    rows: dict[str, list[ParentIssue]] = {}
    for p in parents:
        if p.exposure is not None and p.symbol:
            rows.setdefault(p.symbol, []).append(p)
    out = []
    for symbol, ps in rows.items():
        ex = [p.exposure for p in ps if p.exposure is not None]
        out.append(
            SymbolExposure(
                symbol=symbol,
                parents=len(ex),
                max_qty=max(e.qty for e in ex),
                share_hours=sum((e.share_hours for e in ex), Decimal(0)),
                first_start=min(e.start for e in ex),
                last_end=max(e.end for e in ex),
                open_at_end=any(e.open_at_end for e in ex),
            )
        )
    return tuple(sorted(out, key=lambda r: (-r.share_hours, r.symbol)))


def cause_shares(parents: Iterable[ParentIssue]) -> tuple[CauseShare, ...]:
    """Parents and refusals per cause: the distribution, not a vote over bodies."""
    n: Counter[Cause] = Counter()
    refusals: Counter[Cause] = Counter()
    for p in parents:
        n[p.cause] += 1
        refusals[p.cause] += p.errors
    return tuple(CauseShare(c, k, refusals[c]) for c, k in sorted(n.items(), key=lambda kv: (-kv[1], kv[0])))


def timeline(parents: Sequence[ParentIssue]) -> tuple[TimelineEvent, ...]:
    """The events of every parent row, in time order (a few per parent, never one per refusal)."""
    events: list[TimelineEvent] = []
    for p in parents:
        sym = p.symbol or "?"
        order = p.broker_order_id
        if p.submitted_at:
            events.append(TimelineEvent(p.submitted_at, sym, "submitted", order, _submitted(p)))
        if p.filled_at:
            events.append(
                TimelineEvent(
                    p.filled_at, sym, "filled", p.parent_order_id or order, _qty("filled", p.filled_qty)
                )
            )
        if p.first_error_at:
            events.append(
                TimelineEvent(
                    p.first_error_at,
                    sym,
                    "refused",
                    order,
                    f"first of {p.errors} refusal(s): {p.cause.value}",
                )
            )
        if p.last_error_at and p.last_error_at != p.first_error_at:
            events.append(
                TimelineEvent(p.last_error_at, sym, "refusals_end", order, f"last of {p.errors} refusal(s)")
            )
        if p.exposure is not None:
            e = p.exposure
            events.append(
                TimelineEvent(e.start, sym, "exposure_start", order, f"{_num(e.qty)} shares unprotected")
            )
            end = (
                "still unprotected at the end of the evidence"
                if e.open_at_end
                else f"protected by sell {e.ended_by}"
            )
            events.append(TimelineEvent(e.end, sym, "exposure_end", order, end))
    return tuple(sorted(events, key=lambda ev: (ev.at, ev.symbol, _KIND_ORDER.get(ev.kind, 9))))


_KIND_ORDER: Final = {
    k: i
    for i, k in enumerate(
        ("submitted", "filled", "competing", "refused", "exposure_start", "refusals_end", "exposure_end")
    )
}


def _submitted(p: ParentIssue) -> str:
    bits = [p.side or "side unknown"]
    if p.qty is not None:
        bits.append(_num(p.qty))
    return "submitted (" + " ".join(bits) + ")"


def _qty(word: str, qty: Decimal | None) -> str:
    return word if qty is None else f"{word} {_num(qty)}"


def _num(value: Decimal) -> str:
    return format(value.normalize(), "f")


def next_steps(
    causes: set[Cause],
    exposures: Sequence[SymbolExposure],
    *,
    unknown_parents: int,
    unlinked: bool,
    has_export: bool,
) -> tuple[str, ...]:
    """What to do next, from the causes and the exposure found (never a generic checklist)."""
    steps = []
    open_symbols = [e.symbol for e in exposures if e.open_at_end]
    if open_symbols:
        steps.append(
            "Check the positions and open orders now for "
            + ", ".join(open_symbols[:20])
            + ": nothing in the evidence shows them protected after the last refusal "
            "(`ordersync analyze --verify` reads them at the broker)."
        )
    if Cause.RESERVED_BY_OPEN_ORDER in causes:
        steps.append(
            "Find and cancel the competing sells listed per parent, and make child placement idempotent "
            "per parent (one take-profit/stop-loss pair, as an OCO or bracket) so a retry never competes "
            "with the first child for the same shares."
        )
    if Cause.SELL_BEFORE_FILL in causes:
        steps.append(
            "Place children only after the parent's fill is confirmed by a trade update, sized to its filled "
            "quantity; retrying a refused child on a timer cannot succeed before the fill."
        )
    if Cause.OVERSIZED_SELL in causes:
        steps.append("Size children to the filled quantity and resize them on each partial fill.")
    if unknown_parents and not has_export:
        steps.append(
            f"{unknown_parents} row(s) name the competing order, not the parent: give the broker's "
            "orders export (`GET /v2/orders?status=all&nested=true`) and FILL activities as inputs to name "
            "the parents, their fills and the exposure exactly."
        )
    if unlinked:
        steps.append(
            "Some refusals could not be linked to an order: log the parent's broker order id with each child."
        )
    return tuple(steps)
