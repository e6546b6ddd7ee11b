"""A seed-format refusal read from its bytes (`seedlines.py`) is the refusal the general parser reads.

`SeedBodies.entry` makes the template of a plain-text error line or DB-log row straight from the bytes
when the body has Alpaca's compact layout (or the seed's stray quote); everything else must be left to
`lines.parse_line`. Each line here is read both ways: either the fast path declines it, or it gives the
same body, origin, DB-log context, repaired flag and quoted raw body, and the same index for a body
registered before.
"""

from __future__ import annotations

import itertools

import pytest

from ordersync.forensics.lines import parse_line
from ordersync.forensics.records import Origin, Rejection
from ordersync.forensics.seedlines import SeedBodies

TS = "2025-10-10 16:02:40,272"
BODIES = (
    '{"available":"0","code":40310000,"existing_qty":"9","held_for_orders":"9","message":"insufficient '
    'qty available for order (requested: 9, available: 0)","related_orders":["6a1f-T-OKE"],"symbol":"OKE"}',
    '{"available":"0","code":40310000","existing_qty":"9","held_for_orders":"9","message":"insufficient '
    'qty","related_orders":["6a1f-T-OKE"],"symbol":"OKE"}',  # the seed's stray quote: repaired
    '{"available":"1.50","code":40310000,"existing_qty":"","held_for_orders":"-3","message":"",'
    '"related_orders":[],"symbol":""}',
    '{"available":"0","code":40310000","existing_qty":"1e3","held_for_orders":"9","message":"m",'
    '"related_orders":[],"symbol":"OKE"}',  # not a plain number: the extractor's business
    '{"code":40310000,"message":"insufficient qty"}',  # another layout: json's business
    '{"available":"0","code":40310000,"existing_qty":"9","held_for_orders":"9","message":"'
    + "m" * 500
    + '","related_orders":["'
    + "z" * 129
    + '"],"symbol":"'
    + "S" * 201
    + '"}',
    '{"available":"0","code":40310000","existing_qty":"9","held_for_orders":"9","message":"'
    + "m" * 500
    + '","related_orders":["x"],"symbol":"OKE"}',  # a raw quote clipped to 400 characters
    '{"available":"0","code":40310000,"existing_qty":"9","held_for_orders":"9","message":"é",'
    '"related_orders":[],"symbol":"OKE"}',  # not ASCII
)
SHAPES = (
    "{ts} - AlpacaAccount - ERROR - Error submitting order to Alpaca: {body}",
    "{ts} - AlpacaAccount - ERROR - Error submitting order to Alpaca: {body} trailing }} text",
    "{ts} - AlpacaAccount - ERROR - Error submitting order to Alpaca: symbol=OKE side=sell {body}",
    "{ts} - sqlalchemy.engine.Engine - INFO - ('ERROR', 'TP for order 131 | Error: {body}')",
    "{ts} - sqlalchemy.engine.Engine - INFO - ('ERROR', 'for order x | Error: {body}')",
    "{ts} - db - INFO - ('ERROR', 'TP | Error: {body}')",  # no " for order ": not a DB-log row
    "{ts} - AlpacaAccount - INFO - Successfully submitted order to Alpaca: broker_order_id=a {body}",
    "{ts} - AlpacaAccount - ERROR - Error submitting order to Alpaca: no body",
)


class Registry:
    """`Correlator.body_slot` in small: one index per distinct body, remembering what it was given."""

    def __init__(self) -> None:
        self.index: dict[object, int] = {}
        self.given: list[Rejection] = []

    def __call__(self, r: Rejection) -> tuple[int, int]:
        key = r.body if r.body.symbol else (r.body, r.symbol)
        self.given.append(r)
        b = self.index.setdefault(key, len(self.index))
        return b, (Origin.ALPACA_LOG, Origin.DB_LOG, Origin.JOURNAL).index(r.origin)


@pytest.mark.parametrize(("shape", "body"), list(itertools.product(SHAPES, BODIES)))
def test_the_bytes_give_the_record_the_parser_gives(shape: str, body: str) -> None:
    line = shape.format(ts=TS, body=body)
    registry = Registry()
    fast = SeedBodies(registry)

    entry = fast.entry(line.encode())
    if entry is None:
        return  # declined: the general parser reads it
    record = parse_line(line)

    assert isinstance(record, Rejection)
    b, slot, context, repaired = entry
    r = registry.given[-1]
    assert (r.body, r.origin, r.child_kind, r.platform_order) == (
        record.body,
        record.origin,
        record.child_kind,
        record.platform_order,
    )
    assert (r.repaired, r.raw_body, r.symbol, r.client_order_id) == (
        record.repaired,
        record.raw_body,
        record.symbol,
        record.client_order_id,
    )
    assert repaired == int(record.repaired)
    assert slot == (0 if record.origin is Origin.ALPACA_LOG else 1)
    has_context = record.child_kind is not None or record.platform_order is not None
    assert (context is not None) == has_context
    # the same body again: not parsed again, the same index
    assert fast.entry(line.encode())[0] == b  # type: ignore[index]
    assert len(registry.given) == 1


def test_compact_and_stray_lines_are_taken_the_rest_declined() -> None:
    fast = SeedBodies(Registry())
    taken = [
        fast.entry(shape.format(ts=TS, body=body).encode()) is not None for shape in SHAPES for body in BODIES
    ]
    assert taken.count(True) >= 16  # the fast path is not silently declining everything
    bad_time = f"2025-10-10 16:02X40,272{SHAPES[0][4:]}".format(body=BODIES[0])
    assert fast.entry(bad_time.encode()) is None  # the parser would find no time: not a template
