"""Find the lines of a block that can matter, at C speed, without looking at any other line.

Every line the parser can use carries one of three literal markers: "ubmitt" (`Successfully submitted
order`, `Error submitting order`, a structured "submitted order" message), "| Error:" (DB-log rows), or
the refusal code `40310000` (a structured line whose error body is an object beside the message). Each is
searched over the whole block with `bytes.find`; the cost of a search is what makes a dense log slow, so
two of the three are avoided when that cannot change the result:

- "| Error:" is found through its `|`, with `memchr` (one `bytes.find` of one byte), at several times the
  speed of a substring search; a block where `|` is common (more than `_PIPE_MISSES` bars that begin no
  marker) goes back to the substring search for the rest of the block;
- `40310000` alone matters only on a line with a `{` (a structured body: a line without one parses to
  nothing, `lines.parse_message`), or on a Kubernetes line whose earlier `P` parts hold the `{`. So when
  every `{` of the block is on a line found already and none of those lines is a Kubernetes one, the
  search for the code is skipped: in the seed's plain-text format (where `40310000` sits on the
  `Error submitting order` lines) that is every block.

Stdlib only.
"""

from __future__ import annotations

from typing import Final

SUBMIT_MARKER: Final = b"ubmitt"
DB_MARKER: Final = b"| Error:"
CODE_MARKER: Final = b"40310000"
MARKERS: Final = (SUBMIT_MARKER, DB_MARKER, CODE_MARKER)
_PIPE_MISSES: Final = 64


def marked_spans(chunk: bytes, lo: int, hi: int) -> list[tuple[int, int]]:
    """The (start, end) of every line in `chunk[lo:hi]` that carries a marker, in order."""
    found: dict[int, int] = {}
    _add_lines(chunk, lo, hi, SUBMIT_MARKER, found, lo)
    _add_db_lines(chunk, lo, hi, found)
    spans = sorted(found.items()) if len(found) > 1 else list(found.items())
    if _code_may_matter(chunk, lo, hi, spans):
        _add_lines(chunk, lo, hi, CODE_MARKER, found, lo)
        spans = sorted(found.items()) if len(found) > 1 else list(found.items())
    return spans


def _add_lines(chunk: bytes, lo: int, hi: int, marker: bytes, found: dict[int, int], at: int) -> None:
    find, rfind = chunk.find, chunk.rfind
    i = find(marker, at, hi)
    while i >= 0:
        start = rfind(b"\n", lo, i) + 1 or lo
        end = find(b"\n", i, hi)
        if end < 0:
            end = hi
        found[start] = end
        i = find(marker, end, hi)


def _add_db_lines(chunk: bytes, lo: int, hi: int, found: dict[int, int]) -> None:
    # `|` by memchr, then the marker checked where it stands
    find, rfind, startswith = chunk.find, chunk.rfind, chunk.startswith
    misses = 0
    i = find(b"|", lo, hi)
    while i >= 0:
        if startswith(DB_MARKER, i, hi):
            start = rfind(b"\n", lo, i) + 1 or lo
            end = find(b"\n", i, hi)
            if end < 0:
                end = hi
            found[start] = end
            i = find(b"|", end, hi)
            continue
        misses += 1
        if misses > _PIPE_MISSES:  # bars are common here: the substring search is faster
            _add_lines(chunk, lo, hi, DB_MARKER, found, i)
            return
        i = find(b"|", i + 1, hi)


def _code_may_matter(chunk: bytes, lo: int, hi: int, spans: list[tuple[int, int]]) -> bool:
    """False when no line the code alone would add can parse to anything (see the module's docstring)."""
    find = chunk.find  # one byte: memchr, several times faster than counting
    pos = lo
    for start, end in spans:
        if find(b"{", pos, start) >= 0 or chunk[start + 10 : start + 11] == b"T":  # T: maybe Kubernetes
            return True
        pos = end
    return find(b"{", pos, hi) >= 0
