"""What the stream already told us about a symbol's position, so a release needs no position read.

Every ``fill``/``partial_fill`` event carries ``position_qty``, the account's position right after that
execution (docs/alpaca.md §1.3). The writer keeps the newest one per symbol together with our own book
for the symbol at that moment (``Context.ours``). The release gate may size protection from it instead
of ``GET /v2/positions/{symbol}`` only while it provably describes the account now and every share of it
is ours (docs/architecture.md §4, "the position rule"):

* it is the newest stream fill on the symbol (an older event delivered late never replaces it);
* our book has not moved since (a fill of ours learned any other way, a poll, a lookup, a submit's
  answer, or a reconciliation that re-reads the book, makes it unusable);
* the position equals our book: nothing on the symbol belongs to anyone else, so the only shares held
  for orders are our own open sells, which the store knows;
* the stream has not dropped since, and the evidence is younger than ``MAX_AGE_S``.

Anything else, a refusal since (a 40310000 puts the plan into backoff) or a decision the evidence would
hold for lack of available shares, falls back to the broker's read: the evidence may say "yes", only the
broker's ``qty_available`` may say "no".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from ordersync.domain.attribution import our_shares
from ordersync.domain.errors import BrokerError, BrokerUnavailable
from ordersync.domain.events import OrderObserved, Source
from ordersync.domain.ids import Symbol
from ordersync.ports import Broker, Clock, Transaction

MAX_AGE_S = 30.0  # engine-clock seconds an event's position is trusted without a newer one
READ_ATTEMPTS = 2  # GET /v2/positions/{symbol} on a 5xx or timeout (read_position)
RETRY_PAUSE_S = 0.2


@dataclass(frozen=True, slots=True)
class Evidence:
    """One stream fill's ``position_qty`` and our book for its symbol right after it was applied."""

    position: Decimal
    ours: Decimal
    ts_event: datetime  # broker time of the event: orders the evidence
    seen_at: datetime  # engine clock when applied: ages it


class PositionEvidence:
    """The newest usable position per symbol, written by the writer and read by the release gate."""

    def __init__(self) -> None:
        self._by_symbol: dict[Symbol, Evidence] = {}

    def book(
        self, ours: dict[Symbol, Decimal] | None, batch: list[OrderObserved], tx: Transaction
    ) -> dict[Symbol, Decimal] | None:
        """Our book, read from the store before a batch with a stream fill if it is being re-read (after a
        reconciliation): the evidence is kept with the book, and the release gate reads it anyway."""
        if ours is None and any(_stream_position(obs) is not None for obs in batch):
            return our_shares(tx.all_orders())
        return ours

    def note(self, obs: OrderObserved, ours: dict[Symbol, Decimal] | None, now: datetime) -> None:
        """Keep ``obs``'s position if it is a stream fill newer than what is kept (after applying it)."""
        position = _stream_position(obs)
        if position is None:
            return
        symbol = obs.order.symbol
        kept = self._by_symbol.get(symbol)
        if kept is not None and obs.ts_event < kept.ts_event:
            return  # a late event: the kept one already includes it (the broker's order of fills)
        if ours is None:  # the book is being re-read: nothing to compare against later
            self._by_symbol.pop(symbol, None)
            return
        book = ours.get(symbol, Decimal(0))
        self._by_symbol[symbol] = Evidence(position, book, obs.ts_event, now)

    def forget(self) -> None:
        """The stream dropped: events may be lost, so no kept position describes the account any more."""
        self._by_symbol.clear()

    def usable(self, symbol: Symbol, ours: dict[Symbol, Decimal] | None, now: datetime) -> Decimal | None:
        """The long position of ``symbol`` if the evidence describes the account now and it is all ours."""
        kept = self._by_symbol.get(symbol)
        if kept is None or ours is None:
            return None
        book = ours.get(symbol, Decimal(0))
        fresh = (now - kept.seen_at).total_seconds() <= MAX_AGE_S
        if not fresh or book != kept.ours or kept.position != book or kept.position < 0:
            return None
        return kept.position


def _stream_position(obs: OrderObserved) -> Decimal | None:
    """The position a stream fill reports (None for any other observation)."""
    if obs.source is not Source.STREAM or obs.execution is None:
        return None
    return obs.execution.position_qty


async def read_position(
    broker: Broker, clock: Clock, symbol: Symbol
) -> tuple[Decimal | None, Decimal | None]:
    """The broker's ``qty_available`` and position for ``symbol`` (None, None when it cannot be read):
    the release's fallback when no kept evidence is usable (``GET /v2/positions/{symbol}``).

    A 5xx or a timeout is asked once more after ``RETRY_PAUSE_S``: an unreadable position holds the release
    and starts its lookup backoff (1 s, then doubling: ``retry.short_shares_backoff_s``), so one transient
    error would cost a protection seconds.
    """
    for attempt in range(READ_ATTEMPTS):
        try:
            position = await broker.position(symbol)
        except BrokerUnavailable:
            if attempt + 1 < READ_ATTEMPTS:
                await clock.sleep(RETRY_PAUSE_S)
            continue
        except BrokerError:
            break  # refused or rate limited: not weather of this one request
        if position is None:
            return Decimal(0), Decimal(0)  # no position (404): flat, nothing available
        return position.qty_available, position.qty
    return None, None  # unknown: the rule holds the release until the broker can be read
