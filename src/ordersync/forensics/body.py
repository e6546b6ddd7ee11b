"""Read an Alpaca error body out of a log line, tolerating the malformed JSON real logs contain.

The seed's own sample has `"code":40310000","existing_qty"` (a stray quote), so a strict `json` parse is
only the first attempt. `JSONDecoder.raw_decode` reads the object and ignores what follows it (a DB-log
row ends in `')]`). If that fails, a field extractor reads each known field with its own small regex over
the text; such a body is reported as *repaired*. The regexes are anchored on literal key names and use
possessive quantifiers, so they cannot backtrack catastrophically on hostile input. Stdlib only.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Final

from ordersync.forensics.records import ErrorBody

_DECODER: Final = json.JSONDecoder()
_MAX_FIELD_CHARS: Final = 200
_MAX_RELATED: Final = 16

_CODE_RE: Final = re.compile(r'"code"\s*+:\s*+"?+(\d{1,12}+)(?!\d)')
_MESSAGE_RE: Final = re.compile(r'"message"\s*+:\s*+"((?:[^"\\]++|\\.)*+)"')
_SYMBOL_RE: Final = re.compile(r'"symbol"\s*+:\s*+"([^"]{0,200}+)"')
_RELATED_RE: Final = re.compile(r'"related_orders"\s*+:\s*+\[([^\]]{0,4000}+)\]')
_QUOTED_RE: Final = re.compile(r'"([^"]{1,128}+)"')
# Alpaca's own compact form of a 40310000 body (keys sorted, no spaces, quantities as strings): read in one
# match. Only values without quotes, backslashes or control characters qualify, so every field is exactly
# what `json` would decode; anything else (another order of keys, escapes, numbers) takes the general path.
_PLAIN: Final = r'[^"\\\x00-\x1f]*+'
_CANONICAL_RE: Final = re.compile(
    rf'\{{"available":"({_PLAIN})","code":(0|[1-9]\d{{0,17}}),"existing_qty":"({_PLAIN})",'
    rf'"held_for_orders":"({_PLAIN})","message":"({_PLAIN})","related_orders":\[(?:"({_PLAIN})")?\],'
    rf'"symbol":"({_PLAIN})"\}}'
)
# the same pattern over undecoded ASCII bytes (the reader's first look at a seed-format line, `seedlines.py`):
# on ASCII text it matches where the text pattern does, with the same groups
CANONICAL_BYTES_RE: Final = re.compile(_CANONICAL_RE.pattern.encode("ascii"))
# the same layout with the seed's stray quote after the code (`"code":40310000",`): not JSON, so the field
# extractor would read it; this gives its result when every quantity is a plain number it reads whole, the
# symbol fits its 200 characters and the id its 128 (`_extract` and its regexes decide everything else)
_NUMBER: Final = r"[-+]?\d{1,18}(?:\.\d{1,18})?"
_STRAY_RE: Final = re.compile(
    rf'\{{"available":"({_NUMBER})","code":(\d{{1,12}})","existing_qty":"({_NUMBER})",'
    rf'"held_for_orders":"({_NUMBER})","message":"({_PLAIN})","related_orders":\[(?:"([^"\\\x00-\x1f]{{1,128}})")?\],'
    rf'"symbol":"([^"\\\x00-\x1f]{{0,200}})"\}}'
)
STRAY_BYTES_RE: Final = re.compile(_STRAY_RE.pattern.encode("ascii"))  # as CANONICAL_BYTES_RE
_QTY_RES: Final = {
    name: re.compile(rf'"{name}"\s*+:\s*+"?+([-+]?\d{{1,18}}+(?:\.\d{{1,18}}+)?+)(?![\d.])')
    for name in ("available", "existing_qty", "held_for_orders")
}


@lru_cache(maxsize=4096)
def parse_error_body(text: str) -> tuple[ErrorBody, bool] | None:
    """Parse the first `{...}` in `text`; return the body and whether it had to be repaired.

    Returns `None` when there is no object or neither a code nor a message can be read from it. Cached:
    a refused child is retried every polling cycle with the very same body text.
    """
    start = text.find("{")
    if start < 0:
        return None
    canonical = _CANONICAL_RE.match(text, start)
    if canonical is not None:
        return _canonical(canonical), False
    body = _strict(text, start)
    if body is not None:
        return body, False
    stray = _STRAY_RE.match(text, start)
    if stray is not None:
        return _canonical(stray), True
    body = _extract(text[start:])
    return (body, True) if body is not None else None


def _canonical(m: re.Match[str]) -> ErrorBody:
    return canonical_body(*m.groups())


def canonical_body(
    available: str, code: str, existing: str, held: str, message: str, related: str | None, symbol: str
) -> ErrorBody:
    """The body the canonical pattern's groups describe: the values `_from_mapping` gives for it decoded."""
    return ErrorBody(
        code=_code(int(code)),
        message=sys.intern(_clip(message)),
        symbol=_intern(_clip(symbol)) if symbol else None,
        available=_qty(available[:40]),
        existing_qty=_qty(existing[:40]),
        held_for_orders=_qty(held[:40]),
        related_orders=(_intern(_clip(related)),) if related else (),
    )


def _strict(text: str, start: int) -> ErrorBody | None:
    try:
        obj, _ = _DECODER.raw_decode(text, start)
    except (ValueError, RecursionError):  # RecursionError: deeply nested garbage
        return None
    return _from_mapping(obj) if isinstance(obj, dict) else None


def _from_mapping(obj: Mapping[str, object]) -> ErrorBody | None:
    code = _as_code(obj.get("code"))
    message = obj.get("message")
    if code is None and not isinstance(message, str):
        return None
    related = obj.get("related_orders")
    return ErrorBody(
        code=code,
        message=sys.intern(_clip(message)) if isinstance(message, str) else "",
        symbol=_as_text(obj.get("symbol")),
        available=_as_qty(obj.get("available")),
        existing_qty=_as_qty(obj.get("existing_qty")),
        held_for_orders=_as_qty(obj.get("held_for_orders")),
        related_orders=_as_ids(related) if isinstance(related, list) else (),
    )


def _extract(text: str) -> ErrorBody | None:
    code_m = _CODE_RE.search(text)
    message_m = _MESSAGE_RE.search(text)
    if code_m is None and message_m is None:
        return None
    symbol_m = _SYMBOL_RE.search(text)
    related_m = _RELATED_RE.search(text)
    quantities = {name: _match_qty(rx, text) for name, rx in _QTY_RES.items()}
    return ErrorBody(
        code=_code(int(code_m.group(1))) if code_m else None,
        message=sys.intern(_unescape(message_m.group(1))) if message_m else "",
        symbol=_as_text(symbol_m.group(1)) if symbol_m else None,
        related_orders=_as_ids(_QUOTED_RE.findall(related_m.group(1))) if related_m else (),
        **quantities,
    )


def _match_qty(rx: re.Pattern[str], text: str) -> Decimal | None:
    m = rx.search(text)
    return _as_qty(m.group(1)) if m else None


def _as_code(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return _code(value)
    if isinstance(value, str) and value.isdigit() and len(value) <= 12:
        return _code(int(value))
    return None


_CODES: dict[int, int] = {}


def _code(value: int) -> int:
    # one int object per distinct code: 40310000 is on nearly every body (28 bytes each otherwise)
    shared = _CODES.get(value)
    if shared is None:
        if len(_CODES) >= 4096:
            return value
        shared = _CODES[value] = value
    return shared


def _as_text(value: object) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    return _intern(_clip(value))


def _as_qty(value: object) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    return _qty(str(value)[:40])


def _as_ids(values: list[object]) -> tuple[str, ...]:
    return tuple(_intern(_clip(v)) for v in values[:_MAX_RELATED] if isinstance(v, str) and v)


@lru_cache(maxsize=4096)
def _qty(text: str) -> Decimal | None:
    # cached: real logs repeat the same few quantities millions of times, and equal Decimals share memory
    try:
        qty = Decimal(text)
    except InvalidOperation:
        return None
    return qty if qty.is_finite() else None


def _intern(text: str) -> str:
    # ids and symbols repeat on every retry: keep one copy of each
    return sys.intern(text)


def _unescape(raw: str) -> str:
    try:
        value = json.loads(f'"{raw}"')
    except ValueError:
        return _clip(raw)
    return _clip(value) if isinstance(value, str) else _clip(raw)


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_FIELD_CHARS else text[:_MAX_FIELD_CHARS] + "…"
