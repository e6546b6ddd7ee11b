"""The venue side of an order's life: acknowledgement, executions, group legs, cancels and expiries.

Every state change of an order after its POST happens here, under the exchange's lock, and each one emits the
trade_updates event Alpaca would send (docs/alpaca.md §1, §7): `new` after the acknowledgement latency,
`partial_fill`/`fill` with per-execution `qty`/`price`, cumulative `order.filled_qty`, the position after the
execution and a fresh UUID `execution_id`; `canceled`/`expired` when the venue ends an order; and
`order_cancel_rejected` when a fill wins the race against a cancel. Group rules (§6): bracket/OTO legs stay
`held` until the entry has completely filled, then the take-profit goes `new` while the stop-loss stays
`held` but still triggers; when an exit leg fills completely its siblings are canceled, when it fills partly
they are resized to its remainder; ending one order of a group ends the others."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Protocol

from .book import Book
from .clock import SimClock
from .matching import is_marketable
from .model import SimOrder
from .order_request import QTY_STEP
from .scheduler import Scheduler
from .serialize import order_json, trade_update
from .wire import JsonDict, new_id

__all__ = ["EventSink", "Latency", "Venue", "notional_qty", "order_with_legs"]


_STAMPS = {
    "canceled": "canceled_at",
    "expired": "expired_at",
    "rejected": "failed_at",
    "replaced": "replaced_at",
}


class EventSink(Protocol):
    """Receives trade_updates messages; must not block (it is called under the books lock)."""

    def publish(self, message: JsonDict) -> None: ...


@dataclass(frozen=True)
class Latency:
    """Virtual seconds between a request and the venue's reaction, and which optional events are sent."""

    ack_s: float = 0.0
    fill_s: float = 0.0
    cancel_s: float = 0.0
    replace_s: float = 0.0
    pending_new_event: bool = False
    pending_cancel_event: bool = False


class Venue:
    """Drives orders through their lifecycle and emits the matching stream events."""

    def __init__(
        self, book: Book, clock: SimClock, scheduler: Scheduler, sink: EventSink, latency: Latency
    ) -> None:
        self.book = book
        self.clock = clock
        self.scheduler = scheduler
        self.sink = sink
        self.latency = latency
        # Whether to withhold a sibling's `canceled` event (a fault; set by the simulator from its faults).
        self.omit_sibling_event: Callable[[str], bool] = lambda symbol: False
        # Whether the market lets this order trade now (market sessions; always, without a calendar).
        self.can_trade: Callable[[SimOrder], bool] = lambda order: True

    def later(self, seconds: float, label: str, callback: Callable[[], None]) -> None:
        self.scheduler.schedule(self.clock.now() + timedelta(seconds=seconds), label, callback)

    def emit(self, event: str, order: SimOrder, fill: tuple[Decimal, Decimal, Decimal] | None = None) -> None:
        # `new` carries an execution_id too, as observed in live traffic (docs/alpaca.md §1.4).
        execution_id = new_id() if event in ("new", "fill", "partial_fill") else None
        self.sink.publish(trade_update(event, order_json(order), self.clock.now(), execution_id, fill))

    def touch(self, order: SimOrder, status: str | None = None) -> None:
        now = self.clock.now()
        if status is not None:
            if status != order.status or not order.history:
                order.history.append((now, status))
            order.status = status
        order.updated_at = now

    # -- acknowledgement -------------------------------------------------------------------------------

    def ack(self, order: SimOrder) -> None:
        """accepted → (pending_new →) new; legs stay held. Then start matching unless a plan fills it."""
        if order.status not in ("accepted", "pending_new"):
            return
        if self.latency.pending_new_event and order.status == "accepted":
            self.touch(order, "pending_new")
            self.emit("pending_new", order)
        self.touch(order, "new")
        self.emit("new", order)
        if not order.planned:
            self.later(self.latency.fill_s, f"match {order.id}", lambda: self.match_at_ack(order))

    def match_at_ack(self, order: SimOrder) -> None:
        self.match(order)
        # An OCO's held stop leg is watched from the start: a stop already through the market triggers now.
        for leg_id in order.leg_ids:
            self.match(self.book.orders[leg_id])
        if order.is_open and order.time_in_force in ("ioc", "fok") and order.status != "held":
            self.terminate(order, "canceled")

    # -- matching and executions -------------------------------------------------------------------------

    def matchable(self, order: SimOrder) -> bool:
        if not order.is_open or order.planned or order.replacing or not self.can_trade(order):
            return False
        status = order.working_status
        if status == "held":
            return order.role == "stop_loss" and self.book.exits_active(order)
        return status not in ("accepted", "pending_new")

    def match_symbol(self, symbol: str) -> None:
        for order in self.book.open_orders(symbol):
            self.match(order)

    def match(self, order: SimOrder) -> None:
        if not self.matchable(order):
            return
        was_triggered = order.triggered
        price = self.book.price(order.symbol)
        if order.notional is not None and order.filled_qty == 0:
            order.qty = notional_qty(order.notional, price)  # the quantity of a notional order is set now
        marketable = is_marketable(order, price)
        if order.working_status == "held" and order.triggered and not was_triggered:
            self.release_stop_leg(order)
        if marketable:
            self.execute(order, order.remaining, self.book.price(order.symbol))

    def release_stop_leg(self, order: SimOrder) -> None:
        # A held stop-loss that triggers ends its take-profit sibling and goes to the venue. Alpaca marks
        # that take-profit "replaced", not "canceled" (docs/alpaca.md §6.2, forum and alpaca-py #198).
        for sibling in self.book.siblings(order):
            self.end(sibling, "replaced")
        self.touch(order, "new")
        self.emit("new", order)

    def execute(self, order: SimOrder, qty: Decimal, price: Decimal) -> None:
        """Fill up to `qty` of `order` at `price`; update books, emit the event, apply group rules."""
        qty = min(qty, order.remaining)
        if qty <= 0 or not order.is_open:
            return
        self.ensure_acked(order)
        order.filled_qty += qty
        order.filled_cost += qty * price
        order.executions.append((self.clock.now(), qty, price))
        full = order.remaining == 0
        if order.status == "pending_replace" and not full:
            order.status_before_replace = "partially_filled"  # the replace still waits for the venue
            self.touch(order)
        else:
            self.touch(order, "filled" if full else "partially_filled")
        if full:
            order.filled_at = self.clock.now()
        self.book.apply_fill(order, qty, price)
        fill = (qty, price, self.book.position_qty(order.symbol))
        self.emit("fill" if full else "partial_fill", order, fill)
        if order.role == "entry" and order.leg_ids and full:
            self.activate_legs(order)
        elif order.role != "entry":
            self.after_exit_fill(order, full)

    def ensure_acked(self, order: SimOrder) -> None:
        if order.status in ("accepted", "pending_new"):
            self.ack(order)

    def activate_legs(self, root: SimOrder) -> None:
        legs = [self.book.orders[i] for i in root.leg_ids]
        has_take_profit = any(leg.role == "take_profit" for leg in legs)
        for leg in legs:
            if leg.is_open and (leg.role == "take_profit" or not has_take_profit):
                if leg.status == "pending_replace":
                    leg.status_before_replace = "new"
                    continue
                self.touch(leg, "new")
                self.emit("new", leg)
        for leg in legs:
            self.match(leg)

    def after_exit_fill(self, order: SimOrder, full: bool) -> None:
        for sibling in self.book.siblings(order):
            if not sibling.is_open:
                continue
            if full:
                # Real Alpaca sometimes omits this cancel's event; the books end the sibling all the same,
                # readable by GET (docs/alpaca.md, "The omitted sibling cancel").
                self.end(sibling, "canceled", emit=not self.omit_sibling_event(sibling.symbol))
            else:
                sibling.qty = sibling.filled_qty + order.remaining
                self.touch(sibling)

    # -- ending orders ---------------------------------------------------------------------------------------

    def end(self, order: SimOrder, status: str, emit: bool = True) -> None:
        """End one open order (cancel, expire, reject; replace a triggered stop's sibling), with its event."""
        if not order.is_open:
            return
        self.touch(order, status)
        setattr(order, _STAMPS[status], self.clock.now())
        if emit:
            self.emit(status, order)

    def terminate(self, order: SimOrder, status: str) -> None:
        """End `order` and every other open order of its group: "if any one of the orders is canceled, any
        remaining open order in the group is canceled" (docs/alpaca.md §6.1). So a bracket entry canceled or
        expired after a partial fill takes its held legs with it, and its filled shares stay in the position
        with no exit (docs/simulator.md, "Brackets and OTO"); a leg canceled while the entry still works
        cancels the entry too."""
        self.end(order, status)
        root = self.book.root(order)
        for member in [root, *(self.book.orders[i] for i in root.leg_ids)]:
            self.end(member, status)

    def request_cancel(self, order: SimOrder) -> None:
        order.cancel_requested = True
        if self.latency.pending_cancel_event:
            self.touch(order, "pending_cancel")
            self.emit("pending_cancel", order)
        self.later(self.latency.cancel_s, f"cancel {order.id}", lambda: self.finish_cancel(order))

    def finish_cancel(self, order: SimOrder) -> None:
        if order.status == "filled":
            self.emit("order_cancel_rejected", order)  # the fill won the race
        else:
            self.terminate(order, "canceled")


def notional_qty(notional: Decimal | None, price: Decimal) -> Decimal:
    """Shares a dollar amount buys at `price`, rounded down to Alpaca's 9 decimals."""
    assert notional is not None
    return (notional / price).quantize(QTY_STEP, rounding=ROUND_DOWN)


def order_with_legs(book: Book, order: SimOrder) -> JsonDict:
    """Render an order with its legs nested (used for POST responses and nested=true reads)."""
    return order_json(order, lambda o: [book.orders[i] for i in o.leg_ids])
