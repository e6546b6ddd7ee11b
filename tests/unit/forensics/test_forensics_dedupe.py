"""Merging DB-log rows that repeat an Alpaca error line, and never merging anything else."""

from __future__ import annotations

from datetime import timedelta

from forensics_support import reserved_body, utc

from ordersync.forensics import Origin, Rejection
from ordersync.forensics.dedupe import BodyEvents, distinct_events, pair_within
from ordersync.forensics.timeutil import to_us

BODY = reserved_body("STWD", 37, "564db8de")


def events(*rows: tuple[Origin, str | None]) -> BodyEvents:
    collected = BodyEvents()
    for origin, clock in rows:
        at = utc(clock) if clock else None
        collected.add(Rejection(body=BODY, at=at, origin=origin), to_us(at) if at else None)
    return collected


def test_pairs_within_the_window_each_time_used_once() -> None:
    assert pair_within([0, 10, 100], [2, 4, 50], window=3) == ([10, 100], [4, 50], 1)
    assert pair_within([0], [1, 2], window=5) == ([], [2], 1)


def test_db_row_within_two_seconds_of_the_alpaca_line_is_the_same_event() -> None:
    merged = distinct_events(events((Origin.ALPACA_LOG, "16:02:41"), (Origin.DB_LOG, "16:02:42.500")))
    assert (tuple(merged.times), merged.untimed, merged.merged) == ((to_us(utc("16:02:41")),), 0, 1)


def test_db_row_three_seconds_later_is_a_separate_event() -> None:
    merged = distinct_events(events((Origin.ALPACA_LOG, "16:02:41"), (Origin.DB_LOG, "16:02:44")))
    assert (len(merged.times), merged.merged) == (2, 0)


def test_retries_by_the_same_origin_are_never_merged() -> None:
    merged = distinct_events(events((Origin.ALPACA_LOG, "16:02:41"), (Origin.ALPACA_LOG, "16:02:41")))
    assert (len(merged.times), merged.merged) == (2, 0)


def test_untimed_db_rows_copy_unpaired_alpaca_lines_and_only_the_surplus_counts() -> None:
    merged = distinct_events(
        events(
            (Origin.ALPACA_LOG, "16:02:41"),
            (Origin.DB_LOG, "16:02:41"),  # pairs with the first Alpaca line
            (Origin.ALPACA_LOG, "16:07:49"),
            (Origin.DB_LOG, None),  # a copy of 16:07:49
            (Origin.DB_LOG, None),  # no Alpaca line left: a new event without a time
        )
    )
    assert (len(merged.times), merged.untimed, merged.merged) == (2, 1, 2)


def test_journal_records_are_never_merged() -> None:
    merged = distinct_events(events((Origin.JOURNAL, "16:02:41"), (Origin.DB_LOG, "16:02:41")))
    assert (len(merged.times), merged.merged) == (2, 0)


def test_pairing_is_independent_of_input_order() -> None:
    late = utc("16:02:41") + timedelta(milliseconds=18)
    forward = events((Origin.ALPACA_LOG, "16:02:41"), (Origin.DB_LOG, late.time().isoformat()))
    backward = events((Origin.DB_LOG, late.time().isoformat()), (Origin.ALPACA_LOG, "16:02:41"))
    assert distinct_events(forward) == distinct_events(backward)
