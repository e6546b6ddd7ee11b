"""Classify Alpaca failures into the domain's BrokerError tree (docs/architecture.md §2, invariant 6).

Only this module knows Alpaca's codes; the engine reacts to the classification. Messages never carry
request headers, so API keys cannot leak through an error.
"""

from __future__ import annotations

import json
from typing import Any

import requests
from alpaca.common.exceptions import APIError

from ordersync.domain.errors import (
    BrokerError,
    BrokerUnavailable,
    DuplicateClientOrderId,
    InsufficientQty,
    OrderRefused,
    RateLimited,
)

INSUFFICIENT_QTY = 40310000
DUPLICATE_OR_INVALID = 40010001


def _body(error: APIError) -> dict[str, Any]:
    try:
        parsed = json.loads(str(error))
    except (json.JSONDecodeError, TypeError):
        return {"message": str(error)[:200]}
    return parsed if isinstance(parsed, dict) else {"message": str(parsed)[:200]}


MAX_RATE_LIMIT_WAIT_S = 60.0  # Alpaca's window is a minute; a reset further away is a broken header


def rate_headers(headers: Any) -> tuple[int | None, float | None]:
    """Return (``X-Ratelimit-Remaining``, ``X-Ratelimit-Reset`` as Unix seconds) from response headers.

    Either is None when absent or unreadable (header names are case-insensitive on a requests response).
    """
    if not headers:
        return None, None
    remaining: int | None
    reset: float | None
    try:
        remaining = int(headers["X-Ratelimit-Remaining"]) if "X-Ratelimit-Remaining" in headers else None
    except (TypeError, ValueError):
        remaining = None
    try:
        reset = float(headers["X-Ratelimit-Reset"]) if "X-Ratelimit-Reset" in headers else None
    except (TypeError, ValueError):
        reset = None
    return remaining, reset


def _retry_after(error: APIError, now_epoch_s: float) -> float | None:
    # Retry-After is a delay in seconds; X-Ratelimit-Reset is the Unix time the window resets
    # (docs/alpaca.md, 5). Both become a delay, bounded so a bogus header cannot park us for
    # years. The broker adapter replaces it with its budget's decision, which also weighs the remaining count.
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None) or {}
    try:
        if "Retry-After" in headers:
            delay = float(headers["Retry-After"])
        elif "X-Ratelimit-Reset" in headers:
            delay = float(headers["X-Ratelimit-Reset"]) - now_epoch_s
        else:
            return None
    except ValueError:
        return None
    return min(MAX_RATE_LIMIT_WAIT_S, max(0.0, delay))


def classify(error: Exception, now_epoch_s: float = 0.0) -> BrokerError:
    """Return the BrokerError for an exception raised by an alpaca-py call.

    ``now_epoch_s`` (the caller's clock, as Unix seconds) turns an ``X-Ratelimit-Reset`` time into a delay.
    """
    if isinstance(error, BrokerError):
        return error
    if isinstance(error, requests.Timeout | requests.ConnectionError):
        return BrokerUnavailable(f"no answer from the broker: {type(error).__name__}")
    if not isinstance(error, APIError):
        return BrokerUnavailable(f"unexpected broker failure: {type(error).__name__}: {error}"[:300])
    return _classify_api(error, now_epoch_s)


def _classify_api(error: APIError, now_epoch_s: float) -> BrokerError:
    status = error.status_code
    body = _body(error)
    code = body.get("code") if isinstance(body.get("code"), int) else None
    message = str(body.get("message", ""))
    kw: dict[str, Any] = {"status_code": status, "code": code, "body": body}
    text = f"{status} {code or ''} {message}".strip()
    if status == 429:
        return RateLimited(text, retry_after_s=_retry_after(error, now_epoch_s), **kw)
    if status is not None and status >= 500:
        return BrokerUnavailable(text, **kw)
    if status == 403 and code == INSUFFICIENT_QTY and ("qty" in message or "short sell" in message):
        return InsufficientQty(text, **kw)
    if status == 422 and "must be unique" in message:
        return DuplicateClientOrderId(text, **kw)
    if status == 401:
        return OrderRefused("401 unauthorized: check APCA_API_KEY_ID / APCA_API_SECRET_KEY", **kw)
    return OrderRefused(text, **kw)
