"""The NYSE trading calendar: sessions, holidays, early closes, and Alpaca's `/v2/clock` body.

Pure (no I/O, no clock reads): every question takes the instant or the date it is about. Holidays are
computed by NYSE Rule 7.2 rather than copied from a table, so any year works; the one-off closures the rule
cannot know (a national day of mourning) are listed in `SPECIAL_CLOSURES`. The rules, checked against the
NYSE Group's published 2025-2027 calendars (docs/simulator.md, "Market calendar"):

- full holidays: New Year's Day, Martin Luther King Jr. Day (3rd Monday of January), Washington's Birthday
  (3rd Monday of February), Good Friday, Memorial Day (last Monday of May), Juneteenth, Independence Day,
  Labor Day (1st Monday of September), Thanksgiving (4th Thursday of November), Christmas Day;
- a holiday on a Saturday is observed the Friday before, on a Sunday the Monday after; except New Year's
  Day on a Saturday, which is not observed at all (the Friday is the last session of the old year);
- early close at 13:00 ET: the day before Independence Day (only when July 4 falls Tuesday to Friday), the day
  after Thanksgiving, and Christmas Eve (only when December 24 is a weekday that is not itself the
  observed Christmas holiday);
- regular session 09:30-16:00 ET; extended hours from 04:00 (pre-market) to 20:00 (after-hours) ET on every
  trading day, early-close days included ([sim choice]: NYSE Arca's late session ends at 17:00 on those days).

Times are aware UTC datetimes; the ET zone comes from `zoneinfo` (the `tzdata` package supplies it on machines
without system zone data), so daylight-saving changes are the zone database's, not ours.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from .wire import JsonDict

__all__ = ["EASTERN", "SPECIAL_CLOSURES", "MarketCalendar", "Session", "easter_sunday", "nyse_holidays"]

EASTERN = ZoneInfo("America/New_York")

REGULAR_OPEN = time(9, 30)
REGULAR_CLOSE = time(16, 0)
EARLY_CLOSE = time(13, 0)
PRE_MARKET_OPEN = time(4, 0)
AFTER_HOURS_CLOSE = time(20, 0)

# Closures no rule predicts. 2025-01-09: national day of mourning for President Carter (NYSE closed).
SPECIAL_CLOSURES: frozenset[date] = frozenset({date(2025, 1, 9)})

# How far `next_open` / `next_close` look ahead before giving up (no real calendar has a gap this long).
_MAX_SEARCH_DAYS = 30


@dataclass(frozen=True)
class Session:
    """One trading day: the regular `open`/`close` and the extended `session_open`/`session_close` (UTC)."""

    date: date
    open: datetime
    close: datetime
    session_open: datetime
    session_close: datetime

    @property
    def early_close(self) -> bool:
        return self.close.astimezone(EASTERN).time() != REGULAR_CLOSE


def easter_sunday(year: int) -> date:
    """Gregorian Easter Sunday (the anonymous Gregorian algorithm, "Meeus/Jones/Butcher")."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month = (h + ell - 7 * m + 114) // 31
    day = (h + ell - 7 * m + 114) % 31 + 1
    return date(year, month, day)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The n-th `weekday` (Monday=0) of the month; n=-1 for the last one."""
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = (date(year, month % 12 + 1, 1) if month < 12 else date(year + 1, 1, 1)) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _observed(d: date) -> date:
    """Saturday -> the Friday before, Sunday -> the Monday after."""
    if d.weekday() == 5:
        return d - timedelta(days=1)
    if d.weekday() == 6:
        return d + timedelta(days=1)
    return d


def nyse_holidays(year: int) -> dict[date, str]:
    """The full-day NYSE holidays observed in `year` (by rule, plus `SPECIAL_CLOSURES`), date -> name."""
    holidays: dict[date, str] = {}
    new_year = date(year, 1, 1)
    if new_year.weekday() != 5:  # a Saturday New Year's Day is not observed (NYSE Rule 7.2)
        holidays[_observed(new_year)] = "New Year's Day"
    holidays[_nth_weekday(year, 1, 0, 3)] = "Martin Luther King, Jr. Day"
    holidays[_nth_weekday(year, 2, 0, 3)] = "Washington's Birthday"
    holidays[easter_sunday(year) - timedelta(days=2)] = "Good Friday"
    holidays[_nth_weekday(year, 5, 0, -1)] = "Memorial Day"
    if year >= 2022:
        holidays[_observed(date(year, 6, 19))] = "Juneteenth National Independence Day"
    holidays[_observed(date(year, 7, 4))] = "Independence Day"
    holidays[_nth_weekday(year, 9, 0, 1)] = "Labor Day"
    holidays[_nth_weekday(year, 11, 3, 4)] = "Thanksgiving Day"
    holidays[_observed(date(year, 12, 25))] = "Christmas Day"
    for special in SPECIAL_CLOSURES:
        if special.year == year:
            holidays[special] = "Special closure"
    return holidays


def _early_closes(year: int) -> set[date]:
    closes = {_nth_weekday(year, 11, 3, 4) + timedelta(days=1)}  # the day after Thanksgiving
    if date(year, 7, 4).weekday() in (1, 2, 3, 4):  # July 4 Tuesday..Friday: July 3 is a trading day
        closes.add(date(year, 7, 3))
    christmas_eve = date(year, 12, 24)
    if christmas_eve.weekday() < 5 and _observed(date(year, 12, 25)) != christmas_eve:
        closes.add(christmas_eve)
    return closes


def _at(d: date, t: time) -> datetime:
    return datetime.combine(d, t, tzinfo=EASTERN).astimezone(UTC)


class MarketCalendar:
    """NYSE sessions for any date; thread-safe (its caches only ever gain entries that are the same whoever
    computes them)."""

    def __init__(self) -> None:
        self._holidays: dict[int, dict[date, str]] = {}
        self._early: dict[int, set[date]] = {}
        self._days: dict[date, Session | None] = {}

    def holiday_name(self, d: date) -> str | None:
        """The holiday closing the market on `d`, or None."""
        if d.year not in self._holidays:
            self._holidays[d.year] = nyse_holidays(d.year)
        return self._holidays[d.year].get(d)

    def is_early_close(self, d: date) -> bool:
        if d.year not in self._early:
            self._early[d.year] = _early_closes(d.year)
        return d in self._early[d.year]

    def session_on(self, d: date) -> Session | None:
        """The session of the (ET) date `d`, or None on a weekend or holiday."""
        if d not in self._days:
            self._days[d] = self._build_session(d)
        return self._days[d]

    def _build_session(self, d: date) -> Session | None:
        if d.weekday() >= 5 or self.holiday_name(d) is not None:
            return None
        close = EARLY_CLOSE if self.is_early_close(d) else REGULAR_CLOSE
        return Session(
            date=d,
            open=_at(d, REGULAR_OPEN),
            close=_at(d, close),
            session_open=_at(d, PRE_MARKET_OPEN),
            session_close=_at(d, AFTER_HOURS_CLOSE),
        )

    def sessions(self, start: date, end: date) -> list[Session]:
        """Every session from `start` to `end`, both included (empty when end < start)."""
        found: list[Session] = []
        d = start
        while d <= end:
            session = self.session_on(d)
            if session is not None:
                found.append(session)
            d += timedelta(days=1)
        return found

    def session_at(self, t: datetime) -> Session | None:
        """The session of the ET date that `t` falls on (whether or not `t` is inside its hours)."""
        return self.session_on(_eastern_date(t))

    def is_open(self, t: datetime) -> bool:
        """True inside a regular session: open <= t < close."""
        session = self.session_at(t)
        return session is not None and session.open <= t < session.close

    def is_extended_hours(self, t: datetime) -> bool:
        """True in the pre-market or after-hours part of a trading day (not inside the regular session)."""
        session = self.session_at(t)
        if session is None:
            return False
        return session.session_open <= t < session.session_close and not session.open <= t < session.close

    def next_open(self, t: datetime) -> datetime:
        """The first regular open strictly after `t` (tomorrow's, or later, when the market is open now)."""
        for session in self._sessions_from(_eastern_date(t)):
            if session.open > t:
                return session.open
        raise AssertionError("unreachable: no session within the search window")  # pragma: no cover

    def next_close(self, t: datetime) -> datetime:
        """The first regular close strictly after `t` (today's when the market is open now)."""
        for session in self._sessions_from(_eastern_date(t)):
            if session.close > t:
                return session.close
        raise AssertionError("unreachable: no session within the search window")  # pragma: no cover

    def clock_json(self, t: datetime) -> JsonDict:
        """Alpaca's GET /v2/clock body at `t`: ET times with their offset ("2026-03-09T09:30:00-04:00")."""
        return {
            "timestamp": t.astimezone(EASTERN).isoformat(timespec="microseconds"),
            "is_open": self.is_open(t),
            "next_open": self.next_open(t).astimezone(EASTERN).isoformat(timespec="seconds"),
            "next_close": self.next_close(t).astimezone(EASTERN).isoformat(timespec="seconds"),
        }

    def calendar_json(self, start: date, end: date) -> list[JsonDict]:
        """Alpaca's GET /v2/calendar rows: ET wall times "HH:MM" and session bounds "HHMM"."""
        return [self._calendar_row(s) for s in self.sessions(start, end)]

    def _sessions_from(self, d: date) -> Iterator[Session]:
        for offset in range(_MAX_SEARCH_DAYS):
            session = self.session_on(d + timedelta(days=offset))
            if session is not None:
                yield session

    def _calendar_row(self, session: Session) -> JsonDict:
        def wall(t: datetime, fmt: str) -> str:
            return t.astimezone(EASTERN).strftime(fmt)

        # T+1 (SEC rule 15c6-1 since 2024-05-28): the next trading day ([sim simplification]: bank holidays
        # that are not NYSE holidays, such as Columbus Day, are ignored).
        settlement = next(self._sessions_from(session.date + timedelta(days=1))).date
        return {
            "date": session.date.isoformat(),
            "open": wall(session.open, "%H:%M"),
            "close": wall(session.close, "%H:%M"),
            "session_open": wall(session.session_open, "%H%M"),
            "session_close": wall(session.session_close, "%H%M"),
            "settlement_date": settlement.isoformat(),
        }


def _eastern_date(t: datetime) -> date:
    if t.tzinfo is None:
        raise ValueError(f"calendar times must be timezone-aware, got naive {t.isoformat()}")
    return t.astimezone(EASTERN).date()
