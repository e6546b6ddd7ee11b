"""Hostile input on every route of the simulator: never a 500, and /sim/state never shows a credential.

Each body-taking route gets absurdly deep JSON, 1e309 and NaN, negative numbers, 10 MB strings, wrong types,
numbers with huge exponents, and bodies that are not a JSON object; each query-taking route gets the same
spirit in its query string and path. A refusal (4xx) is the right answer; a 500 is a defect."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from simtools import KEY, SECRET, START, scenario

from ordersync.sim import SimServer, SteppedClock

HEADERS = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET, "content-type": "application/json"}
BIG = "x" * (10 * 1024 * 1024)
MEGA = "9" * (1024 * 1024)
DEPTH = 100_000

BODIES: dict[str, str] = {
    "nested_list": "[" * DEPTH + "]" * DEPTH,
    "nested_object": '{"a":' * DEPTH + "1" + "}" * DEPTH,
    "inf": json.dumps(
        {"symbol": "OKE", "qty": 1e309, "price": 1e309, "seconds": 1e309, "limit_per_min": 1e309,
         "limit_price": 1e309, "side": "buy", "type": "limit", "time_in_force": "gtc"}
    ).replace("Infinity", "1e309"),
    "nan": '{"symbol": "OKE", "qty": NaN, "price": NaN, "seconds": NaN, "limit_price": NaN, "side": "buy",'
    ' "type": "limit", "time_in_force": "gtc"}',
    "negative": json.dumps(
        {"symbol": "OKE", "qty": "-5", "side": "buy", "type": "limit", "time_in_force": "gtc",
         "limit_price": "-10", "price": "-10", "seconds": -1, "limit_per_min": -3,
         "max_margin_multiplier": -2}
    ),
    "big_symbol": json.dumps(
        {"symbol": BIG, "qty": "1", "side": "buy", "type": "market", "time_in_force": "day", "price": "1"}
    ),
    "big_values": json.dumps(
        dict.fromkeys(("symbol", "qty", "side", "type", "time_in_force", "limit_price", "client_order_id",
                       "price", "seconds", "order_id"), MEGA)
    ),
    "wrong_types": json.dumps(
        {"symbol": [1], "qty": {"a": 1}, "side": 5, "type": True, "time_in_force": None, "limit_price": [],
         "take_profit": "x", "stop_loss": 7, "order_class": {}, "price": {}, "seconds": "abc",
         "limit_per_min": "5", "order_id": 5, "client_order_id": [], "suspend_trade": "yes",
         "max_margin_multiplier": [], "latency_ms": "slow"}
    ),
    "huge_exponent": json.dumps(
        {"symbol": "OKE", "qty": "1e999999", "side": "buy", "type": "limit", "time_in_force": "gtc",
         "limit_price": "1e999999", "price": "1e999999", "seconds": "1e999999"}
    ),
    "tiny_exponent": json.dumps(
        {"symbol": "OKE", "qty": "1e-999999", "side": "buy", "type": "limit", "time_in_force": "gtc",
         "limit_price": "1e-999999", "price": "1e-999999", "seconds": "1e-999999"}
    ),
    "huge_float": json.dumps(
        {"symbol": "OKE", "qty": 1e308, "side": "buy", "type": "market", "time_in_force": "gtc",
         "price": 1e308, "seconds": 1e308}
    ),
    "not_json": "{{{",
    "array": "[1, 2]",
    "scalar": "3",
    "empty": "",
}  # fmt: skip

BODY_ROUTES = [
    ("POST", "/v2/orders"),
    ("PATCH", "/v2/orders/{order_id}"),
    ("PATCH", "/v2/account/configurations"),
    ("POST", "/sim/clock/advance"),
    ("POST", "/sim/price"),
    ("POST", "/sim/fill"),
    ("POST", "/sim/faults"),
    ("POST", "/sim/ratelimit"),
    ("POST", "/sim/stream/disconnect"),
]


QUERY_VALUES = {
    "nan": "NaN",
    "inf": "1e309",
    "negative": "-5",
    "long_digits": "9" * 5000,
    "huge_exponent": "1e999999",
    "brackets": "[]{}",
    "big": "y" * 8_000,  # uvicorn's h11 refuses a request head over 16 KB before any route sees it
}
QUERY_ROUTES = [
    ("GET", "/v2/orders?limit={v}"),
    ("GET", "/v2/orders?after={v}"),
    ("GET", "/v2/orders?until={v}"),
    ("GET", "/v2/orders?status={v}&direction={v}&side={v}"),
    ("GET", "/v2/orders?nested={v}&symbols={v}"),
    ("GET", "/v2/orders/{v}"),
    ("GET", "/v2/orders/{v}?nested={v}"),
    ("GET", "/v2/orders:by_client_order_id?client_order_id={v}"),
    ("DELETE", "/v2/orders/{v}"),
    ("GET", "/v2/positions/{v}"),
    ("DELETE", "/v2/positions/{v}"),
    ("DELETE", "/v2/positions/OKE?qty={v}"),
    ("DELETE", "/v2/positions/OKE?percentage={v}"),
    ("DELETE", "/v2/positions?cancel_orders={v}"),
    ("GET", "/v2/account/activities?page_size={v}&direction={v}"),
    ("GET", "/v2/account/activities?after={v}&until={v}"),
    ("GET", "/v2/account/activities?date={v}"),
    ("GET", "/v2/account/activities?page_token={v}"),
    ("GET", "/v2/account/activities?activity_types={v}&category={v}"),
    ("GET", "/v2/account/activities/{v}"),
    ("GET", "/v2/assets?status={v}&asset_class={v}&exchange={v}&attributes={v}"),
    ("GET", "/v2/assets/{v}"),
    ("GET", "/v2/calendar?start={v}&end={v}"),
]


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    with SimServer(scenario(), SteppedClock(START), api_key=KEY, secret_key=SECRET) as server:
        yield server


@pytest.fixture(scope="module")
def resting_order_id(sim: SimServer) -> str:
    """An OKE position of 9 and a resting buy, so the order and position routes reach their logic."""
    order = {"symbol": "OKE", "qty": "9", "side": "buy", "type": "market", "time_in_force": "gtc"}
    assert _call(sim, "POST", "/v2/orders", json.dumps(order)).status_code == 200
    sim.advance(1)
    resting = {"symbol": "OKE", "qty": "1", "side": "buy", "type": "limit", "time_in_force": "gtc",
               "limit_price": "1"}  # fmt: skip
    response = _call(sim, "POST", "/v2/orders", json.dumps(resting))
    assert response.status_code == 200
    sim.advance(1)
    order_id = response.json()["id"]
    assert isinstance(order_id, str)
    return order_id


def _call(sim: SimServer, method: str, path: str, body: str | None = None) -> httpx.Response:
    # A fresh connection per request: a server error must not leak into the next case through keep-alive.
    return httpx.request(method, f"{sim.base_url}{path}", content=body, headers=HEADERS, timeout=60)


def _cases(routes: list[tuple[str, str]], kinds: list[str]) -> Any:
    for method, path in routes:
        for kind in kinds:
            yield pytest.param(method, path, kind, id=f"{method} {path} {kind}")


@pytest.mark.parametrize(("method", "path", "kind"), list(_cases(BODY_ROUTES, list(BODIES))))
def test_hostile_bodies_never_get_a_500(
    sim: SimServer, resting_order_id: str, method: str, path: str, kind: str
) -> None:
    response = _call(sim, method, path.format(order_id=resting_order_id), BODIES[kind])
    account = _call(sim, "GET", "/v2/account")  # the simulator still serves
    sim.set_price("OKE", "72.10")  # a hostile price must not poison the next case
    assert response.status_code < 500, response.text[:300]
    assert account.status_code == 200, account.text[:300]


@pytest.mark.parametrize(("method", "path", "kind"), list(_cases(QUERY_ROUTES, list(QUERY_VALUES))))
def test_hostile_query_strings_never_get_a_500(
    sim: SimServer, resting_order_id: str, method: str, path: str, kind: str
) -> None:
    response = _call(sim, method, path.format(v=QUERY_VALUES[kind]))
    assert response.status_code < 500, response.text[:300]


@pytest.mark.parametrize("path", ["/v2/account/activities", "/v2/assets", "/v2/calendar"])
def test_refusals_of_new_routes_are_short_one_liners(sim: SimServer, path: str) -> None:
    long_value = "z" * 4_000
    response = _call(sim, "GET", f"{path}?direction={long_value}&status={long_value}&start={long_value}")
    assert response.status_code == 422
    assert len(response.content) < 400
    assert "\n" not in response.json()["message"]


def test_new_routes_refuse_absurd_bodies_and_numbers_with_4xx(sim: SimServer) -> None:
    patch = "/v2/account/configurations"
    assert _call(sim, "PATCH", patch, BODIES["nested_object"]).status_code == 400
    assert _call(sim, "PATCH", patch, BODIES["array"]).status_code == 400
    assert _call(sim, "PATCH", patch, '{"max_margin_multiplier": 1e309}').status_code == 422
    assert _call(sim, "PATCH", patch, '{"max_options_trading_level": NaN}').status_code == 422
    assert _call(sim, "GET", "/v2/account/activities?page_size=1e309").status_code == 422
    assert _call(sim, "GET", "/v2/calendar?start=99999-01-01").status_code == 422


def test_sim_state_never_shows_the_secret(sim: SimServer, resting_order_id: str) -> None:
    assert _call(sim, "GET", "/v2/account").status_code == 200
    state = httpx.get(f"{sim.base_url}/sim/state", timeout=10).text
    assert SECRET not in state
    limits = httpx.post(f"{sim.base_url}/sim/ratelimit", json={"limit_per_min": 10_000}, timeout=10).text
    assert SECRET not in limits


def test_no_control_answer_shows_the_key_id() -> None:
    with SimServer(scenario(), SteppedClock(START), api_key=KEY, secret_key=SECRET) as own:
        assert _call(own, "GET", "/v2/account").status_code == 200
        state = httpx.get(f"{own.base_url}/sim/state", timeout=10).text
        limits = httpx.post(f"{own.base_url}/sim/ratelimit", json={"limit_per_min": 100}, timeout=10).text
        assert KEY not in state
        assert KEY not in limits
