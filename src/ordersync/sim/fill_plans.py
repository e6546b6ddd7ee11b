"""Scenario fill plans: a new order that is a scenario parent is filled by its plan, not by price.

A plan's fills, and its cancel, expiry or asynchronous rejection, run virtual seconds after the order's
submission; a plan follows its order through replacements (``live_successor``), and with the market calendar
a planned fill the market is closed for waits for the next moment the order can trade.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from .book import Book
from .clock import SimClock
from .exchange_config import FillPlan, FillStep
from .model import SimOrder
from .scheduler import Scheduler
from .sessions import MarketSessions
from .venue import Venue


class FillPlans:
    """Start each new order on the venue and run the plan of a scenario parent."""

    def __init__(
        self,
        book: Book,
        venue: Venue,
        scheduler: Scheduler,
        clock: SimClock,
        plans: Mapping[str, FillPlan],
        ack_s: float,
    ) -> None:
        self.book, self.venue, self.scheduler, self.clock = book, venue, scheduler, clock
        self.plans, self.ack_s = plans, ack_s
        self.sessions: MarketSessions | None = None  # set when the account trades on the market calendar

    def start(self, root: SimOrder) -> None:
        """Acknowledge a new order after the venue's latency and, if a scenario parent, run its plan."""
        plan = self.plans.get(root.client_order_id)
        root.planned = root.planned or plan is not None
        self.venue.later(self.ack_s, f"ack {root.id}", lambda: self.venue.ack(root))
        if plan is not None:
            self._schedule(root, plan)

    def _schedule(self, order: SimOrder, plan: FillPlan) -> None:
        for step in plan.steps:
            self.venue.later(step.after_s, f"plan fill {order.client_order_id}", self._plan_fill(order, step))
        endings = (
            (plan.cancel_after_s, "canceled"),
            (plan.expire_after_s, "expired"),
            (plan.reject_after_s, "rejected"),
        )
        for after_s, status in endings:
            if after_s is not None:
                self.venue.later(
                    after_s, f"plan {status} {order.client_order_id}", self._plan_end(order, status)
                )

    def _plan_fill(self, order: SimOrder, step: FillStep) -> Callable[[], None]:
        def fill() -> None:
            live = live_successor(self.book, order)  # a replaced parent's plan goes on with its replacement
            sessions = self.sessions
            if sessions is not None and live.is_open and not sessions.can_trade(live):
                # the market is closed for it: the planned fill happens when it can trade again
                due = sessions.next_trading_time(live, self.clock.now())
                self.scheduler.schedule(due, f"plan fill {order.client_order_id} (deferred)", fill)
                return
            self.venue.execute(live, step.qty, step.price or self.book.price(live.symbol))

        return fill

    def _plan_end(self, order: SimOrder, status: str) -> Callable[[], None]:
        return lambda: self.venue.terminate(live_successor(self.book, order), status)


def live_successor(book: Book, order: SimOrder) -> SimOrder:
    """`order`, or the order that replaced it (through the whole `replaced_by` chain)."""
    seen = {order.id}
    while order.replaced_by is not None and order.replaced_by not in seen:
        order = book.orders[order.replaced_by]
        seen.add(order.id)
    return order
