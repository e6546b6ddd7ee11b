"""A PATCH on the venue: which orders can be replaced, and the venue's later answer.

Alpaca replaces asynchronously (docs/alpaca.md, "Replace is asynchronous"): the old order goes
``pending_replace`` and keeps working; after the venue's replace latency it ends ``replaced`` and the new
order goes live in its place (in its group, with its plan), unless the old order ended first, when the
replace is rejected and the new order, which never lived, ends ``rejected`` without an event of its own.
"""

from __future__ import annotations

from .book import Book
from .fill_plans import FillPlans
from .groups import swap_into_group
from .model import SimOrder
from .venue import Venue


def replaceable(order: SimOrder) -> bool:
    """True when a PATCH of ``order`` is accepted in its current state."""
    if not order.is_open or order.cancel_requested or order.replacing:
        return False
    if order.status in ("pending_replace", "accepted", "pending_new", "pending_cancel"):
        return False
    return not (order.role == "entry" and order.leg_ids)  # a bracket/OTO entry: only its legs


def confirm_replace(
    book: Book, venue: Venue, plans: FillPlans, old: SimOrder, new: SimOrder, derive_qty: bool
) -> None:
    """The venue's answer to a PATCH: replaced, or rejected because the old order ended first."""
    new.replacing = False
    if old.status != "pending_replace":
        venue.emit("order_replace_rejected", old)
        venue.end(new, "rejected", emit=False)
        return
    was = old.status_before_replace or "new"
    old.status = was
    if derive_qty:
        new.qty = old.remaining
    swap_into_group(book, old, new)
    old.replaced_by, old.replaced_at = new.id, plans.clock.now()
    venue.touch(old, "replaced")
    venue.emit("replaced", old)
    new.planned = old.planned
    if was == "held":
        venue.touch(new, "held")  # a held leg stays held; its group activates it as before
        venue.match(new)
    else:
        plans.start(new)
