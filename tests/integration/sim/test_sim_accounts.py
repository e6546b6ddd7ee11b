"""Many accounts in one simulator (docs/scenarios.md, "accounts"): each key pair opens its own books, plans,
stream, faults and rate-limit budget over one shared market, through alpaca-py and the control API."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderStatus, QueryOrderStatus
from alpaca.trading.requests import GetOrdersRequest, LimitOrderRequest, MarketOrderRequest
from simtools import START, StreamRecorder, scenario, trading_client

from ordersync.sim import ScenarioError, SimServer, SteppedClock, default_scenario
from ordersync.sim.banner import startup_banner

ALICE = {"name": "alice", "key_id": "AK-ALICE", "secret_key": "alice-secret"}
BOB = {"name": "bob", "key_id": "AK-BOB", "secret_key": "bob-secret"}


def _start(**overrides: Any) -> SimServer:
    return SimServer(scenario(**overrides), SteppedClock(START)).start()


@pytest.fixture
def two() -> Iterator[SimServer]:
    server = _start(
        accounts=[
            {**ALICE, "cash": "50000", "positions": [{"symbol": "OKE", "qty": "10"}]},
            BOB,
        ]
    )
    yield server
    server.stop()


def _client(sim: SimServer, account: dict[str, str]) -> TradingClient:
    return trading_client(sim, account["key_id"], account["secret_key"])


def _plan_buy(coid: str, symbol: str, qty: int) -> LimitOrderRequest:
    return LimitOrderRequest(
        symbol=symbol, qty=qty, side="buy", time_in_force="gtc", limit_price=99, client_order_id=coid
    )


def test_two_keys_see_two_books_with_the_same_parent_ids_filled_by_their_own_plans(two: SimServer) -> None:
    alice, bob = _client(two, ALICE), _client(two, BOB)

    assert [p.symbol for p in alice.get_all_positions()] == ["OKE"]
    assert bob.get_all_positions() == []
    assert (alice.get_account().cash, bob.get_account().cash) == ("50000", "1000000")
    assert alice.get_account().id != bob.get_account().id
    for client in (alice, bob):  # the same client_order_id in both accounts: each its own order and plan
        client.submit_order(_plan_buy("plan-epd", "EPD", 10))
    bob.submit_order(MarketOrderRequest(symbol="STWD", qty=5, side="buy", time_in_force="day"))
    two.advance(130)

    alice_orders = alice.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL))
    bob_orders = bob.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL))
    assert [o.client_order_id for o in alice_orders] == ["plan-epd"]
    assert sorted(o.client_order_id for o in bob_orders if o.symbol == "EPD") == ["plan-epd"]
    assert {o.filled_qty for o in alice_orders} == {"7"}  # the plan's 3 + 4, in each account
    assert alice.get_open_position("EPD").qty == bob.get_open_position("EPD").qty == "7"
    with pytest.raises(APIError):
        alice.get_order_by_id(next(o.id for o in bob_orders if o.symbol == "STWD"))  # not alice's order


def test_a_key_opens_only_its_own_account(two: SimServer) -> None:
    mixed = httpx.get(
        f"{two.base_url}/v2/account",
        headers={"APCA-API-KEY-ID": "AK-ALICE", "APCA-API-SECRET-KEY": "bob-secret"},
        timeout=5,
    )
    any_pair = httpx.get(
        f"{two.base_url}/v2/account",
        headers={"APCA-API-KEY-ID": "any", "APCA-API-SECRET-KEY": "thing"},
        timeout=5,
    )
    assert (mixed.status_code, any_pair.status_code) == (401, 401)


def test_a_stream_gets_only_its_own_accounts_events(two: SimServer) -> None:
    alice_events = StreamRecorder(two, ALICE["key_id"], ALICE["secret_key"]).start()
    bob_events = StreamRecorder(two, BOB["key_id"], BOB["secret_key"]).start(listeners_before=1)
    try:
        alice_order = _client(two, ALICE).submit_order(
            MarketOrderRequest(symbol="OKE", qty=1, side="buy", time_in_force="day")
        )
        bob_order = _client(two, BOB).submit_order(
            MarketOrderRequest(symbol="OKE", qty=2, side="buy", time_in_force="day")
        )
        alice_events.wait_for(alice_order.id, "fill")
        bob_events.wait_for(bob_order.id, "fill")

        assert {str(e.order.id) for e in alice_events.events} == {str(alice_order.id)}
        assert {str(e.order.id) for e in bob_events.events} == {str(bob_order.id)}
        assert (two.stream_listeners("alice"), two.stream_listeners("bob")) == (1, 1)
    finally:
        alice_events.stop()
        bob_events.stop()


def test_a_429_on_one_key_does_not_limit_the_other() -> None:
    sim = _start(accounts=[ALICE, BOB], rate_limit_per_min=3)
    try:

        def get(account: dict[str, str]) -> int:
            headers = {"APCA-API-KEY-ID": account["key_id"], "APCA-API-SECRET-KEY": account["secret_key"]}
            return httpx.get(f"{sim.base_url}/v2/account", headers=headers, timeout=5).status_code

        assert [get(ALICE) for _ in range(4)] == [200, 200, 200, 429]
        assert [get(BOB) for _ in range(3)] == [200, 200, 200]
        assert sim.snapshot("alice")["counters"]["rate_limited"] == 1
        assert sim.snapshot("bob")["counters"]["rate_limited"] == 0
    finally:
        sim.stop()


@pytest.fixture
def http(two: SimServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=two.base_url, timeout=5) as client:
        yield client


def test_control_routes_take_an_account(two: SimServer, http: httpx.Client) -> None:
    order = _client(two, BOB).submit_order(
        LimitOrderRequest(symbol="EPD", qty=4, side="buy", time_in_force="gtc", limit_price=30)
    )

    listing = http.get("/sim/accounts").json()
    assert [(a["name"], a["open_orders"]) for a in listing] == [("alice", 0), ("bob", 1)]
    assert all(a["key"].startswith("key-") for a in listing)
    assert "AK-BOB" not in http.get("/sim/accounts").text
    assert http.get("/sim/state", params={"account": "alice"}).json()["orders"] == []
    bob_state = http.get("/sim/state", params={"account": "bob"}).json()
    assert [o["id"] for o in bob_state["orders"]] == [str(order.id)]
    assert bob_state["account"]["name"] == "bob"
    assert http.get("/sim/state").json()["account"]["name"] == "alice"  # the first account by default
    filled = http.post("/sim/fill", params={"account": "bob"}, json={"order_id": str(order.id)}).json()
    assert filled["status"] == "filled"
    assert http.post("/sim/fill", json={"order_id": str(order.id)}).status_code == 404  # not alice's
    assert http.get("/sim/state", params={"account": "carol"}).status_code == 404
    shown = http.get("/sim/state", params={"account": "bob"}).text + http.get("/sim/accounts").text
    assert not any(secret in shown for secret in ("AK-ALICE", "AK-BOB", "alice-secret", "bob-secret"))
    huge = http.get("/sim/state", params={"account": "x" * 10_000})
    assert (huge.status_code, len(huge.text) < 200) == (
        404,
        True,
    )  # a short answer, the name not echoed whole


def test_faults_are_per_account(two: SimServer, http: httpx.Client) -> None:
    assert http.post("/sim/faults", params={"account": "alice"}, json={"http_5xx_p": 1.0}).status_code == 200
    alice, bob = _client(two, ALICE), _client(two, BOB)
    alice._retry = 0

    with pytest.raises(APIError) as failed:
        alice.get_account()
    assert failed.value.status_code >= 500
    assert bob.get_account().cash == "1000000"
    assert http.get("/sim/faults", params={"account": "bob"}).json()["http_5xx_p"] == 0.0


def test_a_price_move_reaches_every_account(two: SimServer) -> None:
    alice, bob = _client(two, ALICE), _client(two, BOB)
    orders = [
        c.submit_order(
            LimitOrderRequest(symbol="STWD", qty=3, side="buy", time_in_force="gtc", limit_price=19)
        )
        for c in (alice, bob)
    ]
    two.advance(1)
    two.set_price("STWD", "18.90")

    assert [c.get_order_by_id(o.id).status for c, o in zip((alice, bob), orders, strict=True)] == [
        OrderStatus.FILLED,
        OrderStatus.FILLED,
    ]


def test_fifty_generated_accounts_each_run_the_plans_with_their_own_variation() -> None:
    began = time.monotonic()
    sim = _start(accounts={"count": 50, "key_prefix": "demo", "variation": {"fill_delay_s": 60}})
    try:
        names = [a["name"] for a in sim.accounts()]
        assert (names[0], names[-1], len(names)) == ("demo-001", "demo-050", 50)
        clients = {n: trading_client(sim, n, f"{n}-secret") for n in names}
        for client in clients.values():
            for coid, symbol, qty in (
                ("plan-oke", "OKE", 9),
                ("plan-stwd", "STWD", 37),
                ("plan-epd", "EPD", 10),
            ):
                client.submit_order(_plan_buy(coid, symbol, qty))
        sim.advance(300)

        oke_fill_times = set()
        for name, client in clients.items():
            orders = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL))
            assert sorted((o.client_order_id, o.filled_qty) for o in orders) == [
                ("plan-epd", "7"),
                ("plan-oke", "9"),
                ("plan-stwd", "37"),
            ], name
            oke = next(o for o in orders if o.client_order_id == "plan-oke")
            oke_fill_times.add(oke.filled_at)
        assert len(oke_fill_times) > 10  # each account's plan is delayed by its own draw
        elapsed = time.monotonic() - began
        print(f"50 accounts x 3 orders, submitted, filled and read back in {elapsed:.2f} s")
    finally:
        sim.stop()


def test_the_specs_give_each_account_its_keys_and_varied_parents() -> None:
    loaded = scenario(accounts={"count": 3, "key_prefix": "w", "variation": {"fill_delay_s": 100}})
    again = scenario(accounts={"count": 3, "key_prefix": "w", "variation": {"fill_delay_s": 100}})

    specs = loaded.account_specs()
    assert [(s.name, s.key_id, s.secret_key) for s in specs] == [
        ("w-001", "w-001", "w-001-secret"),
        ("w-002", "w-002", "w-002-secret"),
        ("w-003", "w-003", "w-003-secret"),
    ]
    assert [s.parents for s in specs] == [s.parents for s in again.account_specs()]  # reproducible
    delays = {s.parents[0].fills[0].after_s - 204 for s in specs}
    assert len(delays) == 3
    assert all(0 <= d <= 100 for d in delays)


def test_the_seed_scenario_runs_on_n_accounts_with_variations() -> None:
    seed = default_scenario()
    many = seed.with_accounts(4, key_prefix="demo", variation={"fill_delay_s": 300, "drop_last_fill_p": 0.5})

    specs = many.account_specs()
    assert [s.key_id for s in specs] == ["demo-001", "demo-002", "demo-003", "demo-004"]
    assert all([p.id for p in s.parents] == [p.id for p in seed.parents] for s in specs)
    assert len({tuple(len(p.fills) for p in s.parents) for s in specs}) > 1  # some lost a last fill
    assert (many.symbols, many.prices, many.actions) == (seed.symbols, seed.prices, seed.actions)
    with pytest.raises(ScenarioError, match=r"accounts\.count: Input should be greater than or equal to 1"):
        seed.with_accounts(0)


@pytest.mark.parametrize(
    ("accounts", "message"),
    [
        ([ALICE, {**BOB, "key_id": "AK-ALICE"}], "accounts: every key_id must be unique"),
        ([ALICE, {**ALICE, "key_id": "AK-2"}], "accounts: every name must be unique"),
        ([{**ALICE, "positions": [{"symbol": "AAPL", "qty": "1"}]}], "symbol 'AAPL' is not listed"),
        ([{**ALICE, "name": "has space"}], "accounts.0.name: String should match pattern"),
    ],
)
def test_bad_accounts_are_one_line_errors(accounts: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ScenarioError) as error:
        scenario(accounts=accounts)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_the_banner_lists_the_accounts_without_their_secrets(two: SimServer) -> None:
    banner = startup_banner(two.simulator, "127.0.0.1", two.port, "stepped", keys_from_env=False)

    assert "2 accounts" in banner
    assert "alice: key id AK-ALICE" in banner
    assert "alice-secret" not in banner
