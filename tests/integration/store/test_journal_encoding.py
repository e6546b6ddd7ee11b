"""The journal payload encoder: its orjson path writes exactly the bytes the json encoder writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ordersync.store.statements import _ENCODER, dumps

plain = st.one_of(
    st.text(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.booleans(),
    st.none(),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5)), None])),
)


@given(st.dictionaries(st.text(), plain, max_size=8))
def test_a_flat_payload_encodes_to_the_json_encoders_bytes(payload: dict[str, Any]) -> None:
    assert dumps(payload) == _ENCODER.encode(payload)


def test_payloads_orjson_would_write_differently_take_the_json_encoder() -> None:
    for payload in (
        {"text": "caf\u00e9 \x00"},  # json escapes non-ASCII
        {"text": "DEL \x7f"},  # and DEL
        {"big": 2**70},  # beyond 64 bits
        {"nested": {"b": Decimal("1.50"), "a": [datetime(2026, 1, 2, tzinfo=UTC)]}},
        {"float": 1e-05},
    ):
        assert dumps(payload) == _ENCODER.encode(payload)
    assert dumps({"b": Decimal("12.50"), "a": datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)}) == (
        '{"a":"2026-01-02T03:04:05.000006+00:00","b":"12.50"}'
    )
