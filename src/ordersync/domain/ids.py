"""Typed identifiers and the deterministic client_order_id of dependent orders.

A child's ``client_order_id`` is a pure function of its parent and its attempt number, so the id is
known (and journaled) before the POST: a timed-out submit is settled by looking that id up, and a retry
can never create a second order (docs/architecture.md §2, invariant 3; Alpaca rejects a reused id with
422 40010001).
"""

from __future__ import annotations

import hashlib
from typing import NewType

ClientOrderId = NewType("ClientOrderId", str)
BrokerOrderId = NewType("BrokerOrderId", str)
ExecutionId = NewType("ExecutionId", str)
Symbol = NewType("Symbol", str)

# Alpaca's current limit (docs/alpaca.md, 4.1: 128 per current guidance, 48 in 2022 docs).
MAX_CLIENT_ORDER_ID_LEN = 128
_CHILD_SEP = "~"


def child_client_order_id(parent: ClientOrderId, role: str, attempt: int) -> ClientOrderId:
    """Return the client_order_id of a parent's ``attempt``-th child of ``role``.

    Readable (``<parent>~tp3``) when it fits Alpaca's limit, else a stable hash of the same inputs.
    """
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, was {attempt}")
    readable = f"{parent}{_CHILD_SEP}{role}{attempt}"
    if len(readable) <= MAX_CLIENT_ORDER_ID_LEN:
        return ClientOrderId(readable)
    digest = hashlib.sha256(readable.encode()).hexdigest()[:40]
    return ClientOrderId(f"os{_CHILD_SEP}{digest}{_CHILD_SEP}{role}{attempt}")


def validate_client_order_id(value: str) -> ClientOrderId:
    """Return ``value`` as a ClientOrderId, or raise ValueError if Alpaca would refuse it."""
    if not value or not value.strip():
        raise ValueError("client_order_id must not be empty")
    if len(value) > MAX_CLIENT_ORDER_ID_LEN:
        raise ValueError(f"client_order_id longer than {MAX_CLIENT_ORDER_ID_LEN} characters: {len(value)}")
    return ClientOrderId(value)
