"""The stream's fast parse maps every field exactly as alpaca-py's model + ``mapping.observation`` does.

The corpus is the simulator's own frames (tests/unit/brokers/corpus.py): every event it sends, nulls,
fractional quantities, nested legs, replaced_by/replaces. Each frame, and variants of it that real
brokers send or that are hostile, goes through both paths; the fast one must either build the very same
observation (same Decimal digits, same time offsets) or decline, never accept what the slow one refuses.
"""

from __future__ import annotations

import json
from dataclasses import fields, is_dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from alpaca.trading.enums import TradeEvent
from alpaca.trading.models import TradeUpdate
from corpus import simulator_frames
from pydantic import ValidationError

from ordersync.brokers.alpaca import AlpacaStream, parse
from ordersync.brokers.alpaca.mapping import observation
from ordersync.domain.errors import MalformedObservation
from ordersync.domain.events import OrderObserved
from ordersync.testing import FakeClock

RECEIVED = datetime(2025, 10, 10, 15, 0, tzinfo=UTC)
FRAMES = simulator_frames()


def fingerprint(value: Any) -> Any:
    """A value's every detail: Decimals by their digits, datetimes by text and offset, recursively."""
    if is_dataclass(value) and not isinstance(value, type):
        return (
            type(value).__name__,
            tuple((f.name, fingerprint(getattr(value, f.name))) for f in fields(value)),
        )
    if isinstance(value, datetime):
        return ("datetime", value.isoformat(), value.utcoffset())
    if isinstance(value, Decimal):
        return ("Decimal", str(value))
    if isinstance(value, tuple | list | frozenset):
        return (type(value).__name__, tuple(fingerprint(v) for v in value))
    return (type(value).__name__, value)


def slow(data: Any) -> OrderObserved | str:
    try:
        return observation(TradeUpdate(**data), RECEIVED)
    except (ValidationError, MalformedObservation, ValueError, TypeError, ArithmeticError) as e:
        return f"refused: {type(e).__name__}"


def fast(data: Any) -> OrderObserved | str:
    try:
        return parse.fast_observation(data, RECEIVED)
    except parse.Declined:
        return "declined"
    except (MalformedObservation, ValueError, TypeError, ArithmeticError) as e:
        return f"refused: {type(e).__name__}"


def assert_same(data: Any, *, must_accept: bool = False) -> None:
    expected, got = slow(data), fast(data)
    if got == "declined":
        assert not must_accept, (
            f"the fast path declined a frame the simulator sends: {json.dumps(data)[:300]}"
        )
        return
    if isinstance(got, str):  # refused by the domain's own checks: alpaca-py's path must refuse it too
        assert isinstance(expected, str), f"fast refused ({got}) what alpaca-py maps: {data}"
        return
    assert not isinstance(expected, str), f"fast accepted what alpaca-py refuses ({expected}): {data}"
    assert fingerprint(got) == fingerprint(expected)


def datas() -> list[dict[str, Any]]:
    return [json.loads(f)["data"] for f in FRAMES]


def test_the_corpus_covers_what_the_fast_path_must_handle() -> None:
    events = {d["event"] for d in datas()}
    assert {"new", "partial_fill", "fill", "canceled", "pending_replace", "replaced"} <= events
    orders = [d["order"] for d in datas()]
    assert any(o["legs"] for o in orders), "nested legs"
    assert any(o["replaces"] for o in orders)
    assert any(o["replaced_by"] for o in orders)
    assert any(Decimal(o["qty"]) % 1 for o in orders), "a fractional quantity"
    assert any(o["filled_avg_price"] is None for o in orders), "nulls"


@pytest.mark.parametrize("index", range(len(FRAMES)))
def test_every_simulator_frame_takes_the_fast_path_and_maps_exactly_as_alpaca_py(index: int) -> None:
    assert_same(json.loads(FRAMES[index])["data"], must_accept=True)


@pytest.mark.parametrize(
    "event", [e.value for e in TradeEvent] + ["done_for_day", "order_cancel_rejected", "new_kind"]
)
def test_every_event_type_maps_exactly(event: str) -> None:
    for data in datas():
        assert_same({**data, "event": event}, must_accept=True)


def _fill() -> dict[str, Any]:
    return next(d for d in datas() if d["event"] == "partial_fill")


def _with_order(data: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**data, "order": {**data["order"], **changes}}


VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("price null", {"price": None}),
    ("qty null", {"qty": None}),
    ("execution id null", {"execution_id": None}),
    ("no execution fields", {"qty": None, "price": None, "position_qty": None, "execution_id": None}),
    ("qty a JSON integer", {"qty": 3}),
    ("qty a JSON float", {"qty": 0.1}),
    ("price a JSON float", {"price": 89.99}),
    ("tiny fractional qty", {"qty": "0.000000001"}),
    ("price zero", {"price": "0"}),
    ("price with a trailing zero", {"price": "89.90"}),
    ("qty with an exponent", {"qty": "1e2"}),
    ("qty with underscores", {"qty": "1_000"}),
    ("qty not a number", {"qty": "abc"}),
    ("qty a boolean", {"qty": True}),
    ("qty NaN text", {"qty": "NaN"}),
    ("execution id not a UUID", {"execution_id": "not-a-uuid"}),
    ("execution id in capitals", {"execution_id": "7D26308F-2A00-4312-8777-2F47EFA0F02D"}),
    ("timestamp with nanoseconds", {"timestamp": "2025-10-10T14:30:00.123456789Z"}),
    ("timestamp with an offset", {"timestamp": "2025-10-10T10:30:00.5-04:00"}),
    ("timestamp without a zone", {"timestamp": "2025-10-10T14:30:00"}),
    ("timestamp with a space", {"timestamp": "2025-10-10 14:30:00Z"}),
    ("timestamp as epoch seconds", {"timestamp": 1760106600}),
    ("timestamp out of range", {"timestamp": "2025-13-10T14:30:00Z"}),
    ("no timestamp", {"timestamp": None}),
    ("event not a string", {"event": 5}),
    ("order missing", {"order": None}),
]

ORDER_VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("order_class empty", {"order_class": ""}),
    ("order_class null", {"order_class": None}),
    ("order_class oco", {"order_class": "oco"}),
    ("order_class unknown", {"order_class": "spread"}),
    ("side empty", {"side": ""}),
    ("type empty", {"type": "", "order_type": ""}),
    ("symbol empty", {"symbol": ""}),
    ("asset id empty", {"asset_id": ""}),
    ("asset class empty", {"asset_class": ""}),
    ("unknown status", {"status": "exploded"}),
    ("filled_qty zero with decimals", {"filled_qty": "0.00"}),
    ("filled_qty null", {"filled_qty": None}),
    ("filled_avg_price zero", {"filled_avg_price": "0"}),
    ("qty a JSON number", {"qty": 10, "limit_price": 90.5}),
    ("notional instead of qty", {"qty": None, "notional": "150.25"}),
    ("notional a number", {"notional": 150}),
    ("extended_hours as text", {"extended_hours": "true"}),
    ("extended_hours null", {"extended_hours": None}),
    ("time_in_force unknown", {"time_in_force": "forever"}),
    ("id in capitals", {"id": "ABF7C215-A932-4330-A7FF-35A902F333F3"}),
    ("id without hyphens", {"id": "abf7c215a9324330a7ff35a902f333f3"}),
    ("replaced_by not a UUID", {"replaced_by": "nope"}),
    ("client_order_id a number", {"client_order_id": 12}),
    ("updated_at null", {"updated_at": None}),
    ("filled_at with nanoseconds", {"filled_at": "2025-10-10T14:30:00.000000001Z"}),
    ("legs not a list", {"legs": {}}),
    ("legs empty", {"legs": []}),
    ("a leg that is not an order", {"legs": [{"id": "x"}]}),
    ("extra fields", {"subtag": "x", "brand_new_field": [1, 2]}),
]


@pytest.mark.parametrize(("name", "change"), VARIANTS, ids=[n for n, _ in VARIANTS])
def test_message_variants_map_exactly_or_are_declined(name: str, change: dict[str, Any]) -> None:
    assert_same({**_fill(), **change})


@pytest.mark.parametrize(("name", "change"), ORDER_VARIANTS, ids=[n for n, _ in ORDER_VARIANTS])
def test_order_variants_map_exactly_or_are_declined(name: str, change: dict[str, Any]) -> None:
    for data in datas():
        assert_same(_with_order(data, **change))
        legs = data["order"]["legs"]
        if legs:  # the same change on a nested leg
            assert_same(_with_order(data, legs=[{**legs[0], **change}, *legs[1:]]))


def test_every_alpaca_status_maps_exactly() -> None:
    from alpaca.trading.enums import OrderStatus

    for status in OrderStatus:
        assert_same(_with_order(_fill(), status=status.value), must_accept=True)


def test_the_stream_client_uses_the_fast_path_and_falls_back_for_what_it_declines() -> None:
    stream = AlpacaStream("k", "s", clock=FakeClock())
    items = [stream._parse(f) for f in FRAMES]
    assert all(isinstance(i, OrderObserved) for i in items)
    assert (stream.declined, stream.malformed) == (0, 0)
    capitals = json.dumps(
        {"stream": "trade_updates", "data": _with_order(_fill(), id=_fill()["order"]["id"].upper())}
    )
    declined = stream._parse(capitals)
    assert isinstance(declined, OrderObserved), "alpaca-py's model accepts it, so the client does too"
    assert declined.order.broker_order_id == _fill()["order"]["id"]
    assert stream.declined == 1
    assert stream._parse(json.dumps({"stream": "trade_updates", "data": {**_fill(), "qty": "abc"}})) is None
    assert stream.malformed == 1, "a number that is no number is a malformed message, not a crash"


def test_decoding_falls_back_to_json_for_what_orjson_refuses() -> None:
    assert parse.decode(b'{"a": NaN}')["a"] != parse.decode(b'{"a": NaN}')["a"]  # json reads NaN
    big = parse.decode('{"a": 123456789012345678901234567890}')["a"]
    assert float(big) == float(123456789012345678901234567890)  # orjson: a float, json: an int
    with pytest.raises(ValueError, match=r"."):  # json's own error (UnicodeDecodeError is a ValueError)
        parse.decode(b"\xff\xfe not json")


def _listed_slowly(raw: Any) -> list[Any]:
    """A list read as alpaca-py's client and the mapping did it: the model for every order, then flatten."""
    from alpaca.trading.models import Order as AlpacaOrder
    from pydantic import TypeAdapter

    from ordersync.brokers.alpaca.mapping import flatten, order_view

    return [order_view(o) for o in flatten(TypeAdapter(list[AlpacaOrder]).validate_python(raw))]


def test_a_list_read_maps_every_order_and_its_legs_exactly_as_alpaca_pys_model() -> None:
    orders = [d["order"] for d in datas()]
    assert any(o["legs"] for o in orders)
    upper = {**orders[0], "id": orders[0]["id"].upper()}  # declined by the fast path, valid for the model
    raw = [*orders, upper]
    assert fingerprint(parse.order_views(raw)) == fingerprint(_listed_slowly(raw))
    assert len(parse.order_views(raw)) == len(raw) + sum(len(o["legs"] or ()) for o in raw)


def _error(read: Any, raw: Any) -> str:
    try:
        read(raw)
    except (ValidationError, MalformedObservation, ArithmeticError) as e:
        return type(e).__name__
    return "accepted"


def test_a_list_read_refuses_what_alpaca_pys_model_refuses_with_the_same_error() -> None:
    orders = [d["order"] for d in datas()]
    for raw in (
        [*orders, {**orders[0], "status": "exploded"}],
        [{**orders[0], "qty": "abc"}, {**orders[1], "created_at": "yesterday"}],  # validation comes first
        [{**orders[0], "qty": "abc"}],
        [{**orders[0], "updated_at": None, "submitted_at": None, "created_at": None}],
        {"not": "a list"},
        [*orders, "not an order"],
    ):
        expected = _error(_listed_slowly, raw)
        assert expected != "accepted"
        assert _error(parse.order_views, raw) == expected
