"""One test per line shape the platform writes, plus the lines that must not be mistaken for them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from forensics_support import LOGS

from ordersync.forensics import Origin, Rejection, Submission, Unparseable, parse_line
from ordersync.forensics.lines import leading_timestamp

# the seed report's own three evidence lines, verbatim
SEED_SUBMIT, SEED_ERROR, SEED_DB_ROW = (LOGS / "seed_sample.log").read_text(encoding="utf-8").splitlines()


def parsed(line: str) -> Submission | Rejection:
    record = parse_line(line)
    assert isinstance(record, Submission | Rejection), record
    return record


def test_seed_submission_line_gives_order_id_and_naive_time_as_utc() -> None:
    record = parsed(SEED_SUBMIT)
    assert record == Submission(
        broker_order_id="5dfdb853-25b2-484d-9d97-914c82e8120c",
        at=datetime(2025, 10, 10, 15, 59, 16, 78000, tzinfo=UTC),
    )


def test_extended_submission_line_gives_symbol_side_qty_and_client_id() -> None:
    line = SEED_SUBMIT + " client_order_id=p-OKE-1 symbol=OKE side=BUY qty=9"
    record = parsed(line)
    assert isinstance(record, Submission)
    assert (record.client_order_id, record.symbol, record.side, record.qty) == (
        "p-OKE-1",
        "OKE",
        "buy",
        Decimal(9),
    )


def test_seed_error_line_gives_every_body_field() -> None:
    record = parsed(SEED_ERROR)
    assert isinstance(record, Rejection)
    body = record.body
    assert (body.code, body.symbol, body.related_orders) == (
        40310000,
        "OKE",
        ("5dfdb853-25b2-484d-9d97-914c82e8120c",),
    )
    assert (body.existing_qty, body.held_for_orders, body.available) == (Decimal(9), Decimal(9), Decimal(0))
    assert record.origin is Origin.ALPACA_LOG
    assert not record.repaired
    assert record.at == datetime(2025, 10, 10, 16, 2, 40, 272000, tzinfo=UTC)


def test_seed_db_row_with_stray_quote_is_repaired_and_names_the_child() -> None:
    record = parsed(SEED_DB_ROW)
    assert isinstance(record, Rejection)
    assert record.repaired
    assert record.at is None
    assert (record.origin, record.child_kind, record.platform_order) == (Origin.DB_LOG, "TP", 131)
    assert (record.body.code, record.body.symbol, record.body.existing_qty) == (40310000, "STWD", Decimal(37))
    assert record.body.related_orders == ("564db8de-b698-4da6-933d-da12e5f11638",)


def test_db_row_in_a_timestamped_sqlalchemy_echo_keeps_the_time_and_ignores_trailing_params() -> None:
    line = (
        "2025-10-10 16:02:41,168 - sqlalchemy.engine.Engine - INFO - [generated in 0.0001s] ('ERROR', "
        '\'SL for order 77 | Error: {"code":40310000,"message":"insufficient qty available for order '
        '(requested: 5, available: 0)","existing_qty":"5","held_for_orders":"5"}\', \'2025-10-10\')'
    )
    record = parsed(line)
    assert isinstance(record, Rejection)
    assert not record.repaired
    assert (record.child_kind, record.platform_order) == ("SL", 77)
    assert record.at == datetime(2025, 10, 10, 16, 2, 41, 168000, tzinfo=UTC)


def test_error_line_reads_key_value_context_before_the_body() -> None:
    line = (
        "2025-10-10 16:00:00,000 - AlpacaAccount - ERROR - Error submitting order to Alpaca: "
        "client_order_id=p-OKE-1-tp symbol=OKE side=sell "
        '{"code":40310000,"message":"cannot open a short sell while a long buy order is open"}'
    )
    record = parsed(line)
    assert isinstance(record, Rejection)
    assert (record.symbol, record.side, record.client_order_id) == ("OKE", "sell", "p-OKE-1-tp")
    assert record.body.existing_qty is None


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        (
            '{"code":40010001,"message":"client_order_id must be unique"}',
            40010001,
            "client_order_id must be unique",
        ),
        ('{"code":"42210000","message":"sub-penny"}', 42210000, "sub-penny"),
        ('{"message":"unauthorized."}', None, "unauthorized."),
    ],
)
def test_other_error_codes_parse(body: str, code: int | None, message: str) -> None:
    record = parsed(
        f"2025-10-10 16:00:00,000 - AlpacaAccount - ERROR - Error submitting order to Alpaca: {body}"
    )
    assert isinstance(record, Rejection)
    assert (record.body.code, record.body.message) == (code, message)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (
            "2025-10-10 16:00:00,000 - A - INFO - Successfully submitted order to Alpaca: id=1",
            "broker_order_id",
        ),
        ("2025-10-10 16:00:00,000 - A - ERROR - Error submitting order to Alpaca: timeout", "JSON body"),
        ("2025-10-10 16:00:00,000 - A - ERROR - Error submitting order to Alpaca: {}", "JSON body"),
        ("('ERROR', 'TP for order 9 | Error: connection reset')", "JSON body"),
        ("x Successfully submitted order: broker_order_id=" + "a" * 200, "128"),
    ],
)
def test_lines_that_look_like_ours_but_fail_are_unparseable_with_a_reason(line: str, reason: str) -> None:
    result = parse_line(line)
    assert isinstance(result, Unparseable)
    assert reason in result.reason


@pytest.mark.parametrize(
    "line",
    [
        "",
        "2025-10-10 16:09:30,000 - MarketData - ERROR - Error fetching quotes: read timeout",
        "2025-10-10 16:02:40,272 - PlatformEngine - INFO - Creating TP order for order 130: sell 9 OKE",
        "Traceback (most recent call last):",
        '{"code":40310000,"message":"insufficient qty"}',
    ],
)
def test_other_lines_are_not_records(line: str) -> None:
    assert parse_line(line) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-10-10 15:59:16,078 x", datetime(2025, 10, 10, 15, 59, 16, 78000, tzinfo=UTC)),
        ("2025-10-10T15:59:16.078Z x", datetime(2025, 10, 10, 15, 59, 16, 78000, tzinfo=UTC)),
        ("[2025-10-10 17:59:16+02:00] x", datetime(2025, 10, 10, 15, 59, 16, tzinfo=UTC)),
        ("2025-10-10 15:59:16", datetime(2025, 10, 10, 15, 59, 16, tzinfo=UTC)),
        ("2025-13-45 15:59:16,078 x", None),
        ("0001-01-01 00:00:00+23:59 x", None),
        ("[parameters: ('ERROR', ...", None),
    ],
)
def test_leading_timestamp(text: str, expected: datetime | None) -> None:
    assert leading_timestamp(text) == expected


def test_offset_timestamps_are_converted_not_relabelled() -> None:
    ts = leading_timestamp("2025-10-10 10:00:00-05:00 - x")
    assert ts is not None
    assert ts.tzinfo is UTC
    assert ts == datetime(2025, 10, 10, 10, tzinfo=timezone(timedelta(hours=-5)))
