"""The error-body reader: strict JSON first, a field extractor for malformed bodies, never an exception."""

from __future__ import annotations

from decimal import Decimal

import pytest
from forensics_support import LOGS

from ordersync.forensics.body import parse_error_body

# the seed's DB-log row body, with its stray quote after the code
SEED_STRAY_QUOTE = (
    (LOGS / "seed_sample.log").read_text(encoding="utf-8").splitlines()[2].split("Error: ", 1)[1]
)


def test_valid_body_followed_by_text_is_not_counted_as_repaired() -> None:
    result = parse_error_body('x {"code":40310000,"message":"m"}\')]')
    assert result is not None
    assert result[1] is False


def test_stray_quote_body_is_repaired_to_the_same_fields_as_the_clean_one() -> None:
    repaired = parse_error_body(SEED_STRAY_QUOTE)
    clean = parse_error_body(SEED_STRAY_QUOTE.replace('40310000"', "40310000"))
    assert repaired is not None
    assert clean is not None
    assert repaired[1] is True
    assert clean[1] is False
    assert repaired[0] == clean[0]


def test_body_cut_before_its_closing_brace_is_repaired() -> None:
    result = parse_error_body(SEED_STRAY_QUOTE[:-1])
    assert result is not None
    body, repaired = result
    assert repaired
    assert (body.code, body.existing_qty, body.related_orders) == (
        40310000,
        Decimal(37),
        ("564db8de-b698-4da6-933d-da12e5f11638",),
    )


def test_repaired_message_keeps_escaped_quotes() -> None:
    result = parse_error_body('{"code":1","message":"bad \\"qty\\" value"}')
    assert result is not None
    assert result[0].message == 'bad "qty" value'


@pytest.mark.parametrize(
    "text",
    [
        "no body here",
        "{}",
        "[1, 2]",
        '{"code": true, "message": 5}',
        "{" * 100_000,
        '{"code": ' + "9" * 5000 + "}",
        '{"code":"' + "9" * 20 + '"}',
    ],
)
def test_bodies_without_a_code_or_message_yield_nothing(text: str) -> None:
    assert parse_error_body(text) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"9"', Decimal(9)),
        ("9.5", Decimal("9.5")),
        ('"NaN"', None),
        ("1e400", None),
        ('"abc"', None),
        ("[]", None),
    ],
)
def test_quantities_are_decimal_or_none(value: str, expected: Decimal | None) -> None:
    result = parse_error_body(f'{{"code":40310000,"message":"m","existing_qty":{value}}}')
    assert result is not None
    assert result[0].existing_qty == expected


def test_related_orders_keeps_only_strings() -> None:
    result = parse_error_body('{"code":1,"message":"m","related_orders":["a", 3, null, "b"]}')
    assert result is not None
    assert result[0].related_orders == ("a", "b")
