"""Coverage: how many of a parent's filled shares its children protect (docs/architecture.md §2, inv. 2).

Open groups count in full, finished ones by what they filled. A native parent (sent as Alpaca's bracket
or OTO, docs/comparison.md §8) has its exits as legs of its own group (``group_id`` = ``parent_id`` = the
entry): they are held and protect nothing until the entry has *completely* filled, and then protect the
whole entry (they are sized to it, and the entry now equals its fill).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from ordersync.domain.ids import ClientOrderId
from ordersync.domain.order import Order, OrderRole, OrderStatus


def coverage(children: Sequence[Order], parent: Order | None = None) -> Decimal:
    """Return the quantity the children protect: open groups in full, finished ones by their fills.

    ``parent`` tells whether a native parent's held legs are armed (its entry completely filled). Without
    it (an alert or a report that reads children only) the legs themselves tell: a leg that works, filled
    or was replaced has been armed; legs all held (or ended unfilled) have not.
    """
    primaries = [c for c in children if c.group_id is None]
    legs = legs_by_group(children)
    covered = sum((_group_coverage(p, legs.get(p.client_order_id, [])) for p in primaries), Decimal(0))
    return covered + _native_coverage(native_legs(children), parent)


def native_legs(children: Sequence[Order]) -> list[Order]:
    """The legs of a native parent's own group (its bracket or OTO exits)."""
    return [c for c in children if c.group_id is not None and c.group_id == c.parent_id]


def entry_complete(parent: Order) -> bool:
    """True once the entry has completely filled: Alpaca arms a bracket's legs then, never before."""
    return parent.filled_qty >= parent.qty


def legs_by_group(children: Sequence[Order]) -> dict[ClientOrderId, list[Order]]:
    """The legs of each group, by the client_order_id of the group's primary."""
    legs: dict[ClientOrderId, list[Order]] = {}
    for c in children:
        if c.group_id is not None:
            legs.setdefault(c.group_id, []).append(c)
    return legs


def _native_coverage(legs: Sequence[Order], parent: Order | None) -> Decimal:
    if not legs:
        return Decimal(0)
    size = max(leg.qty for leg in legs)  # sized to the entry (a take-profit's fill resizes the stop)
    if any(leg.is_open for leg in legs):
        armed = entry_complete(parent) if parent is not None else any(_armed(leg) for leg in legs)
        return size if armed else Decimal(0)
    return min(size, sum((leg.filled_qty for leg in legs), Decimal(0)))


def _armed(leg: Order) -> bool:
    works = leg.is_open and leg.status is not OrderStatus.HELD
    return works or leg.filled_qty > 0 or leg.status is OrderStatus.REPLACED


def _group_coverage(primary: Order, legs: Sequence[Order]) -> Decimal:
    if primary.status is OrderStatus.REJECTED:
        return Decimal(0)
    members = [primary, *legs]
    if any(m.is_open for m in members):
        return primary.qty
    if unread_legs(primary, legs):
        # the take-profit leg ended unfilled: Alpaca marks it "replaced" when the stop triggers
        # (docs/alpaca.md, 6.2), a venue may say "canceled"; either way, until we have read the stop leg it
        # may be live and holding the shares, so it still counts (no second sell for the same shares)
        return primary.qty
    return min(primary.qty, sum((m.filled_qty for m in members), Decimal(0)))


def unread_legs(primary: Order, legs: Sequence[Order]) -> bool:
    """True for an OCO that reached the broker and ended unfilled while we have not read its legs."""
    sent = primary.broker_order_id is not None
    ended_unfilled = primary.is_terminal and primary.status is not OrderStatus.FILLED
    return primary.role is OrderRole.OCO and sent and ended_unfilled and not legs
