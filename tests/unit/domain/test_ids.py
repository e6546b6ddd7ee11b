"""The deterministic client_order_id of dependent orders (docs/architecture.md §2, invariant 3)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ordersync.domain.ids import (
    MAX_CLIENT_ORDER_ID_LEN,
    ClientOrderId,
    child_client_order_id,
    validate_client_order_id,
)

ROLES = ("tp", "sl", "oco")
# Alpaca accepts printable ASCII ids; the parent id may use the whole 128-character budget
parent_ids = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=MAX_CLIENT_ORDER_ID_LEN
).map(ClientOrderId)


def test_child_id_is_readable_when_it_fits() -> None:
    assert child_client_order_id(ClientOrderId("entry-42"), "tp", 3) == "entry-42~tp3"


@settings(max_examples=300, deadline=None)
@given(parent=parent_ids, role=st.sampled_from(ROLES), attempt=st.integers(1, 10_000))
def test_child_id_is_deterministic_and_within_alpacas_limit(
    parent: ClientOrderId, role: str, attempt: int
) -> None:
    first = child_client_order_id(parent, role, attempt)
    assert first == child_client_order_id(parent, role, attempt)
    assert 0 < len(first) <= MAX_CLIENT_ORDER_ID_LEN
    assert validate_client_order_id(first) == first


def test_child_id_of_a_128_char_parent_is_hashed_within_the_limit() -> None:
    parent = ClientOrderId("p" * MAX_CLIENT_ORDER_ID_LEN)
    child = child_client_order_id(parent, "oco", 12)
    assert len(child) <= MAX_CLIENT_ORDER_ID_LEN
    assert child.endswith("oco12")


@settings(max_examples=300, deadline=None)
@given(parent=parent_ids)
def test_child_ids_differ_per_role_and_attempt(parent: ClientOrderId) -> None:
    ids = [child_client_order_id(parent, role, attempt) for role in ROLES for attempt in range(1, 6)]
    assert len(set(ids)) == len(ids)
    assert parent not in ids


def test_long_parents_sharing_a_prefix_get_distinct_children() -> None:
    a = ClientOrderId("x" * 127 + "a")
    b = ClientOrderId("x" * 127 + "b")
    assert child_client_order_id(a, "tp", 1) != child_client_order_id(b, "tp", 1)


def test_attempt_numbers_start_at_one() -> None:
    with pytest.raises(ValueError, match="attempt must be >= 1, was 0"):
        child_client_order_id(ClientOrderId("p"), "tp", 0)


@pytest.mark.parametrize(
    ("value", "problem"),
    [("", "must not be empty"), ("   ", "must not be empty"), ("x" * 129, "longer than 128")],
)
def test_invalid_client_order_ids_are_refused_with_the_reason(value: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        validate_client_order_id(value)
