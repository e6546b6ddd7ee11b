"""What the simulator counts, for the control API (`GET /sim/state`), the demo summary and chaos checks.

Requests per endpoint (route template, e.g. `POST /v2/orders`), responses per status code, refusals per
Alpaca code and per message (numbers in parentheses stripped, so every "insufficient qty available for order"
counts under one key), every injected fault by kind, and rate-limit refusals. Thread-safe: the REST loop, the
stream hub and the ticker all count."""

from __future__ import annotations

import re
import threading
from collections import Counter

from .wire import JsonDict

__all__ = ["Counters"]

_PARENTHESIZED = re.compile(r"\s*\([^)]*\)")


class Counters:
    """Thread-safe tallies of the simulator's traffic and refusals."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[str] = Counter()
        self._responses: Counter[str] = Counter()
        self._by_code: Counter[str] = Counter()
        self._by_message: Counter[str] = Counter()
        self._faults: Counter[str] = Counter()
        self._rate_limited = 0

    def request(self, endpoint: str) -> None:
        with self._lock:
            self._requests[endpoint] += 1

    def response(self, status: int) -> None:
        with self._lock:
            self._responses[str(status)] += 1

    def rejection(self, status: int, body: JsonDict) -> None:
        code = body.get("code", status)
        message = _PARENTHESIZED.sub("", str(body.get("message", "")))
        with self._lock:
            self._by_code[str(code)] += 1
            self._by_message[f"{code} {message}"] += 1

    def fault(self, kind: str) -> None:
        with self._lock:
            self._faults[kind] += 1

    def rate_limited(self) -> None:
        with self._lock:
            self._rate_limited += 1

    def snapshot(self) -> JsonDict:
        with self._lock:
            return {
                "requests": dict(self._requests),
                "responses": dict(self._responses),
                "rejections": {"by_code": dict(self._by_code), "by_message": dict(self._by_message)},
                "faults": dict(self._faults),
                "rate_limited": self._rate_limited,
            }
