"""Scenario format v2 on the account: starting positions and cash, margin buying power, other applications'
orders in the same account, and a person's actions at given times (targets resolved by role)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderStatus, QueryOrderStatus
from alpaca.trading.requests import (
    GetOrderByIdRequest,
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    StopLossRequest,
    StopOrderRequest,
    TakeProfitRequest,
)
from simtools import Client, Recorder, Sim, wait_until

from ordersync.domain.ids import ClientOrderId, child_client_order_id
from ordersync.sim import ScenarioError, SimServer

OKE_40 = {"positions": [{"symbol": "OKE", "qty": "40", "avg_entry_price": "70.00"}]}


def test_starting_positions_and_cash_are_in_the_account(make_sim: Sim, client_for: Client) -> None:
    sim = make_sim(account={"cash": "100000", **OKE_40})
    client = client_for(sim)

    position = client.get_open_position("OKE")
    account = client.get_account()

    assert (position.qty, position.avg_entry_price, position.qty_available) == ("40", "70", "40")
    assert account.cash == "100000"
    assert Decimal(str(account.equity)) == Decimal("100000") + 40 * Decimal("72.10")
    assert account.multiplier == "1"


def test_a_starting_position_can_be_sold_and_reserves_for_open_sells(
    make_sim: Sim, client_for: Client
) -> None:
    sim = make_sim(account=OKE_40)
    client = client_for(sim)

    client.submit_order(
        LimitOrderRequest(symbol="OKE", qty=30, side="sell", time_in_force="gtc", limit_price=80)
    )
    with pytest.raises(APIError) as refused:
        client.submit_order(MarketOrderRequest(symbol="OKE", qty=11, side="sell", time_in_force="day"))

    assert refused.value.status_code == 403
    assert "available: 10" in refused.value.message


@pytest.mark.parametrize(("multiplier", "accepted"), [(1, False), (2, True), (4, True)])
def test_margin_multiplier_sets_the_buying_power(
    make_sim: Sim, client_for: Client, multiplier: int, accepted: bool
) -> None:
    sim = make_sim(account={"cash": "10000", "margin_multiplier": multiplier})
    client = client_for(sim)
    account = client.get_account()
    order = MarketOrderRequest(symbol="OKE", qty=200, side="buy", time_in_force="day")  # $14,420 > cash

    assert account.multiplier == str(multiplier)
    assert Decimal(str(account.buying_power)) == multiplier * Decimal(10000)
    if accepted:
        assert client.submit_order(order).qty == "200"
    else:
        with pytest.raises(APIError) as refused:
            client.submit_order(order)
        assert (refused.value.status_code, refused.value.message) == (403, "insufficient buying power")


def test_margin_buying_power_counts_what_is_already_held(make_sim: Sim, client_for: Client) -> None:
    sim = make_sim(account={"cash": "10000", "margin_multiplier": 2, **OKE_40})
    client = client_for(sim)

    held = 40 * Decimal("72.10")
    assert Decimal(str(client.get_account().buying_power)) == 2 * (10000 + held) - held


FOREIGN = [
    {
        "client_order_id": "other-app-1",
        "symbol": "OKE",
        "side": "sell",
        "qty": "25",
        "type": "limit",
        "limit_price": "80.00",
    },
    {
        "client_order_id": "other-app-2",
        "symbol": "STWD",
        "side": "buy",
        "qty": "5",
        "type": "limit",
        "limit_price": "19.00",
        "time_in_force": "day",
    },
]


def test_foreign_orders_are_open_orders_of_the_account(make_sim: Sim, client_for: Client) -> None:
    sim = make_sim(account=OKE_40, foreign_orders=FOREIGN)
    client = client_for(sim)

    listed = {o.client_order_id: o for o in client.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN))}
    position = client.get_open_position("OKE")
    with pytest.raises(APIError) as refused:
        client.submit_order(MarketOrderRequest(symbol="OKE", qty=20, side="sell", time_in_force="day"))

    assert sorted(listed) == ["other-app-1", "other-app-2"]
    assert listed["other-app-1"].status == OrderStatus.NEW
    assert position.qty_available == "15"
    assert refused.value.status_code == 403
    assert str(listed["other-app-1"].id) in str(refused.value)  # related_orders names the other app's order


def test_a_foreign_order_fills_by_price_like_any_other(make_sim: Sim, client_for: Client) -> None:
    sim = make_sim(account=OKE_40, foreign_orders=FOREIGN[:1])
    client = client_for(sim)

    sim.set_price("OKE", "80.50")

    wait_until(lambda: client.get_order_by_client_id("other-app-1").status == OrderStatus.FILLED)
    assert client.get_open_position("OKE").qty == "15"


def test_an_impossible_foreign_order_is_a_scenario_error(make_sim: Sim) -> None:
    with pytest.raises(ScenarioError, match=r"foreign_orders\.0: refused by the account: insufficient qty"):
        make_sim(foreign_orders=FOREIGN[:1])


# -- actions -------------------------------------------------------------------------------------------------


def _parent(pid: str = "p1", symbol: str = "OKE", qty: str = "10", **extra: Any) -> dict[str, Any]:
    return {"id": pid, "symbol": symbol, "qty": qty, "fills": [{"after_s": 10, "qty": qty}], **extra}


def _buy_parent(client: TradingClient, pid: str = "p1", qty: float = 10) -> None:
    client.submit_order(
        MarketOrderRequest(symbol="OKE", qty=qty, side="buy", time_in_force="gtc", client_order_id=pid)
    )


def _state_actions(sim: SimServer) -> list[dict[str, Any]]:
    actions: list[dict[str, Any]] = sim.snapshot()["actions"]
    return actions


@pytest.mark.parametrize("take_profit_coid", ["p1~tp1", "naive-p1-tp-1"])
def test_a_person_cancels_our_take_profit_found_by_role(
    make_sim: Sim, client_for: Client, take_profit_coid: str
) -> None:
    sim = make_sim(
        parents=[_parent()],
        actions=[{"at_s": 100, "action": "cancel", "target": {"parent": "p1", "role": "take_profit"}}],
    )
    client = client_for(sim)
    _buy_parent(client)
    sim.advance(20)
    tp = client.submit_order(
        LimitOrderRequest(
            symbol="OKE",
            qty=10,
            side="sell",
            time_in_force="gtc",
            limit_price=80,
            client_order_id=take_profit_coid,
        )
    )

    sim.advance(90)

    wait_until(lambda: client.get_order_by_id(tp.id).status == OrderStatus.CANCELED)
    [entry] = _state_actions(sim)
    assert (entry["outcome"], entry["order_id"], entry["target"]) == ("done", str(tp.id), "p1/take_profit")


def test_role_targets_find_ordersyncs_hashed_child_ids(make_sim: Sim, client_for: Client) -> None:
    long_parent = "p-" + "x" * 124  # `<parent>~oco1` would exceed 128 characters: ordersync hashes it
    oco_coid = child_client_order_id(ClientOrderId(long_parent), "oco", 1)
    assert oco_coid.startswith("os~")
    sim = make_sim(
        parents=[_parent(long_parent), _parent("p2")],
        actions=[{"at_s": 100, "action": "cancel", "target": {"parent": long_parent, "role": "stop_loss"}}],
    )
    client = client_for(sim)
    _buy_parent(client, long_parent)
    sim.advance(20)
    oco = client.submit_order(
        LimitOrderRequest(
            symbol="OKE",
            qty=10,
            side="sell",
            time_in_force="gtc",
            limit_price=80,
            order_class="oco",
            client_order_id=oco_coid,
            take_profit=TakeProfitRequest(limit_price=80),
            stop_loss=StopLossRequest(stop_price=65),
        )
    )
    [stop_leg] = client.get_order_by_id(oco.id, GetOrderByIdRequest(nested=True)).legs or []

    sim.advance(90)

    wait_until(lambda: client.get_order_by_id(stop_leg.id).status == OrderStatus.CANCELED)
    [entry] = _state_actions(sim)
    assert (entry["outcome"], entry["order_id"]) == ("done", str(stop_leg.id))


def test_role_targets_find_the_legs_of_an_oco_and_of_a_bracket(make_sim: Sim, client_for: Client) -> None:
    sim = make_sim(
        parents=[_parent(), _parent("p2", symbol="STWD", qty="5")],
        actions=[
            {
                "at_s": 100,
                "action": "replace",
                "target": {"parent": "p1", "role": "stop_loss"},
                "stop_price": "66.00",
            },
            {"at_s": 100, "action": "cancel", "target": {"parent": "p2", "role": "take_profit"}},
        ],
    )
    client = client_for(sim)
    _buy_parent(client)
    client.submit_order(
        MarketOrderRequest(
            symbol="STWD",
            qty=5,
            side="buy",
            time_in_force="gtc",
            client_order_id="p2",
            order_class="bracket",
            take_profit=TakeProfitRequest(limit_price=22),
            stop_loss=StopLossRequest(stop_price=18),
        )
    )
    sim.advance(20)
    oco = client.submit_order(
        LimitOrderRequest(
            symbol="OKE",
            qty=10,
            side="sell",
            time_in_force="gtc",
            limit_price=80,
            order_class="oco",
            client_order_id="p1~oco1",
            take_profit=TakeProfitRequest(limit_price=80),
            stop_loss=StopLossRequest(stop_price=65),
        )
    )

    [stop_leg] = client.get_order_by_id(oco.id, GetOrderByIdRequest(nested=True)).legs or []

    sim.advance(90)

    def settled() -> bool:
        return all(a["outcome"] == "done" for a in _state_actions(sim)) and len(_state_actions(sim)) == 2

    wait_until(settled, what="both actions done")
    wait_until(lambda: client.get_order_by_id(stop_leg.id).status == OrderStatus.REPLACED)
    replacement = client.get_order_by_id(client.get_order_by_id(stop_leg.id).replaced_by)
    assert (replacement.stop_price, replacement.status) == ("66", OrderStatus.HELD)
    [leg_now] = client.get_order_by_id(oco.id, GetOrderByIdRequest(nested=True)).legs or []
    assert leg_now.id == replacement.id, "the replacement stays in the OCO"
    bracket = client.get_order_by_client_id("p2")
    wait_until(
        lambda: all(
            client.get_order_by_id(leg.id).status == OrderStatus.CANCELED
            for leg in client.get_order_by_id(bracket.id).legs or []
        )
    )


def test_a_person_edits_our_entry_mid_fill_through_its_replacements(
    make_sim: Sim, client_for: Client
) -> None:
    sim = make_sim(
        parents=[
            {
                "id": "p1",
                "symbol": "OKE",
                "qty": "10",
                "type": "limit",
                "limit_price": "72.10",
                "fills": [{"after_s": 10, "qty": "4"}],
            }
        ],
        actions=[
            {"at_s": 100, "action": "replace", "target": {"parent": "p1", "role": "entry"}, "qty": "8"},
            {
                "at_s": 200,
                "action": "replace",
                "target": {"parent": "p1", "role": "entry"},
                "limit_price": "72.00",
            },
        ],
    )
    client = client_for(sim)
    client.submit_order(
        LimitOrderRequest(
            symbol="OKE", qty=10, side="buy", time_in_force="gtc", limit_price=72.10, client_order_id="p1"
        )
    )
    sim.advance(250)

    wait_until(lambda: len(_state_actions(sim)) == 2)
    first, second = _state_actions(sim)
    original = client.get_order_by_client_id("p1")
    assert first["order_id"] == str(original.id)
    assert first["outcome"] == "done"
    assert second["order_id"] == str(original.replaced_by)
    assert second["outcome"] == "done"


def test_close_position_cancel_all_and_a_hand_sale(make_sim: Sim, client_for: Client) -> None:
    sim = make_sim(
        account={"positions": [{"symbol": "OKE", "qty": "40"}, {"symbol": "STWD", "qty": "10"}]},
        foreign_orders=[
            {
                "client_order_id": "other",
                "symbol": "OKE",
                "side": "sell",
                "qty": "40",
                "type": "limit",
                "limit_price": "90",
            }
        ],
        actions=[
            {"at_s": 10, "action": "close_position", "symbol": "OKE"},  # refused: the shares are held
            {"at_s": 20, "action": "close_position", "symbol": "OKE", "qty": "15", "cancel_orders": True},
            {
                "at_s": 30,
                "action": "submit",
                "order": {"symbol": "STWD", "side": "sell", "qty": "4", "client_order_id": "by-hand"},
            },
            {"at_s": 40, "action": "cancel_all"},
        ],
    )
    client = client_for(sim)
    sim.advance(50)

    wait_until(lambda: client.get_open_position("STWD").qty == "6")
    wait_until(lambda: client.get_open_position("OKE").qty == "25")
    outcomes = [(a["action"], a["outcome"]) for a in _state_actions(sim)]
    assert outcomes[0] == ("close_position", "refused")
    assert ("close_position", "done") in outcomes
    assert ("submit", "done") in outcomes
    assert client.get_order_by_client_id("other").status == OrderStatus.CANCELED
    assert sim.snapshot()["counters"]["actions"]["refused"] == 1


def test_a_target_that_resolves_to_nothing_is_counted_not_raised(make_sim: Sim, client_for: Client) -> None:
    sim = make_sim(
        parents=[_parent()],
        actions=[
            {"at_s": 5, "action": "cancel", "target": {"parent": "p1", "role": "stop_loss"}},
            {"at_s": 5, "action": "cancel", "target": {"client_order_id": "nobody"}},
        ],
    )
    client_for(sim)
    sim.advance(10)

    wait_until(lambda: len(_state_actions(sim)) == 2)
    assert [a["outcome"] for a in _state_actions(sim)] == ["unresolved", "unresolved"]
    assert sim.snapshot()["counters"]["actions"] == {"unresolved": 2}


def test_actions_emit_the_stream_events_a_person_causes(
    make_sim: Sim, client_for: Client, recorder: Recorder
) -> None:
    sim = make_sim(
        account=OKE_40,
        actions=[{"at_s": 30, "action": "cancel", "target": {"client_order_id": "mine"}}],
    )
    client = client_for(sim)
    events = recorder(sim)
    order = client.submit_order(
        StopOrderRequest(
            symbol="OKE", qty=5, side="sell", time_in_force="gtc", stop_price=60, client_order_id="mine"
        )
    )

    sim.advance(40)

    assert [e.event for e in events.wait_for(order.id, "canceled")] == ["canceled"]
