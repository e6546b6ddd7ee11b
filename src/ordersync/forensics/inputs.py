"""Open one input (a file or stdin), decode it to UTF-8 bytes, and say what it is before it is scanned.

Per input, from its first bytes (docs/forensics.md, "Inputs"):

- gzip is detected by its magic bytes, not its name; a UTF-16 or UTF-8 byte-order mark is honoured (UTF-16
  is transcoded to UTF-8 block by block, so the scanner only ever sees UTF-8);
- an input that starts with a JSON array of objects is an export from the broker (`exports.py`), not a log;
- `sniff_problem` names what makes an input unreadable (empty, binary, UTF-16 without a byte-order mark);
  the reader raises it only when nothing in the input could be read;
- `fingerprint` (device and inode for a file, else a hash of the first MiB and the size) lets the reader
  skip an input given twice.

Raises `LogInputError` (one line, names the input) for what cannot be opened at all. Stdlib only.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Final

from ordersync.forensics.errors import LogInputError

STDIN: Final = Path("-")
SNIFF_BYTES: Final = 1 << 16
_GZIP_MAGIC: Final = b"\x1f\x8b"
_BOMS: Final = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
Read = Callable[[int], bytes]


@dataclass(slots=True)
class Opened:
    """An input ready to scan: `read(n)` returns UTF-8 bytes; `head` is what sniffing already consumed."""

    name: str
    path: Path
    raw: BinaryIO | _Peekable
    read: Read
    head: bytes
    gzip: bool
    encoding: str
    size: int
    mtime: datetime | None
    fingerprint: tuple[object, ...]

    def tell(self) -> int:
        try:
            return self.raw.tell()
        except (OSError, ValueError):
            return 0

    def close(self) -> None:
        if self.raw is not sys.stdin.buffer:
            self.raw.close()


def open_input(path: Path) -> Opened:
    """Open a path (or stdin for `-`), detect gzip and the encoding, and read the first block."""
    raw, size, mtime, ident = _open_raw(path)
    try:
        magic = _peek(raw, 2)
        is_gzip = magic == _GZIP_MAGIC
        # read1 on gzip: a stream cut short loses only the last chunk, not everything in a 1 MiB read
        read: Read = gzip.GzipFile(fileobj=raw, mode="rb").read1 if is_gzip else raw.read  # type: ignore[arg-type]
        first = _read_some(read, path)
        read, first, encoding = _decoded(read, first)
    except BaseException:
        raw.close()
        raise
    fingerprint = ident or ("content", hashlib.blake2b(first[: 1 << 20], digest_size=16).digest(), size)
    return Opened(str(path), path, raw, read, first, is_gzip, encoding, size, mtime, fingerprint)


def _open_raw(path: Path) -> tuple[BinaryIO | _Peekable, int, datetime | None, tuple[object, ...] | None]:
    if path == STDIN:
        return _Peekable(sys.stdin.buffer), 0, None, None
    try:
        if not path.is_file():
            raise LogInputError(path, "no such file" if not path.exists() else "not a regular file")
        st = path.stat()
        raw = path.open("rb")
    except OSError as e:
        raise LogInputError(path, e.strerror or type(e).__name__) from e
    mtime = datetime.fromtimestamp(st.st_mtime, tz=UTC)
    return raw, st.st_size, mtime, ("file", st.st_dev, st.st_ino)


class _Peekable:
    """stdin with the few bytes sniffing looked at put back in front (stdin cannot seek)."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream, self._back, self._pos = stream, b"", 0

    def peek(self, n: int) -> bytes:
        while len(self._back) < n and (more := self._stream.read(n - len(self._back))):
            self._back += more
        return self._back[:n]

    def read(self, n: int = -1) -> bytes:
        if self._back:
            out, self._back = self._back[:n] if n >= 0 else self._back, self._back[n:] if n >= 0 else b""
            self._pos += len(out)
            return out
        data = self._stream.read(n)
        self._pos += len(data)
        return data

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        """stdin stays open."""


def _peek(raw: BinaryIO | _Peekable, n: int) -> bytes:
    if isinstance(raw, _Peekable):
        return raw.peek(n)
    head = raw.read(n)
    raw.seek(0)
    return head


def _read_some(read: Read, path: Path) -> bytes:
    # a pipe or a gzip member may return less than asked: fill the sniffing window (or reach the end)
    parts: list[bytes] = []
    size = 0
    try:
        while size < SNIFF_BYTES and (part := read(SNIFF_BYTES - size)):
            parts.append(part)
            size += len(part)
    except Exception as e:  # OSError, EOFError, zlib.error and friends on a corrupt gzip header
        raise LogInputError(path, f"cannot read: {e}") from e
    return b"".join(parts)


def _decoded(read: Read, first: bytes) -> tuple[Read, bytes, str]:
    for bom, encoding in _BOMS:
        if first.startswith(bom):
            if encoding == "utf-8-sig":
                return read, first[len(bom) :], "utf-8 (BOM)"
            return (*_transcoding(read, first[len(bom) :], encoding), encoding)
    return read, first, "utf-8"


def _transcoding(read: Read, first: bytes, encoding: str) -> tuple[Read, bytes]:
    # one decoder for the whole stream, so a character split across two reads is kept whole
    decoder = codecs.getincrementaldecoder(encoding)("replace")

    def transcoded(n: int) -> bytes:
        while True:
            data = read(n)
            out = decoder.decode(data, final=not data).encode("utf-8")
            if out or not data:
                return out

    return transcoded, decoder.decode(first).encode("utf-8")


def sniff_problem(head: bytes) -> str | None:
    """Why the first bytes of an input are not a readable log, or `None` when they look like text."""
    if not head.strip():
        return "empty input: nothing to analyze"
    sample = head[:SNIFF_BYTES]
    nuls = sample.count(0)
    if nuls:
        even, odd = sample[0::2].count(0), sample[1::2].count(0)
        if nuls > len(sample) // 4 and max(even, odd) > 0.9 * nuls:
            return "looks like UTF-16 text without a byte-order mark: re-encode it as UTF-8"
        return "binary data, not a text log"
    text = sample.decode("utf-8", "replace")
    bad = text.count("\ufffd") + sum(1 for c in text if c < " " and c not in "\t\r\n\f\v")
    if bad > len(text) // 10:
        return "binary data, not a text log"
    return None


def looks_like_export(head: bytes) -> bool:
    """True when the input starts with a JSON array of objects (or an empty array)."""
    text = head.lstrip()
    if not text.startswith(b"["):
        return False
    rest = text[1:].lstrip()
    return rest[:1] in (b"{", b"]")
