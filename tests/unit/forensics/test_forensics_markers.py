"""The marker search finds exactly the lines a line-by-line check would, and its two shortcuts lose none.

`markers.marked_spans` finds "| Error:" through `|` (falling back to the substring search where bars are
common) and skips the search for `40310000` when no line it could add can parse to anything. Checked
against the plain definition (every line holding a marker) and, for the skipped code search, against the
report: blocks built from the line kinds that stress each shortcut.
"""

from __future__ import annotations

import random

import pytest

from ordersync.forensics.markers import MARKERS, marked_spans

TEXT_REFUSAL = (
    b'2025-10-10 16:02:40,272 - AlpacaAccount - ERROR - Error submitting order to Alpaca: {"code":40310000,'
    b'"message":"insufficient qty available for order"}'
)
KINDS = (
    b"2025-10-10 16:02:40,272 - OrderSync - INFO - Polling order status for 3 open orders",
    b"2025-10-10 16:02:40,272 - Grid - INFO - a | b | c | d",  # bars that begin no marker
    b"2025-10-10 16:02:40,272 - sqlalchemy - INFO - ('ERROR', 'TP for order 7 | Error: {\"code\":1}')",
    TEXT_REFUSAL,
    b"2025-10-10 16:02:40,272 - X - INFO - code 40310000 without a body",
    b'{"event": "refused", "error": {"code": 40310000, "message": "insufficient qty"}}',
    b'2025-10-10T16:02:40.272Z stdout P {"event": "refused", "err',
    b'2025-10-10T16:02:40.272Z stdout F or": {"code": 40310000}}',
    b"2025-10-10 16:02:40,272 - AlpacaAccount - INFO - Successfully submitted order to Alpaca: "
    b"broker_order_id=abc",
    b"",
)


def reference(chunk: bytes, lo: int, hi: int) -> list[tuple[int, int]]:
    """Every line of `chunk[lo:hi]` holding a marker, found line by line."""
    spans, start = [], lo
    while start < hi:
        end = chunk.find(b"\n", start, hi)
        end = hi if end < 0 else end
        if any(m in chunk[start:end] for m in MARKERS):
            spans.append((start, end))
        start = end + 1
    return spans


def block(rng: random.Random, weights: list[int], n: int) -> bytes:
    return b"\n".join(rng.choices(KINDS, weights=weights, k=n)) + b"\n"


@pytest.mark.parametrize("seed", range(40))
def test_every_marked_line_is_found_or_cannot_matter(seed: int) -> None:
    rng = random.Random(seed)
    weights = [rng.choice((0, 1, 5, 50)) for _ in KINDS]
    if not any(weights):
        weights[0] = 1
    chunk = block(rng, weights, rng.randint(1, 400))
    lo = rng.randint(0, len(chunk) // 4)
    lo = chunk.rfind(b"\n", 0, lo) + 1
    found = marked_spans(chunk, lo, len(chunk))
    want = reference(chunk, lo, len(chunk))
    assert set(found) <= set(want)
    assert found == sorted(found)
    for start, end in set(want) - set(found):  # only a code-only line without a brace, no Kubernetes part
        line = chunk[start:end]
        assert b"40310000" in line
        assert b"{" not in line
        assert line[10:11] != b"T"
        assert b"ubmitt" not in line
        assert b"| Error:" not in line


def test_a_db_row_after_many_bars_is_found() -> None:
    bars = b"2025-10-10 16:02:40,272 - Grid - INFO - " + b"| " * 200 + b"\n"
    db_row = KINDS[2] + b"\n"
    chunk = bars * 3 + db_row + bars + db_row
    assert marked_spans(chunk, 0, len(chunk)) == reference(chunk, 0, len(chunk))


def test_the_code_alone_is_searched_when_a_brace_is_elsewhere() -> None:
    structured = KINDS[5] + b"\n"
    chunk = TEXT_REFUSAL + b"\n" + structured + KINDS[0] + b"\n"
    assert marked_spans(chunk, 0, len(chunk)) == reference(chunk, 0, len(chunk))
    # seed-format refusals only: every brace is on a found line, nothing else to look for
    seed = (TEXT_REFUSAL + b"\n" + KINDS[0] + b"\n" + KINDS[4] + b"\n") * 3
    assert len(marked_spans(seed, 0, len(seed))) == 3
