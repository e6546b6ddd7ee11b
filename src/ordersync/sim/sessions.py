"""Market sessions on the NYSE calendar, for scenarios with `market: {calendar: true}`.

Which orders may trade now (docs/scenarios.md, "market"; docs/alpaca.md, "Market sessions"):

- in the regular session (09:30-16:00 ET, 13:00 on early closes) every order trades but `opg` and `cls`;
- `opg` orders trade only in the opening auction and `cls` orders only in the closing one (the instants of the
  open and the close); what they leave unfilled is canceled then;
- in the pre-market (04:00-09:30) and after-hours (16:00-20:00) only `extended_hours` orders trade (the
  request parser already limits those to DAY limit orders); nothing trades on a closed day;
- at the close, every DAY order still open that is not an extended-hours order ends `expired` (with its
  event); extended-hours DAY orders expire at 20:00;
- with `market.done_for_day` (opt-in, [UNCONFIRMED] when Alpaca sends it), a partially filled GTC order goes
  `done_for_day` (with its event) at the close and back to `partially_filled` at the next session.

Orders submitted while they cannot trade are accepted and rest until they can. The boundaries are chained
timed events on the exchange's scheduler: each one schedules the next, so a stepped clock fires them in
order and a run of any length crosses as many closes and opens as it spans."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from .calendar import MarketCalendar
from .model import SimOrder

if TYPE_CHECKING:
    from .exchange import Exchange

__all__ = ["MarketSessions"]


class MarketSessions:
    """The calendar's view of one exchange: what may trade now, and what happens at each boundary."""

    def __init__(self, exchange: Exchange, done_for_day: bool = False) -> None:
        self.exchange = exchange
        self.done_for_day = done_for_day
        self.calendar = MarketCalendar()
        self._auction: str | None = None  # "open" or "close" while an auction's orders are matched

    def start(self) -> None:
        self._schedule_next(self.exchange.clock.now())

    # -- rules -----------------------------------------------------------------------------------------

    def can_trade(self, order: SimOrder) -> bool:
        now = self.exchange.clock.now()
        tif = order.time_in_force
        if tif == "opg":
            return self._auction == "open"
        if tif == "cls":
            return self._auction == "close"
        if self._auction is not None or self.calendar.is_open(now):
            return True
        return order.extended_hours and self.calendar.is_extended_hours(now)

    def next_trading_time(self, order: SimOrder, after: datetime) -> datetime:
        """When `order` may next trade (a deferred plan fill goes then)."""
        if order.extended_hours:
            session = self.calendar.session_at(after)
            if session is not None and after < session.session_open:
                return session.session_open
        return self.calendar.next_open(after)

    # -- boundaries ------------------------------------------------------------------------------------

    def _schedule_next(self, after: datetime) -> None:
        due, kind = self._next_boundary(after)
        self.exchange.scheduler.schedule(due, f"market {kind}", lambda: self._boundary(due, kind))

    def _next_boundary(self, t: datetime) -> tuple[datetime, str]:
        calendar = self.calendar
        candidates = [(calendar.next_open(t), "open"), (calendar.next_close(t), "close")]
        for session in (calendar.session_at(t), calendar.session_at(calendar.next_open(t))):
            if session is not None:
                candidates += [
                    (session.session_open, "pre_market"),
                    (session.session_close, "after_hours_end"),
                ]
        return min((c for c in candidates if c[0] > t), key=lambda c: c[0])

    def _boundary(self, due: datetime, kind: str) -> None:
        if kind in ("open", "pre_market"):
            self._resume_done_for_day()
        if kind == "open":
            self._auction_then(due, "open", "opg")
        elif kind == "close":
            self._auction_then(due, "close", "cls")
            self._expire(lambda o: o.time_in_force == "day" and not o.extended_hours)
            if self.done_for_day:
                self._mark_done_for_day()
        elif kind == "after_hours_end":
            self._expire(lambda o: o.time_in_force == "day" and o.extended_hours)
        else:
            self._match_all()
        self._schedule_next(due)

    def _auction_then(self, due: datetime, auction: str, tif: str) -> None:
        self._auction = auction
        try:
            self._match_all()
        finally:
            self._auction = None
        for order in self.exchange.book.open_orders():
            if order.time_in_force == tif:
                self.exchange.venue.terminate(order, "canceled")
        if auction == "open":
            self._match_all()

    def _match_all(self) -> None:
        venue = self.exchange.venue
        for symbol in list(self.exchange.book.symbols):
            venue.match_symbol(symbol)

    def _mark_done_for_day(self) -> None:
        # Opt-in (`market.done_for_day`): a GTC order that traded part of its quantity today is done for the
        # day at the close; it stays open and works again from the next session.
        venue = self.exchange.venue
        for order in self.exchange.book.open_orders():
            if order.time_in_force == "gtc" and order.status == "partially_filled":
                venue.touch(order, "done_for_day")
                venue.emit("done_for_day", order)

    def _resume_done_for_day(self) -> None:
        for order in self.exchange.book.open_orders():
            if order.status == "done_for_day":
                self.exchange.venue.touch(order, "partially_filled")

    def _expire(self, which: Callable[[SimOrder], bool]) -> None:
        venue = self.exchange.venue
        for order in self.exchange.book.open_orders():
            if which(order) and order.is_open:
                venue.terminate(order, "expired")
