"""The summary's exposure figures on hand-made books: exact numbers where the demo runs give only bounds.

Unprotected share-seconds integrate each parent's filled shares not covered by a live exit; a bracket's
legs are live only from the moment the entry completely filled; others' shares are the broker's position
less what our orders traded.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from ordersync.demo.summary import Summary, summarize_books

T0 = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def order(
    oid: str,
    coid: str,
    qty: int,
    status: str,
    *,
    executions: tuple[tuple[float, int], ...] = (),
    submitted: float = 0,
    ended: float | None = None,
    group: str | None = None,
    role: str = "entry",
    side: str = "buy",
) -> dict[str, Any]:
    filled = sum(q for _, q in executions)
    ends = {"filled_at": None, "canceled_at": None}
    if status == "filled":
        ends["filled_at"] = at(executions[-1][0])
    elif status == "canceled" and ended is not None:
        ends["canceled_at"] = at(ended)
    return {
        "id": oid,
        "client_order_id": coid,
        "symbol": "OKE",
        "side": side,
        "qty": str(qty),
        "filled_qty": str(filled),
        "status": status,
        "created_at": at(submitted),
        "submitted_at": at(submitted),
        "updated_at": at(ended or submitted),
        **ends,
        "sim": {
            "group_id": group,
            "role": role,
            "leg_ids": [],
            "executions": [{"at": at(t), "qty": str(q), "price": "1"} for t, q in executions],
        },
    }


def books(orders: list[dict[str, Any]], position: str) -> dict[str, Any]:
    return {
        "orders": orders,
        "positions": [{"symbol": "OKE", "qty": position}],
        "counters": {
            "requests": {"POST /v2/orders": 3},
            "rejections": {
                "by_code": {"40310000": 3},
                "by_message": {
                    "40310000 insufficient qty available for order": 1,
                    "40310000 potential wash trade detected. use complex orders": 2,
                },
            },
            "faults": {},
        },
    }


def test_a_bracket_partial_fill_is_exposed_until_the_entry_completes() -> None:
    # 40 at 10 s, 60 at 110 s: the legs go live at 110 s, so 40 shares x 100 s are exposed
    entry = order("e", "b01", 100, "filled", executions=((10, 40), (110, 60)), group="e")
    tp = order("tp", "x1", 100, "new", group="e", role="take_profit", side="sell")
    sl = order("sl", "x2", 100, "held", group="e", role="stop_loss", side="sell")

    summary = summarize_books(
        Summary("bracket", "t"), books([entry, tp, sl], "100"), {"b01"}, T0 + timedelta(600)
    )

    assert Decimal(summary.unprotected_share_s) == Decimal("4000.0")
    assert summary.unprotected_qty == "0"
    assert summary.children_submitted == 1
    assert summary.fill_to_protect_ms["max"] == 100_000


def test_a_cancelled_partial_bracket_entry_is_exposed_to_the_end() -> None:
    entry = order("e", "b02", 100, "canceled", executions=((10, 60),), ended=300, group="e")
    tp = order("tp", "x1", 100, "canceled", ended=300, group="e", role="take_profit", side="sell")
    end = T0 + timedelta(seconds=1000)

    summary = summarize_books(Summary("bracket", "t"), books([entry, tp], "60"), {"b02"}, end)

    assert Decimal(summary.unprotected_share_s) == Decimal(60 * 990)
    assert summary.unprotected_qty == "60"


def test_each_fill_protected_by_its_own_exit_counts_only_the_gaps() -> None:
    entry = order("e", "p01", 100, "filled", executions=((10, 40), (110, 60)))
    first = order("c1", "p01~tp1", 40, "new", submitted=12, side="sell")
    second = order("c2", "p01~tp2", 60, "new", submitted=115, side="sell")

    summary = summarize_books(
        Summary("poller", "t"), books([entry, first, second], "100"), {"p01"}, T0 + timedelta(seconds=600)
    )

    assert Decimal(summary.unprotected_share_s) == Decimal(40 * 2 + 60 * 5)


def test_wash_trade_refusals_are_counted_apart_from_insufficient_qty() -> None:
    entry = order("e", "p01", 10, "new")

    summary = summarize_books(Summary("safe", "t"), books([entry], "0"), {"p01"}, T0)

    assert summary.insufficient_qty_rejections == 1
    assert summary.wash_trade_rejections == 2
    assert summary.broker_rejections == 3


def test_others_shares_are_reported_apart_and_exits_beyond_ours_are_counted() -> None:
    # we bought 20; the account holds 60: 40 are someone else's; our exit for 50 reserves 30 of theirs
    entry = order("e", "p01", 20, "filled", executions=((10, 20),))
    exit_ = order("c1", "p01~tp1", 50, "new", submitted=12, side="sell")

    summary = summarize_books(
        Summary("safe", "t"), books([entry, exit_], "60"), {"p01"}, T0 + timedelta(seconds=60)
    )

    assert summary.others_qty == "40"
    assert summary.exits_on_others_qty == "30"
    assert summary.overprotected_qty == "30"


def test_our_shares_a_person_sold_are_gone_not_unprotected() -> None:
    # we bought 20; a person sold 10 by hand; our exit was re-armed for the 10 left
    entry = order("e", "p01", 20, "filled", executions=((10, 20),))
    first = order("c1", "p01~oco1", 20, "canceled", submitted=12, ended=900, side="sell")
    again = order("c3", "p01~oco3", 10, "new", submitted=901, side="sell")
    by_hand = order("h", "person-1", 10, "filled", executions=((900, 10),), side="sell")
    end = T0 + timedelta(seconds=1500)

    summary = summarize_books(Summary("safe", "t"), books([entry, first, by_hand, again], "10"), {"p01"}, end)

    assert summary.unprotected_qty == "0"
    # 20 shares for the 2 s before the first exit, then only the 10 left for the second between the
    # sale and the re-armed exit
    assert Decimal(summary.unprotected_share_s) == 20 * 2 + 10 * 1
    assert summary.overprotected_qty == "0"
    assert summary.others_qty == "10"  # the broker holds 10 fewer than our orders traded
