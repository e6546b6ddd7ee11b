"""The submissions of a log by broker order id, kept in columns: a `Submission` is rebuilt when read.

A 1 GB log names ~150 000 parents; a `Submission` object and its `datetime` cost ~140 bytes each, the
columns (a time in µs and four shared references) ~40. Reads build the record again: equal to the one
added (a UTC time comes back as the same instant with the same `UTC` tzinfo; any other time, naive or
with another offset, is kept as given). The last record read is kept, since a report row reads its
parent several times in a row. Stdlib only.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, KeysView, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final

from ordersync.forensics.records import Origin, Submission
from ordersync.forensics.timeutil import from_us, to_us

_NO_TIME: Final = -(1 << 62)


class SubmissionTable(Mapping[str, Submission]):
    """`Mapping[str, Submission]` over columns; `add` keeps the earliest submission of each order."""

    __slots__ = ("_at", "_cid", "_index", "_last", "_odd", "_origin", "_qty", "_side", "_symbol")

    def __init__(self) -> None:
        self._index: dict[str, int] = {}
        self._at: array[int] = array("q")  # µs since the epoch (UTC times), else _NO_TIME
        self._symbol: list[str | None] = []
        self._side: list[str | None] = []
        self._qty: list[Decimal | None] = []
        self._cid: list[str | None] = []
        self._origin: list[Origin] = []
        self._odd: dict[int, datetime] = {}  # a time that is not an aware UTC datetime, as given
        self._last: Submission | None = None

    def add(self, s: Submission) -> None:
        """Keep `s` unless the order is known with a time that `s` does not precede (first seen wins)."""
        row = self._index.get(s.broker_order_id)
        if row is not None:
            known = self._time(row)
            if s.at is None or (known is not None and not s.at < known):
                return
        else:
            row = self._index[s.broker_order_id] = len(self._at)
            self._at.append(_NO_TIME)
            self._symbol.append(None)
            self._side.append(None)
            self._qty.append(None)
            self._cid.append(None)
            self._origin.append(s.origin)
        self._odd.pop(row, None)
        if s.at is not None and s.at.tzinfo is UTC:
            self._at[row] = to_us(s.at)
        else:
            self._at[row] = _NO_TIME
            if s.at is not None:
                self._odd[row] = s.at
        self._symbol[row], self._side[row], self._qty[row] = s.symbol, s.side, s.qty
        self._cid[row], self._origin[row] = s.client_order_id, s.origin
        self._last = None

    def add_us(
        self,
        order_id: str,
        at_us: int,
        symbol: str | None,
        side: str | None,
        qty: Decimal | None,
        client_order_id: str | None,
    ) -> None:
        """`add` of a log submission timed in µs (UTC), without building its record or its datetime."""
        row = self._index.get(order_id)
        if row is not None:
            known = self._at[row]
            if known == _NO_TIME:  # no time, or one that is not UTC: `add` compares it as given
                sub = Submission(order_id, from_us(at_us), symbol, side, qty, client_order_id)
                self.add(sub)
                return
            if not at_us < known:
                return
        else:
            row = self._index[order_id] = len(self._at)
            self._at.append(at_us)
            self._symbol.append(symbol)
            self._side.append(side)
            self._qty.append(qty)
            self._cid.append(client_order_id)
            self._origin.append(Origin.ALPACA_LOG)
            self._last = None
            return
        self._odd.pop(row, None)
        self._at[row] = at_us
        self._symbol[row], self._side[row], self._qty[row] = symbol, side, qty
        self._cid[row], self._origin[row] = client_order_id, Origin.ALPACA_LOG
        self._last = None

    def _time(self, row: int) -> datetime | None:
        us = self._at[row]
        return from_us(us) if us != _NO_TIME else self._odd.get(row)

    def row_of(self, order_id: str) -> int | None:
        """The row of `order_id` (0 for the first order added, and so on), or `None`."""
        return self._index.get(order_id)

    def at_us(self, order_id: str) -> int | None:
        """The submission time of `order_id` in µs, without building the record (`None`: no time)."""
        row = self._index.get(order_id)
        if row is None:
            return None
        us = self._at[row]
        if us != _NO_TIME:
            return us
        odd = self._odd.get(row)
        return to_us(odd) if odd is not None else None

    def side_symbol(self, order_id: str) -> tuple[str | None, str | None] | None:
        """(side, symbol) of `order_id`, or `None`: read without building a `Submission`."""
        row = self._index.get(order_id)
        return None if row is None else (self._side[row], self._symbol[row])

    def __getitem__(self, order_id: str) -> Submission:
        last = self._last
        if last is not None and last.broker_order_id == order_id:
            return last
        row = self._index[order_id]
        sub = Submission(
            broker_order_id=order_id,
            at=self._time(row),
            symbol=self._symbol[row],
            side=self._side[row],
            qty=self._qty[row],
            client_order_id=self._cid[row],
            origin=self._origin[row],
        )
        self._last = sub
        return sub

    def get(self, order_id: str, default: Submission | None = None) -> Submission | None:  # type: ignore[override]
        if order_id in self._index:
            return self[order_id]
        return default

    def __contains__(self, order_id: object) -> bool:
        return order_id in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def keys(self) -> KeysView[str]:
        return self._index.keys()

    def brief(self) -> Iterator[tuple[str, int | None, str | None, str | None]]:
        """(order id, time in µs or `None`, symbol, side) of every submission, in the order first added."""
        at, odd, symbol, side = self._at, self._odd, self._symbol, self._side
        for order_id, row in self._index.items():
            us = at[row]
            if us == _NO_TIME:
                o = odd.get(row)
                yield order_id, (to_us(o) if o is not None else None), symbol[row], side[row]
            else:
                yield order_id, us, symbol[row], side[row]


def brief(
    submissions: Mapping[str, Submission],
) -> Iterator[tuple[str, int | None, str | None, str | None]]:
    """(order id, time in µs or `None`, symbol, side) of every submission, from columns when they are."""
    if isinstance(submissions, SubmissionTable):
        return submissions.brief()
    return ((k, to_us(s.at) if s.at is not None else None, s.symbol, s.side) for k, s in submissions.items())


def side_symbol(submissions: Mapping[str, Submission], order_id: str) -> tuple[str | None, str | None] | None:
    """(side, symbol) of `order_id`'s submission, or `None`, from columns when they are (linking asks
    this once per refusal body: no `Submission` and datetime built for the answer)."""
    if isinstance(submissions, SubmissionTable):
        return submissions.side_symbol(order_id)
    sub = submissions.get(order_id)
    return None if sub is None else (sub.side, sub.symbol)


def submitted_us(submissions: Mapping[str, Submission], order_id: str | None) -> int | None:
    """The submission time of `order_id` in µs (`None`: no such submission or no time)."""
    if not order_id:
        return None
    if isinstance(submissions, SubmissionTable):
        return submissions.at_us(order_id)
    sub = submissions.get(order_id)
    return to_us(sub.at) if sub is not None and sub.at is not None else None
