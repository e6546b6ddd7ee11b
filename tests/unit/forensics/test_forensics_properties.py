"""Whatever the input, the parser counts it and never crashes; refusals from one origin are never merged."""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ordersync.forensics import (
    ErrorBody,
    LogInputError,
    Origin,
    Rejection,
    Submission,
    Unparseable,
    analyze_paths,
    analyze_records,
    parse_line,
    render_json,
    render_markdown,
)
from ordersync.forensics.formats import unwrap
from ordersync.forensics.inputs import looks_like_export, sniff_problem
from ordersync.forensics.lines import parse_message

FRAGMENTS = [
    "2025-10-10 15:59:16,078 - AlpacaAccount - INFO - ",
    "2025-10-10T15:59:16.078+05:30 ",
    "Successfully submitted order to Alpaca: ",
    "Error submitting order to Alpaca: ",
    "[parameters: ('ERROR', 'TP for order 131 | Error: ",
    " for order ",
    "| Error:",
    "broker_order_id=",
    "symbol=",
    "qty=",
    '{"code":40310000,',
    '"code":40310000",',
    '"existing_qty":"9",',
    '"held_for_orders":"NaN",',
    '"related_orders":["a", 1, [',
    '"message":"insufficient qty \\"',
    "{",
    "}",
    "[",
    '"',
    "\\",
    "\x00",
    "\ufffd",
]
lines = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=20)), max_size=12).map("".join)


@settings(max_examples=400)
@given(st.one_of(lines, st.text()))
def test_parse_line_never_raises(line: str) -> None:
    result = parse_line(line)
    assert result is None or isinstance(result, Unparseable | Submission | Rejection)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(lines.map(str.encode), st.binary(max_size=200)), max_size=30))
def test_any_file_is_analyzed_and_every_line_counted(chunks: list[bytes]) -> None:
    data = b"\n".join(chunks)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "any.log"
        path.write_bytes(data)
        if data.startswith(b"\x1f\x8b"):  # gzip magic on something that is not gzip: bad input, said so
            with pytest.raises(LogInputError):
                analyze_paths([path])
            return
        error: LogInputError | None = None
        try:
            report = analyze_paths([path])
        except LogInputError as e:
            error = e
    if error is not None:  # nothing readable, or a broken export: said in one line
        assert sniff_problem(data) is not None or looks_like_export(data)
        assert "\n" not in str(error)
        return
    if data.startswith((b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf")):  # decoded first: other line breaks
        return
    render_markdown(report)
    render_json(report)
    assert report.stats is not None
    expected_lines = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
    assert report.stats.lines_read == expected_lines
    assert (
        report.stats.lines_read
        == report.stats.recognised + report.stats.other_lines + report.stats.unparseable
    )


codes = st.sampled_from([40310000, 40010001, None])
bodies = st.builds(
    ErrorBody,
    code=codes,
    message=st.sampled_from(["insufficient qty available", "cannot open a short sell", ""]),
    symbol=st.sampled_from(["OKE", "ET", None]),
    related_orders=st.lists(st.sampled_from(["P1", "P2", "T1"]), max_size=2).map(tuple),
)
times = st.one_of(
    st.none(), st.integers(0, 10_000).map(lambda s: datetime(2025, 10, 10, tzinfo=UTC) + timedelta(s))
)
submissions = st.builds(
    Submission,
    broker_order_id=st.sampled_from(["P1", "P2", "T1"]),
    at=times,
    symbol=st.sampled_from(["OKE", "ET", None]),
    side=st.sampled_from(["buy", "sell", None]),
)
rejections = st.builds(Rejection, body=bodies, at=times, origin=st.just(Origin.ALPACA_LOG))


@settings(max_examples=200)
@given(st.lists(st.one_of(submissions, rejections), max_size=40))
def test_every_40310000_refusal_from_one_origin_is_counted_exactly_once(
    records: list[Submission | Rejection],
) -> None:
    report = analyze_records(records)
    refusals = [r for r in records if isinstance(r, Rejection)]
    assert report.summary.issues == sum(r.body.code == 40310000 for r in refusals)
    assert report.summary.rejections == len(refusals)
    assert sum(p.errors for p in report.parents) == report.summary.issues
    b = report.buckets
    assert b.short + b.medium + b.long + b.unknown == report.summary.issues


ENVELOPES = st.sampled_from(
    [
        "{}",
        '{"log": %s, "stream": "stderr", "time": "2025-10-10T16:02:40.123456789Z"}',
        '{"text": "x", "record": {"message": %s, "time": {"timestamp": 1760112160.2}, "extra": {"qty": 9}}}',
        '{"event": %s, "timestamp": "not a time", "error": {"code": 40310000}}',
        '{"message": %s, "asctime": "2025-10-10 16:02:40,272", "symbol": ["x"], "broker_order_id": 7}',
        "2025-10-10T16:02:40.123456789Z stdout P %s",
        "<11>1 2025-10-10T16:02:40.272Z host app 1 - - %s",
        "<11>Feb 29 16:02:40 host app[1]: %s",
        "Oct 10 16:02:40 host app: %s",
    ]
)


@settings(max_examples=300)
@given(ENVELOPES, st.one_of(lines, st.text(max_size=40)))
def test_any_envelope_around_any_message_never_raises(envelope: str, message: str) -> None:
    inner = json.dumps(message) if envelope.startswith("{") else message
    line = envelope % inner if "%s" in envelope else envelope
    env = unwrap(line)
    result = parse_message(env)
    assert result is None or isinstance(result, Unparseable | Submission | Rejection)
