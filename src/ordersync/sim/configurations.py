"""GET/PATCH /v2/account/configurations: the account's settings, stored and returned as Alpaca does.

PATCH changes only the fields it names (a `null` leaves a field as it is: alpaca-py's
`set_account_configurations` sends every field of its model, unset ones as null) and answers the whole
configuration. A wrong type or value is refused 422 40010001 naming the field; unknown fields are ignored.

`dtbp_check` and `pdt_check` were removed from Alpaca's responses on 2026-07-06 (FINRA's intraday-margin
change; alpaca-py 0.44 makes them optional), so they are accepted on PATCH, validated, and never returned.
[sim limitation] The settings are stored only: `suspend_trade`, `no_shorting` and `max_margin_multiplier`
do not (yet) change which orders the exchange accepts (docs/simulator.md, "Known differences")."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from .wire import ApiError, JsonDict

__all__ = ["AccountConfigurations"]

_DEFAULTS: JsonDict = {
    "trade_confirm_email": "all",
    "suspend_trade": False,
    "no_shorting": False,
    "fractional_trading": True,
    "max_margin_multiplier": "1",
    "ptp_no_exception_entry": False,
    "max_options_trading_level": 0,
}
_MARGIN_MULTIPLIERS = ("1", "2", "3", "4")


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError
    return value


def _one_of(*allowed: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in allowed:
            raise TypeError
        return str(value)

    return check


def _multiplier(value: Any) -> str:
    # alpaca-py's model types it as a string; a JSON number is accepted too
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise TypeError
    text = str(value)
    text = text[:-2] if text.endswith(".0") else text
    if text not in _MARGIN_MULTIPLIERS:
        raise TypeError
    return text


def _options_level(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 3:
        raise TypeError
    return value


_VALIDATORS: dict[str, Callable[[Any], Any]] = {
    "trade_confirm_email": _one_of("all", "none"),
    "suspend_trade": _bool,
    "no_shorting": _bool,
    "fractional_trading": _bool,
    "max_margin_multiplier": _multiplier,
    "ptp_no_exception_entry": _bool,
    "max_options_trading_level": _options_level,
}
_ACCEPTED_NOT_RETURNED: dict[str, Callable[[Any], Any]] = {
    "dtbp_check": _one_of("both", "entry", "exit"),
    "pdt_check": _one_of("both", "entry", "exit"),
}


class AccountConfigurations:
    """The stored configuration of the one simulated account; thread-safe."""

    def __init__(self, **initial: Any) -> None:
        self._lock = threading.Lock()
        self._values: JsonDict = dict(_DEFAULTS)
        if initial:
            self.patch(initial)

    def get(self) -> JsonDict:
        with self._lock:
            return dict(self._values)

    def patch(self, body: object) -> JsonDict:
        """Apply the fields `body` names; return the whole configuration.

        Raises:
            ApiError: 400 when the body is not a JSON object, 422 40010001 naming a bad field.
        """
        if not isinstance(body, dict):
            raise ApiError.bad_body()
        changes: JsonDict = {}
        for field, validate in (_VALIDATORS | _ACCEPTED_NOT_RETURNED).items():
            value = body.get(field)
            if value is None:
                continue
            try:
                checked = validate(value)
            except TypeError:
                raise ApiError.unprocessable(f"invalid {field}") from None
            if field in _VALIDATORS:
                changes[field] = checked
        with self._lock:
            self._values.update(changes)
            return dict(self._values)
