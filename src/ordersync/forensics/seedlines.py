"""The first sight of a seed-format refusal line, read from its bytes when its body is Alpaca's own form.

`handler.LineHandler._seed` parses each distinct text of a plain-text refusal once and keeps it as a
template; a dense log has one or two distinct texts per parent (the error line, its DB-log copy), so that
first parse is most of the reading. For an ASCII line whose body has Alpaca's canonical layout
(`body.CANONICAL_BYTES_RE`; or that layout with the seed's stray quote after the code,
`body.STRAY_BYTES_RE`, then *repaired* as the general parser says) and nothing else to read around it
(no `key=value` tokens before the body of an error line), the template is made here from the bytes: no
decoding, no second search for the markers, no timestamp parsed (`_seed` reads the time). A body seen a
little earlier (the DB-log copy of an error line, a retry logged by another handler) is not even parsed
again: its bytes name its index. Every other line returns `None` and takes the general path
(`lines.parse_line`), which gives the same record for the lines taken here. Stdlib only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from ordersync.forensics.body import CANONICAL_BYTES_RE, STRAY_BYTES_RE, canonical_body
from ordersync.forensics.lines import (
    DB_MARK_B,
    DB_ORDER_MARK_B,
    ERROR_MARK_B,
    RAW_BODY_CHARS,
    SUBMIT_MARK_B,
    child_ref,
)
from ordersync.forensics.records import ErrorBody, Origin, Rejection

# (body index, origin slot, the record when its line context must be counted, repaired 0/1)
Entry = tuple[int, int, Rejection | None, int]
BODY_CACHE: Final = 4096  # bodies by their bytes; a DB-log copy follows its error line closely


class SeedBodies:
    """Templates of seed-format refusal lines made from their bytes; `register` is `body_slot`."""

    __slots__ = ("known", "register")

    def __init__(self, register: Callable[[Rejection], tuple[int, int]]) -> None:
        self.register = register
        self.known: dict[bytes, tuple[int, ErrorBody]] = {}

    def entry(self, raw: bytes) -> Entry | None:
        """The template of a seed-format line (its time already read), or `None`: parse it in full.

        `raw[16]` must be the `:` of the time, so the general parser reads a time there too.
        """
        if raw[16:17] != b":" or not raw.isascii() or SUBMIT_MARK_B in raw:
            return None
        at = raw.find(ERROR_MARK_B)
        if at >= 0:
            tail = at + len(ERROR_MARK_B)
            brace = raw.find(b"{", tail)
            if brace < 0 or raw.find(b"=", tail, brace) >= 0:  # tokens before the body: the parser
                return None
            return self._entry(raw, brace, Origin.ALPACA_LOG, None, None)
        at = raw.find(DB_MARK_B)
        if at < 0 or DB_ORDER_MARK_B not in raw:
            return None
        brace = raw.find(b"{", at + len(DB_MARK_B))
        if brace < 0:
            return None
        kind, number = child_ref(raw[:at].decode("ascii"))
        return self._entry(raw, brace, Origin.DB_LOG, kind, number)

    def _entry(
        self, raw: bytes, brace: int, origin: Origin, kind: str | None, number: int | None
    ) -> Entry | None:
        m = CANONICAL_BYTES_RE.match(raw, brace)
        repaired = m is None
        if m is None:  # the seed's stray quote after the code: read as the field extractor would
            m = STRAY_BYTES_RE.match(raw, brace)
            if m is None:
                return None
        text = m.group(0)
        known = self.known.get(text)
        if known is None:
            g = m.groups()
            related = g[5].decode("ascii") if g[5] is not None else None
            available, code, existing, held, message, symbol = (
                x.decode("ascii") for x in (g[0], g[1], g[2], g[3], g[4], g[6])
            )
            body = canonical_body(available, code, existing, held, message, related, symbol)
        else:
            body = known[1]
        r = Rejection(
            body=body,
            at=None,
            origin=origin,
            child_kind=kind,
            platform_order=number,
            repaired=repaired,
            raw_body=_as_written(raw, brace) if repaired else None,
        )
        if known is None:
            b, slot = self.register(r)
            if len(self.known) >= BODY_CACHE:
                self.known.clear()
            self.known[text] = (b, body)
        else:
            b, slot = known[0], 0 if origin is Origin.ALPACA_LOG else 1
        has_context = kind is not None or number is not None
        return b, slot, r if has_context else None, int(repaired)


def _as_written(raw: bytes, brace: int) -> str:
    # `lines._raw`: from the body's brace to the line's last closing brace, clipped for quoting
    text = raw[brace : raw.rfind(b"}", brace) + 1].decode("ascii")
    return text if len(text) <= RAW_BODY_CHARS else text[:RAW_BODY_CHARS] + "…"
