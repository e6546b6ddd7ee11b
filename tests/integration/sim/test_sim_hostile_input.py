"""Hostile input on the order routes and the control API: every answer is a 4xx with a JSON body, never a 500
or a dropped connection; /sim/state never shows an API key or secret."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from simtools import HEADERS, KEY, SECRET

from ordersync.sim import SimServer

DEEP_ARRAY = "[" * 100_000 + "]" * 100_000
DEEP_OBJECT = '{"a":' * 50_000 + "1" + "}" * 50_000
NUMBERS = ["1e309", "-1e309", "1e300", "-5", "NaN", "Infinity", "0", "123456789012345678901234567890"]
HUGE = json.dumps("X" * 200_000)


@pytest.fixture(scope="module")
def http(sim: SimServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.base_url, headers=HEADERS, timeout=30) as client:
        yield client


def _refused(response: httpx.Response) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:200])
    assert isinstance(response.json(), dict)


ROUTES = [
    ("POST", "/v2/orders"),
    ("PATCH", "/v2/orders/00000000-0000-0000-0000-000000000000"),
    ("POST", "/sim/clock/advance"),
    ("POST", "/sim/price"),
    ("POST", "/sim/fill"),
    ("POST", "/sim/faults"),
    ("POST", "/sim/ratelimit"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize("body", [DEEP_ARRAY, DEEP_OBJECT, "not json", "[1, 2]"])
def test_a_body_that_is_not_an_object_is_a_400(http: httpx.Client, method: str, path: str, body: str) -> None:
    response = http.request(method, path, content=body)

    _refused(response)


@pytest.mark.parametrize("number", NUMBERS)
@pytest.mark.parametrize(
    "template",
    [
        '{"seconds": %s}',
        '{"symbol": "OKE", "price": %s}',
        '{"client_order_id": "plan-oke", "qty": %s}',
        '{"client_order_id": "plan-oke", "price": %s}',
        '{"stream_drop_at_s": [%s]}',
        '{"latency_ms": %s}',
        '{"drop_event_p": %s}',
        '{"windows": [{"from_s": 0, "to_s": %s}]}',
        '{"windows": [{"from_s": 0, "to_s": 5, "latency_s": %s}]}',
        '{"limit_per_min": %s}',
    ],
)
def test_absurd_numbers_in_control_requests_are_refused(
    http: httpx.Client, number: str, template: str
) -> None:
    path = {
        "seconds": "/sim/clock/advance",
        "symbol": "/sim/price",
        "client_order_id": "/sim/fill",
        "limit_per_min": "/sim/ratelimit",
    }.get(template[2:].split('"', 1)[0], "/sim/faults")
    if number == "0" and path in ("/sim/clock/advance", "/sim/faults"):
        pytest.skip("0 is a valid value there")

    response = http.post(path, content=template % number)

    _refused(response)
    http.post("/sim/faults", json={})  # whatever happened, no faults for the next test


@pytest.mark.parametrize("number", NUMBERS)
@pytest.mark.parametrize(
    "field", ["qty", "notional", "limit_price", "stop_price", "trail_price", "trail_percent"]
)
def test_absurd_numbers_in_an_order_are_a_422(http: httpx.Client, number: str, field: str) -> None:
    body = (
        '{"symbol": "OKE", "side": "buy", "type": "limit", "time_in_force": "day", "qty": "1", '
        f'"limit_price": "70", "{field}": {number}}}'
    )

    _refused(http.post("/v2/orders", content=body))


@pytest.mark.parametrize(
    "field", ["symbol", "client_order_id", "side", "type", "time_in_force", "order_class"]
)
def test_a_huge_string_in_an_order_is_a_422_that_does_not_echo_it(http: httpx.Client, field: str) -> None:
    body = (
        '{"symbol": "OKE", "side": "buy", "type": "market", "time_in_force": "day", "qty": "1", '
        f'"{field}": {HUGE}}}'
    )

    response = http.post("/v2/orders", content=body)

    _refused(response)
    assert len(response.content) < 1000


def test_huge_or_hostile_path_and_query_values_are_4xx(http: httpx.Client) -> None:
    junk = "X" * 5000
    for response in [
        http.get(f"/v2/orders/{junk}"),
        http.delete(f"/v2/orders/{junk}"),
        http.get(f"/v2/positions/{junk}"),
        http.get("/v2/orders", params={"limit": "1e309"}),
        http.get("/v2/orders", params={"after": junk}),
        http.get("/v2/orders:by_client_order_id", params={"client_order_id": junk}),
        http.delete("/v2/positions/OKE", params={"qty": "NaN"}),
        http.delete("/v2/positions/OKE", params={"percentage": "1e309"}),
    ]:
        _refused(response)


def test_sim_state_never_shows_a_key(http: httpx.Client) -> None:
    http.get("/v2/account")  # the key is now counted by the rate limiter

    text = http.get("/sim/state").text

    assert KEY not in text
    assert SECRET not in text


def test_the_rate_limit_answer_never_shows_a_key(http: httpx.Client) -> None:
    http.get("/v2/account")

    text = http.post("/sim/ratelimit", json={"limit_per_min": 10_000}).text

    assert KEY not in text


@pytest.mark.parametrize("value", ["9" * 1_048_576, "1e999999", "1e-999999"])
@pytest.mark.parametrize(
    ("path", "field"),
    [("/sim/clock/advance", "seconds"), ("/sim/price", "price"), ("/sim/fill", "qty"), ("/v2/orders", "qty")],
)
def test_numbers_with_a_million_digits_or_a_huge_exponent_are_refused(
    http: httpx.Client, value: str, path: str, field: str
) -> None:
    body = {"symbol": "OKE", "side": "buy", "type": "limit", "time_in_force": "day", "limit_price": "70",
            "qty": "1", "client_order_id": "plan-oke", field: value}  # fmt: skip
    _refused(http.post(path, json=body))


@pytest.mark.parametrize("params", [{"qty": "-5"}, {"qty": "0"}, {"percentage": "150"}, {"percentage": "-1"}])
def test_a_position_close_with_a_bad_amount_is_a_422(http: httpx.Client, params: dict[str, str]) -> None:
    _refused(http.delete("/v2/positions/OKE", params=params))
