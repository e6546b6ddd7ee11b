"""The root cause is read from the bodies: existing_qty 0 vs all shares held for another order."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from forensics_support import SHORT_SELL, reserved_body

from ordersync.forensics import Cause, Evidence
from ordersync.forensics.verdict import BodyClass, classify, decide, overall_verdict

RESERVED = reserved_body("OKE", 9, "5dfdb853")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (RESERVED, BodyClass.ALL_RESERVED),
        (replace(RESERVED, existing_qty=Decimal(0), held_for_orders=Decimal(0)), BodyClass.NO_POSITION),
        (replace(RESERVED, held_for_orders=Decimal(4)), BodyClass.PARTLY_RESERVED),
        (replace(RESERVED, held_for_orders=None), BodyClass.NO_QTY_FIELDS),
        (replace(RESERVED, existing_qty=None), BodyClass.NO_QTY_FIELDS),
        (SHORT_SELL, BodyClass.SHORT_SELL),
    ],
)
def test_classify(body: object, expected: BodyClass) -> None:
    assert classify(body) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("evidence", "cause"),
    [
        (Evidence(), Cause.NONE),
        (Evidence(bodies=2, no_qty_fields=2), Cause.UNDETERMINED),
        (Evidence(bodies=3, all_reserved=2, no_position=1), Cause.RESERVED_BY_OPEN_ORDER),
        (Evidence(bodies=3, short_sell_refusals=2, all_reserved=1), Cause.SELL_BEFORE_FILL),
        (Evidence(bodies=2, no_position=1, all_reserved=1), Cause.MIXED),
        (Evidence(bodies=1, partly_reserved=1), Cause.OVERSIZED_SELL),
    ],
)
def test_decide_follows_the_majority_of_bodies(evidence: Evidence, cause: Cause) -> None:
    assert decide(evidence) is cause


def test_reserved_verdict_says_plainly_it_contradicts_the_pending_reading() -> None:
    verdict = overall_verdict(
        Evidence(bodies=2, all_reserved=2, related_to_listed=2), listed_sides_unknown=True
    )
    assert verdict.contradicts_pending_reading
    assert "shares existed and were all reserved by another open order" in verdict.text
    assert 'contradicts the "parent still pending" reading' in verdict.text
    assert "was an open sell holding the shares" in verdict.text


def test_sell_before_fill_verdict_does_not_claim_a_contradiction() -> None:
    verdict = overall_verdict(
        Evidence(bodies=3, no_position=1, short_sell_refusals=2), listed_sides_unknown=False
    )
    assert verdict.cause is Cause.SELL_BEFORE_FILL
    assert not verdict.contradicts_pending_reading
    assert "sell came before the buy filled" in verdict.text
    assert "contradicts" not in verdict.text


def test_no_refusals_verdict_says_there_was_no_such_issue() -> None:
    verdict = overall_verdict(Evidence(), listed_sides_unknown=False)
    assert verdict.cause is Cause.NONE
    assert "No `40310000` refusals" in verdict.text


def test_wash_trade_against_the_open_buy_counts_as_sell_before_fill() -> None:
    wash = replace(SHORT_SELL, message="potential wash trade detected. use complex orders")
    assert classify(wash) is BodyClass.WASH_TRADE
    assert decide(Evidence(bodies=2, wash_trade_refusals=2)) is Cause.SELL_BEFORE_FILL
