"""The simulator's NYSE calendar against the NYSE Group's published 2025-2027 holiday and early-close lists,
and at the boundaries that matter to a clock: open/close instants, weekends, holidays, early closes, DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from ordersync.sim.calendar import EASTERN, MarketCalendar, easter_sunday, nyse_holidays

# As published by NYSE Group (2025-2027 calendar announcement), including the 2025-01-09 closure.
PUBLISHED_HOLIDAYS = {
    2025: [
        "2025-01-01", "2025-01-09", "2025-01-20", "2025-02-17", "2025-04-18", "2025-05-26",
        "2025-06-19", "2025-07-04", "2025-09-01", "2025-11-27", "2025-12-25",
    ],
    2026: [
        "2026-01-01", "2026-01-19", "2026-02-16", "2026-04-03", "2026-05-25", "2026-06-19",
        "2026-07-03", "2026-09-07", "2026-11-26", "2026-12-25",
    ],
    2027: [
        "2027-01-01", "2027-01-18", "2027-02-15", "2027-03-26", "2027-05-31", "2027-06-18",
        "2027-07-05", "2027-09-06", "2027-11-25", "2027-12-24",
    ],
}  # fmt: skip
PUBLISHED_EARLY_CLOSES = {
    2025: ["2025-07-03", "2025-11-28", "2025-12-24"],
    2026: ["2026-11-27", "2026-12-24"],
    2027: ["2027-11-26"],
}

CAL = MarketCalendar()


def et(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=EASTERN)


@pytest.mark.parametrize("year", [2025, 2026, 2027])
def test_holidays_match_the_published_nyse_calendar(year: int) -> None:
    assert sorted(d.isoformat() for d in nyse_holidays(year)) == PUBLISHED_HOLIDAYS[year]


@pytest.mark.parametrize("year", [2025, 2026, 2027])
def test_early_closes_match_the_published_nyse_calendar(year: int) -> None:
    sessions = CAL.sessions(date(year, 1, 1), date(year, 12, 31))
    early = [s.date.isoformat() for s in sessions if s.early_close]
    assert early == PUBLISHED_EARLY_CLOSES[year]
    for s in sessions:
        assert s.close.astimezone(EASTERN).strftime("%H:%M") == ("13:00" if s.early_close else "16:00")


def test_saturday_new_year_is_not_observed() -> None:
    # 2028-01-01 is a Saturday: NYSE observes no holiday, 2027-12-31 trades.
    assert date(2027, 12, 31) not in nyse_holidays(2027)
    assert date(2027, 12, 31) not in nyse_holidays(2028)
    assert CAL.session_on(date(2027, 12, 31)) is not None


def test_easter() -> None:
    assert [easter_sunday(y) for y in (2025, 2026, 2027, 2028)] == [
        date(2025, 4, 20), date(2026, 4, 5), date(2027, 3, 28), date(2028, 4, 16)
    ]  # fmt: skip


def test_session_times_are_utc_and_follow_dst() -> None:
    winter = CAL.session_on(date(2026, 1, 5))
    summer = CAL.session_on(date(2026, 7, 6))
    assert winter is not None
    assert summer is not None
    assert winter.open == datetime(2026, 1, 5, 14, 30, tzinfo=UTC)
    assert winter.close == datetime(2026, 1, 5, 21, 0, tzinfo=UTC)
    assert winter.session_open == datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    assert winter.session_close == datetime(2026, 1, 6, 1, 0, tzinfo=UTC)
    assert summer.open == datetime(2026, 7, 6, 13, 30, tzinfo=UTC)
    assert summer.close == datetime(2026, 7, 6, 20, 0, tzinfo=UTC)


def test_dst_weekend_next_open() -> None:
    # DST starts Sunday 2026-03-08: Friday's close is 21:00 UTC, Monday's open is 13:30 UTC.
    friday_close = et(2026, 3, 6, 16)
    assert CAL.next_open(friday_close) == datetime(2026, 3, 9, 13, 30, tzinfo=UTC)
    assert CAL.next_close(friday_close) == datetime(2026, 3, 9, 20, 0, tzinfo=UTC)
    # DST ends Sunday 2026-11-01.
    assert CAL.next_open(et(2026, 10, 30, 17)) == datetime(2026, 11, 2, 14, 30, tzinfo=UTC)


def test_open_and_close_boundaries() -> None:
    assert not CAL.is_open(et(2026, 3, 10, 9, 29, 59))
    assert CAL.is_open(et(2026, 3, 10, 9, 30))
    assert CAL.is_open(et(2026, 3, 10, 15, 59, 59))
    assert not CAL.is_open(et(2026, 3, 10, 16))
    # open now: the next close is today's, the next open tomorrow's
    assert CAL.next_close(et(2026, 3, 10, 10)) == et(2026, 3, 10, 16)
    assert CAL.next_open(et(2026, 3, 10, 10)) == et(2026, 3, 11, 9, 30)
    # exactly at the open: the next open is tomorrow's
    assert CAL.next_open(et(2026, 3, 10, 9, 30)) == et(2026, 3, 11, 9, 30)
    # before the open: today's
    assert CAL.next_open(et(2026, 3, 10, 4)) == et(2026, 3, 10, 9, 30)


def test_weekend_is_closed() -> None:
    assert CAL.session_on(date(2026, 3, 14)) is None
    assert not CAL.is_open(et(2026, 3, 14, 12))
    assert not CAL.is_extended_hours(et(2026, 3, 14, 12))
    assert CAL.next_open(et(2026, 3, 14, 12)) == et(2026, 3, 16, 9, 30)


def test_holiday_is_skipped() -> None:
    # Thanksgiving 2026 (Thu 26th) closed; Friday 27th closes at 13:00.
    assert CAL.session_on(date(2026, 11, 26)) is None
    assert not CAL.is_open(et(2026, 11, 26, 12))
    assert CAL.next_open(et(2026, 11, 25, 16)) == et(2026, 11, 27, 9, 30)
    assert CAL.next_close(et(2026, 11, 27, 9, 30)) == et(2026, 11, 27, 13)
    assert not CAL.is_open(et(2026, 11, 27, 13))
    assert CAL.is_extended_hours(et(2026, 11, 27, 13))
    # Good Friday 2026 then the weekend: the next open is Monday
    assert CAL.next_open(et(2026, 4, 2, 16, 30)) == et(2026, 4, 6, 9, 30)


def test_extended_hours() -> None:
    assert not CAL.is_extended_hours(et(2026, 3, 10, 3, 59))
    assert CAL.is_extended_hours(et(2026, 3, 10, 4))
    assert not CAL.is_extended_hours(et(2026, 3, 10, 12))
    assert CAL.is_extended_hours(et(2026, 3, 10, 19, 59))
    assert not CAL.is_extended_hours(et(2026, 3, 10, 20))


def test_clock_json_prints_eastern_offsets() -> None:
    body = CAL.clock_json(datetime(2026, 3, 9, 13, 0, 0, 123456, tzinfo=UTC))  # 09:00 EDT Monday
    assert body == {
        "timestamp": "2026-03-09T09:00:00.123456-04:00",
        "is_open": False,
        "next_open": "2026-03-09T09:30:00-04:00",
        "next_close": "2026-03-09T16:00:00-04:00",
    }
    body = CAL.clock_json(datetime(2026, 12, 24, 15, 0, tzinfo=UTC))  # 10:00 EST, early close
    assert body["is_open"] is True
    assert body["next_close"] == "2026-12-24T13:00:00-05:00"
    assert body["next_open"] == "2026-12-28T09:30:00-05:00"


def test_calendar_rows() -> None:
    rows = CAL.calendar_json(date(2026, 12, 23), date(2026, 12, 28))
    assert rows == [
        {"date": "2026-12-23", "open": "09:30", "close": "16:00", "session_open": "0400",
         "session_close": "2000", "settlement_date": "2026-12-24"},
        {"date": "2026-12-24", "open": "09:30", "close": "13:00", "session_open": "0400",
         "session_close": "2000", "settlement_date": "2026-12-28"},
        {"date": "2026-12-28", "open": "09:30", "close": "16:00", "session_open": "0400",
         "session_close": "2000", "settlement_date": "2026-12-29"},
    ]  # fmt: skip
    assert CAL.sessions(date(2026, 1, 2), date(2026, 1, 1)) == []


def test_every_weekday_of_three_years_is_a_session_or_a_holiday() -> None:
    d, end = date(2025, 1, 1), date(2027, 12, 31)
    sessions = {s.date for s in CAL.sessions(d, end)}
    holidays = {h for y in (2025, 2026, 2027) for h in nyse_holidays(y)}
    while d <= end:
        if d.weekday() < 5:
            assert (d in sessions) != (d in holidays), d
        else:
            assert d not in sessions
        d += timedelta(days=1)
    assert len(sessions) == 3 * 261 - (11 + 10 + 10)  # 2025..2027 each have 261 weekdays


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        CAL.is_open(datetime(2026, 3, 10, 12))  # noqa: DTZ001
