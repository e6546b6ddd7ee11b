"""Merging DB-log rows that repeat an Alpaca error line, and never merging anything else."""

from __future__ import annotations

from datetime import timedelta

from forensics_support import reserved_body, utc

from ordersync.forensics import Origin, Rejection
from ordersync.forensics.dedupe import BodyEvents, distinct_events, pair_within
from ordersync.forensics.timeutil import to_us

BODY = reserved_body("STWD", 37, "564db8de")


def events(*rows: tuple[Origin, str | None] | tuple[Origin, None, str]) -> BodyEvents:
    """Rows of (origin, time) or (origin, None, anchor time): an untimed row a few lines under a record."""
    collected = BodyEvents()
    for origin, clock, *anchor in rows:
        at = utc(clock) if clock else None
        anchor_us = to_us(utc(anchor[0])) if anchor else None
        collected.add(
            Rejection(body=BODY, at=at, origin=origin, anchor_us=anchor_us), to_us(at) if at else None
        )
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


def test_untimed_db_row_merges_only_with_the_error_line_it_sits_under() -> None:
    merged = distinct_events(
        events(
            (Origin.ALPACA_LOG, "16:02:41"),
            (Origin.DB_LOG, "16:02:41"),  # same time: pairs with the first Alpaca line
            (Origin.ALPACA_LOG, "16:07:49"),
            (Origin.DB_LOG, None, "16:07:49.025"),  # four lines under the 16:07:49 line: its copy
            (Origin.DB_LOG, None),  # no anchor: nothing says it repeats a line, a refusal of its own
        )
    )
    assert (len(merged.times), merged.untimed, merged.merged, merged.merged_adjacent) == (2, 1, 2, 1)


def test_untimed_db_rows_are_never_merged_with_identical_bodies_elsewhere() -> None:
    # a take-profit retried 25 times: 16 error lines, 9 untimed DB rows from another handler (issue 14)
    rows: list[tuple[Origin, str | None]] = [(Origin.ALPACA_LOG, f"16:{10 + i}:00") for i in range(16)]
    rows += [(Origin.DB_LOG, None)] * 9
    merged = distinct_events(events(*rows))
    assert (len(merged.times) + merged.untimed, merged.merged) == (25, 0)


def test_an_anchor_far_from_any_unpaired_line_does_not_merge() -> None:
    merged = distinct_events(events((Origin.ALPACA_LOG, "16:02:41"), (Origin.DB_LOG, None, "16:09:00")))
    assert (len(merged.times), merged.untimed, merged.merged) == (1, 1, 0)


def test_journal_records_are_never_merged() -> None:
    merged = distinct_events(events((Origin.JOURNAL, "16:02:41"), (Origin.DB_LOG, "16:02:41")))
    assert (len(merged.times), merged.merged) == (2, 0)


def test_pairing_is_independent_of_input_order() -> None:
    late = utc("16:02:41") + timedelta(milliseconds=18)
    forward = events((Origin.ALPACA_LOG, "16:02:41"), (Origin.DB_LOG, late.time().isoformat()))
    backward = events((Origin.DB_LOG, late.time().isoformat()), (Origin.ALPACA_LOG, "16:02:41"))
    assert distinct_events(forward) == distinct_events(backward)
