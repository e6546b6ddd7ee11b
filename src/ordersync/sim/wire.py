"""Alpaca's wire conventions: decimal strings, RFC 3339 `Z` timestamps, UUID ids and error bodies.

Alpaca returns numbers as JSON strings and alpaca-py sends them as JSON floats, so every number that enters
the simulator goes through `parse_decimal` (via `str`, never through float arithmetic) and every number that
leaves it goes through `fmt_decimal`. Timestamps always carry `Z`: alpaca-py turns a zone-less timestamp into
a naive datetime. `ApiError` carries an HTTP status and Alpaca's exact JSON body; the REST layer renders it
unchanged."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = [
    "ApiError",
    "JsonDict",
    "fmt_decimal",
    "fmt_opt_decimal",
    "fmt_time",
    "new_id",
    "parse_decimal",
]

JsonDict = dict[str, Any]

# Alpaca's 8-digit error codes embed the HTTP status (see docs/alpaca.md §4).
CODE_BAD_REQUEST = 40010001
CODE_FORBIDDEN = 40310000
CODE_NOT_FOUND = 40410000
CODE_UNPROCESSABLE = 42210000

# No price, quantity or duration the simulator takes comes near 1e15 or 1e-12; beyond 1e15 rounding to cents
# or to 9 decimals would leave Decimal's 28-digit context, so such input is refused as invalid.
MAX_EXPONENT = 14  # anything from 1e15 up
MIN_EXPONENT = -12  # anything below 1e-12 (quantities have 9 decimals, prices 4)


class ApiError(Exception):
    """An Alpaca error response: HTTP status plus the JSON body exactly as Alpaca sends it."""

    def __init__(self, status: int, body: JsonDict) -> None:
        super().__init__(f"{status} {body}")
        self.status = status
        self.body = body

    @classmethod
    def unprocessable(cls, message: str, code: int = CODE_BAD_REQUEST, **extra: Any) -> ApiError:
        """A 422; Alpaca sends 40010001 for bad input and 42210000 for business-rule refusals."""
        return cls(422, {"code": code, "message": message, **extra})

    @classmethod
    def bad_body(cls) -> ApiError:
        """A 400 for a body that is not JSON (or not the JSON object expected)."""
        return cls(400, {"code": 40010000, "message": "request body format is invalid"})

    @classmethod
    def forbidden(cls, message: str, **extra: Any) -> ApiError:
        return cls(403, {"code": CODE_FORBIDDEN, "message": message, **extra})

    @classmethod
    def not_found(cls, message: str = "order not found") -> ApiError:
        return cls(404, {"code": CODE_NOT_FOUND, "message": message})


def new_id() -> str:
    """Return a fresh UUID string (order ids, execution ids, generated client_order_ids)."""
    return str(uuid.uuid4())


def parse_decimal(value: object, field: str) -> Decimal:
    """Parse a JSON number or numeric string as Decimal without float rounding.

    Raises:
        ApiError: 422 40010001 naming the field when the value is not a finite number.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ApiError.unprocessable(f"invalid {field}")
    try:
        result = Decimal(str(value).strip())
    except InvalidOperation:
        raise ApiError.unprocessable(f"invalid {field}") from None
    # adjusted() reads the exponent without arithmetic: abs() of a million-digit number would overflow
    if not result.is_finite() or (result != 0 and not MIN_EXPONENT <= result.adjusted() <= MAX_EXPONENT):
        raise ApiError.unprocessable(f"invalid {field}")
    return result


def fmt_decimal(value: Decimal) -> str:
    """Render a Decimal as Alpaca does: plain notation, no trailing zeros ("9", "48.1", "0")."""
    if value == 0:
        return "0"
    return format(value.normalize(), "f")


def fmt_opt_decimal(value: Decimal | None) -> str | None:
    return None if value is None else fmt_decimal(value)


def fmt_time(t: datetime | None) -> str | None:
    """Render an aware datetime as RFC 3339 with microseconds and `Z`."""
    if t is None:
        return None
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def asset_id_for(symbol: str) -> str:
    """Return a stable asset UUID for a symbol, so runs of the same scenario agree."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"ordersync-sim/asset/{symbol}"))
