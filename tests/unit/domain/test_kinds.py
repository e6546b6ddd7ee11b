"""The enums of domain/kinds.py: stored values unchanged, and the decisions code takes on them."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from ordersync.domain.kinds import HOLD_TEXT, AlertKind, HoldReason, JournalKind
from ordersync.domain.order import OrderStatus
from ordersync.domain.protection import (
    NATIVE_HOLDS,
    ProtectionPlan,
    TrailRule,
    exit_decision,
    release_decision,
)
from ordersync.testing import T0, make_order

ROOT = Path(__file__).resolve().parents[3]
D = Decimal


def test_a_member_is_stored_and_read_back_as_its_string() -> None:
    # the journal's payload and the public JSON: a member encodes exactly as the string it replaced
    assert json.dumps({"alert": AlertKind.STREAM_DOWN}) == '{"alert": "stream_down"}'
    assert f"{JournalKind.RELEASE_HELD}" == "release_held"
    # a row read back is a plain str: it equals its member, in sets too
    assert AlertKind.ORDER_REFUSED == "order_refused"
    assert ("missing_at_broker", "k") in {(AlertKind.MISSING_AT_BROKER, "k")}


def test_every_alert_kind_is_documented_and_every_documented_alert_is_a_kind() -> None:
    text = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    section = text[text.index("## 5. Alerts") : text.index("### 5.1")]
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", section, re.MULTILINE))
    assert documented == {k.value for k in AlertKind}


def test_waiting_for_shares_is_exactly_the_reasons_whose_text_names_qty_available() -> None:
    # the release gate backs a plan off on these; it used to find them by `"qty_available" in reason`
    for reason in HoldReason:
        assert reason.waits_for_shares == ("qty_available" in HOLD_TEXT[reason]), reason


def test_the_native_reasons_are_the_native_hold_texts() -> None:
    assert {HOLD_TEXT[r] for r in HoldReason if r.is_native} == set(NATIVE_HOLDS)


@pytest.mark.parametrize(
    ("available", "kind", "text"),
    [
        (None, HoldReason.AVAILABLE_UNKNOWN, "the broker's qty_available is unknown"),
        ("0", HoldReason.AVAILABLE_ZERO, "qty_available is 0: shares held by other orders"),
        ("3", HoldReason.AVAILABLE_SHORT, "qty_available short: shares held by other orders"),
    ],
)
def test_a_hold_for_shares_has_its_kind_and_journals_the_same_text(
    available: str | None, kind: HoldReason, text: str
) -> None:
    parent = make_order(
        "p",
        status=OrderStatus.PARTIALLY_FILLED,
        qty=10,
        limit_price="100",
        filled_qty="4",
        filled_avg_price="99",
    )
    plan = ProtectionPlan(stop_loss=None, trailing=TrailRule(trail_percent=D("2")))
    decision = release_decision(parent, plan, [], None if available is None else D(available), T0)
    [hold] = decision.holds
    assert (hold.kind, hold.reason) == (kind, text)
    assert hold.kind.waits_for_shares


def test_closing_holds_name_what_they_wait_for() -> None:
    parent = make_order("p", status=OrderStatus.FILLED, qty=4, filled_qty="4", filled_avg_price="99")
    [hold] = exit_decision(parent, [], D(0), T0 + timedelta(seconds=1)).holds
    assert (hold.kind, hold.reason) == (HoldReason.CLOSING_AVAILABLE_ZERO, "closing: qty_available is 0")
    assert hold.kind.waits_for_shares
    assert not HoldReason.CLOSING_CANCELS.waits_for_shares
