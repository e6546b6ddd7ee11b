"""The analyzer's fast paths give exactly what the general paths give.

`parse_error_body` reads Alpaca's compact body (and the seed's stray-quote variant of it) with one regex
match instead of `json` (or the field extractor); `SubmissionTable` keeps submissions in columns and
rebuilds each record when read. Each is compared here with the path it shortcuts, on the cases where
they could differ (quantities that are not plain numbers, long symbols and ids, empty values, times that
are not UTC).
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from ordersync.forensics import body as body_module
from ordersync.forensics.body import parse_error_body
from ordersync.forensics.linking import SubmissionIndex
from ordersync.forensics.records import Origin, Submission
from ordersync.forensics.submissions import SubmissionTable, brief, side_symbol, submitted_us
from ordersync.forensics.timeutil import to_us

QTYS = ("0", "12", "1.50", "", "+4", "-3", "1e3", "abc", "9" * 19)
CODES = ("40310000", "123456789012")
MESSAGES = ("insufficient qty available for order (requested: 3, available: 0)", "", "é" * 250)
RELATED = ("", '""', '"61e69015-8549-4bfd-b9c3-01e75843f47d"', '"' + "z" * 129 + '"')
SYMBOLS = ("OKE", "", "x" * 201)


def _bodies(code_suffix: str) -> list[str]:
    out = []
    for i, (qty, code, message, related, symbol) in enumerate(
        itertools.product(QTYS, CODES, MESSAGES, RELATED, SYMBOLS)
    ):
        held = QTYS[i % len(QTYS)]
        out.append(
            f'x {{"available":"0","code":{code}{code_suffix},"existing_qty":"{qty}",'
            f'"held_for_orders":"{held}","message":"{message}","related_orders":[{related}],'
            f'"symbol":"{symbol}"}}\')]'
        )
    return out


@pytest.mark.parametrize("text", _bodies(""))
def test_a_compact_body_reads_as_json_reads_it(text: str) -> None:
    start = text.find("{")
    assert body_module._CANONICAL_RE.match(text, start) is not None  # the fast path is the one taken
    strict = body_module._strict(text, start)

    result = parse_error_body.__wrapped__(text)

    assert result is not None
    assert strict is not None
    assert repr(result) == repr((strict, False))  # same fields, same Decimal spellings


@pytest.mark.parametrize("text", _bodies('"'))
def test_a_stray_quote_body_reads_as_the_field_extractor_reads_it(text: str) -> None:
    start = text.find("{")
    extracted = body_module._extract(text[start:])

    result = parse_error_body.__wrapped__(text)

    assert result is not None
    assert extracted is not None
    assert repr(result) == repr((extracted, True))


def _sub(order_id: str, at: datetime | None, **kw: object) -> Submission:
    return Submission(order_id, at, **kw)  # type: ignore[arg-type]


T0 = datetime(2025, 10, 10, 13, 30, 0, 123456, tzinfo=UTC)


def test_the_table_keeps_what_a_dict_of_the_earliest_submissions_keeps() -> None:
    east = timezone(timedelta(hours=2))
    records = [
        _sub("a", T0, symbol="OKE", side="buy", qty=Decimal("12"), client_order_id="p-1"),
        _sub("b", None, symbol="ET"),
        _sub("a", T0 + timedelta(seconds=1), symbol="LATER"),  # later: ignored
        _sub("b", T0, side="sell"),  # a time where there was none: replaces
        _sub("c", T0.astimezone(east), symbol="KMI"),  # another offset: kept as given
        _sub("d", T0 + timedelta(days=1), origin=Origin.JOURNAL),
        _sub("c", T0.astimezone(east)),  # the same instant: the first stays
        _sub("a", T0 - timedelta(microseconds=1), symbol="EARLIER"),  # earlier: replaces
    ]
    expected: dict[str, Submission] = {}
    table = SubmissionTable()
    for r in records:
        known = expected.get(r.broker_order_id)
        if known is None or (r.at is not None and (known.at is None or r.at < known.at)):
            expected[r.broker_order_id] = r
        table.add(r)

    assert list(table) == list(expected) == list(table.keys())
    for order_id, sub in expected.items():
        got = table[order_id]
        assert got == sub
        assert got.at is None or sub.at is None or got.at.tzinfo == sub.at.tzinfo
        assert submitted_us(table, order_id) == submitted_us(expected, order_id)
    assert table.get("missing") is None
    assert "missing" not in table
    assert "a" in table
    assert list(brief(table)) == list(brief(expected))
    with pytest.raises(KeyError):
        table["missing"]


def test_a_submission_given_in_microseconds_is_kept_as_its_record_would_be() -> None:
    # `add_us` (the reader's seed-format submissions) against `add` of the same record, interleaved with
    # records of other sources: no time, another offset, the same instant, earlier and later
    east = timezone(timedelta(hours=2))
    logged = [
        _sub("a", T0, symbol="OKE", side="buy", qty=Decimal("12"), client_order_id="p-1"),
        _sub("a", T0 + timedelta(seconds=1), symbol="LATER"),
        _sub("a", T0, symbol="SAME"),
        _sub("b", T0, side="sell"),
        _sub("c", T0 + timedelta(hours=1)),
        _sub("a", T0 - timedelta(microseconds=1), symbol="EARLIER"),
    ]
    others = [_sub("b", None, symbol="ET"), _sub("c", T0.astimezone(east), symbol="KMI")]
    for order in itertools.permutations(range(len(logged) + len(others)), 8):
        if order[:4] != tuple(sorted(order[:4])):  # a sample of the orders, each log line once
            continue
        by_record, by_us = SubmissionTable(), SubmissionTable()
        for i in order:
            if i < len(logged):
                s = logged[i]
                assert s.at is not None
                by_record.add(s)
                by_us.add_us(s.broker_order_id, to_us(s.at), s.symbol, s.side, s.qty, s.client_order_id)
            else:
                by_record.add(others[i - len(logged)])
                by_us.add(others[i - len(logged)])
        assert list(by_us) == list(by_record)
        assert [by_us[k] for k in by_us] == [by_record[k] for k in by_record]
        assert list(brief(by_us)) == list(brief(by_record))


def test_a_childs_parent_is_found_from_the_columns_as_from_the_records() -> None:
    # `parent_of` reads side and symbol from the table's columns (and the time only for a sell): the
    # same parents as over a plain dict of records, for sells timed in UTC, at another offset, untimed,
    # sells with no buy before them or of no symbol, buys, orders of unknown side and unknown orders
    east = timezone(timedelta(hours=2))
    records = [
        _sub("buy-oke", T0, symbol="OKE", side="buy"),
        _sub("buy-oke-later", T0 + timedelta(hours=2), symbol="OKE", side="buy"),
        _sub("tp-oke", T0 + timedelta(minutes=5), symbol="OKE", side="sell"),
        _sub("sl-oke-east", (T0 + timedelta(hours=3)).astimezone(east), symbol="OKE", side="sell"),
        _sub("sl-untimed", None, symbol="OKE", side="sell"),
        _sub("tp-early", T0 - timedelta(hours=1), symbol="OKE", side="sell"),
        _sub("tp-no-symbol", T0 + timedelta(minutes=9), side="sell"),
        _sub("unknown-side", T0, symbol="ET"),
    ]
    table = SubmissionTable()
    for r in records:
        table.add(r)
    as_dict = {r.broker_order_id: r for r in records}
    by_table, by_dict = SubmissionIndex(table), SubmissionIndex(as_dict)
    for order_id in [*as_dict, "not-logged"]:
        assert side_symbol(table, order_id) == side_symbol(as_dict, order_id)
        for symbol in ("OKE", "ET", None):
            assert by_table.parent_of(order_id, symbol) == by_dict.parent_of(order_id, symbol)
    assert by_table.parent_of("tp-oke", None) == "buy-oke"
    assert by_table.parent_of("sl-oke-east", None) == "buy-oke-later"
    assert by_table.parent_of("tp-no-symbol", "OKE") == "buy-oke"
    assert by_table.parent_of("sl-untimed", "OKE") == "sl-untimed"
