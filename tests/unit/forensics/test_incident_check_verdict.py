"""The verdict of `analyze --verify` per parent: it confirms or corrects the log's cause from the broker."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

from ordersync.domain.events import BrokerOrderView
from ordersync.domain.ids import BrokerOrderId, ClientOrderId, Symbol
from ordersync.domain.order import OrderStatus
from ordersync.forensics import Cause, Evidence, ParentIssue
from ordersync.incident_check.model import Holder, SymbolAtBroker
from ordersync.incident_check.verdict import _verdict

T = datetime(2025, 10, 10, 16, 0, tzinfo=UTC)


def at(minute: int) -> datetime:
    return T.replace(minute=minute)


def order(
    oid: str, side: str, status: OrderStatus, filled: int, updated: int, kind: str = "limit"
) -> BrokerOrderView:
    return BrokerOrderView(
        BrokerOrderId(oid),
        ClientOrderId(f"c-{oid}"),
        Symbol("OKE"),
        status,
        Decimal(9),
        Decimal(filled),
        None,
        at(updated),
        submitted_at=at(updated),
        side=side,
        order_type=kind,
    )


def row(cause: Cause, first_error: int) -> ParentIssue:
    return ParentIssue(
        "P",
        "OKE",
        "buy",
        None,
        at(0),
        at(first_error),
        at(first_error),
        1,
        0,
        0,
        (),
        (),
        Evidence(*[0] * 10),
        cause,
    )


TP = order("TP", "sell", OrderStatus.NEW, 0, 6)
NOW = SymbolAtBroker(
    "OKE", Decimal(9), Decimal(0), (Holder(TP, Decimal(9), ours=True),), Decimal(9), Decimal(0)
)


def test_sell_before_fill_confirmed_when_the_parent_filled_after_the_refusal() -> None:
    parent = order("P", "buy", OrderStatus.FILLED, 9, 5)
    outcome, text = _verdict(row(Cause.SELL_BEFORE_FILL, 2), "P", parent, {}, NOW)
    assert outcome == "confirmed"
    assert "the log says sell-before-fill; the broker shows the parent filled at 2025-10-10 16:05" in text
    assert "a take-profit of ours (TP, 9 shares) since 2025-10-10 16:06 holding the shares" in text


def test_sell_before_fill_corrected_when_the_parent_had_filled_before_the_first_refusal() -> None:
    parent = order("P", "buy", OrderStatus.FILLED, 9, 1)
    outcome, text = _verdict(row(Cause.SELL_BEFORE_FILL, 2), "P", parent, {}, NOW)
    assert outcome == "corrected"
    assert "the shares existed" in text


def test_reserved_corrected_when_the_parent_never_filled_and_unknown_is_unchecked() -> None:
    parent = order("P", "buy", OrderStatus.NEW, 0, 1)
    assert _verdict(row(Cause.RESERVED_BY_OPEN_ORDER, 2), "P", parent, {}, NOW)[0] == "corrected"
    assert _verdict(row(Cause.RESERVED_BY_OPEN_ORDER, 2), "P", None, {}, NOW)[0] == "unchecked"
    bare = replace(NOW, holders=(), held=Decimal(0), unprotected=Decimal(9))
    text = _verdict(
        row(Cause.SELL_BEFORE_FILL, 2), "P", order("P", "buy", OrderStatus.FILLED, 9, 5), {}, bare
    )[1]
    assert "nothing holds the shares now; 9 of 9 shares unprotected now" in text
