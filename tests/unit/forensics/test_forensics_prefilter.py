"""The block reader and its marker prefilter see every line exactly once, wherever the blocks are cut.

The reader scans each read block where it lies and finds the lines that matter with `bytes.find` on a few
markers; the line cut by a block's end is completed by the next block. These tests cut the same logs at
many block sizes (so markers, timestamps, CRLF pairs and bodies straddle a boundary somewhere) and
compare the reports with the ones read in one block; then CRLF endings, a last line without a newline,
and gzip input, each against the plain file's report.
"""

from __future__ import annotations

import gzip
import os
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from forensics_support import LOGS, fixture_module

from ordersync.forensics import analyze_paths, inputs, reader, report_to_dict
from ordersync.forensics.inputs import Opened

GEN = fixture_module("make_format_logs")
FORMATS = ("text", "structlog", "loguru", "jsonlogger", "docker", "cri", "syslog3164", "syslog5424")
BLOCKS = (1, 2, 7, 64, 333, 4099)


def counted(path: Path) -> dict[str, Any]:
    """What the report says about the incident, without what names the file (size, gzip, encoding)."""
    report = analyze_paths([path])
    out = report_to_dict(report)
    out.pop("source", None)
    stats = report.stats
    assert stats is not None
    out.pop("parse_stats")  # names the file: its path, size, gzip flag
    out["notes"] = [note.split(": ", 1)[1] for note in out["notes"]]  # "<path>: <note>"
    formats = [f.formats for f in stats.files]
    out["stats"] = (stats.lines_read, stats.recognised, stats.unparseable, stats.repaired_bodies, formats)
    return out


def small_blocks(monkeypatch: pytest.MonkeyPatch, size: int) -> None:
    # the first block is the sniffing window: cut it as small as the rest
    monkeypatch.setattr(reader, "BLOCK_BYTES", size)
    monkeypatch.setattr(inputs, "SNIFF_BYTES", size)


@pytest.fixture(params=["seed_incident", *FORMATS])
def log(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    name = str(request.param)
    if name == "seed_incident":
        return LOGS / "seed_incident.log"
    return built(tmp_path, name)


def write_like(source: Path, target: Path, data: bytes) -> Path:
    """Write a variant of `source` with its modification time (syslog3164 takes its year from it)."""
    target.write_bytes(data)
    mtime = source.stat().st_mtime
    os.utime(target, (mtime, mtime))
    return target


def built(tmp_path: Path, fmt: str) -> Path:
    path = tmp_path / f"{fmt}.log"
    path.write_bytes(GEN.build(fmt))
    os.utime(path, (0, datetime(2025, 10, 11, 8, tzinfo=UTC).timestamp()))  # syslog3164 takes its year here
    return path


@pytest.mark.parametrize("size", BLOCKS)
def test_any_block_size_gives_the_report_of_one_block(
    log: Path, size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = counted(log)
    assert whole["summary"]["issues"] > 0  # the incident is there to be found
    small_blocks(monkeypatch, size)
    assert counted(log) == whole


@pytest.mark.parametrize("fmt", ["cri", "text"])
def test_gzip_crlf_and_a_missing_last_newline_together(fmt: str, tmp_path: Path) -> None:
    plain = built(tmp_path, fmt)
    whole = counted(plain)
    assert whole["summary"]["issues"] > 0
    data = plain.read_bytes().rstrip(b"\n").replace(b"\n", b"\r\n")
    odd = write_like(plain, tmp_path / "odd.log.gz", gzip.compress(data))
    got = counted(odd)
    assert (got["summary"], got["parents"], got["stats"]) == (
        whole["summary"],
        whole["parents"],
        whole["stats"],
    )


def test_a_marker_cut_at_every_offset_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the seed sample (two refusals) read in blocks of every size up to its length: each marker, each
    # timestamp and each body is cut at every one of its offsets by some block size
    whole = counted(LOGS / "seed_sample.log")
    size_of_log = len((LOGS / "seed_sample.log").read_bytes())
    for size in range(1, size_of_log + 2):
        small_blocks(monkeypatch, size)
        assert counted(LOGS / "seed_sample.log") == whole, size


@pytest.mark.parametrize("size", [3, 4099, 1 << 20])
def test_crlf_endings_count_as_lf_endings(
    log: Path, size: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    crlf = write_like(log, tmp_path / "crlf.log", log.read_bytes().replace(b"\n", b"\r\n"))
    whole = counted(log)
    small_blocks(monkeypatch, size)
    got = counted(crlf)
    assert got["summary"] == whole["summary"]
    assert got["parents"] == whole["parents"]
    assert got["stats"] == whole["stats"]


@pytest.mark.parametrize("size", [5, 4099, 1 << 20])
def test_a_last_line_without_newline_is_read(
    log: Path, size: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = log.read_bytes().rstrip(b"\n").split(b"\n")
    # the last refusal line moved to the end, without its newline: it must still count
    last = max(i for i, line in enumerate(lines) if b"40310000" in line)
    reordered = [*lines[:last], *lines[last + 1 :], lines[last]]
    with_newline = write_like(log, tmp_path / "with.log", b"\n".join(reordered) + b"\n")
    without = write_like(log, tmp_path / "without.log", b"\n".join(reordered))
    whole = counted(with_newline)
    small_blocks(monkeypatch, size)
    assert counted(without) == whole


@pytest.mark.parametrize("size", [13, 4099, 1 << 20])
def test_gzip_input_reads_as_the_plain_file(
    log: Path, size: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    packed = write_like(log, tmp_path / "log.gz", gzip.compress(log.read_bytes()))
    whole = counted(log)
    small_blocks(monkeypatch, size)
    assert counted(packed) == whole


class _Stream:
    """Just what `_chunks` reads from an input: the sniffed head, then `read(n)`."""

    def __init__(self, data: bytes, head: int) -> None:
        self.head, self._rest = data[:head], data[head:]

    def read(self, n: int) -> bytes:
        out, self._rest = self._rest[:n], self._rest[n:]
        return out


def spans(data: bytes, block: int) -> Iterator[tuple[bytes, bool]]:
    stream = cast(Opened, _Stream(data, block))
    for buffer, lo, hi, oversized in reader._chunks(stream):
        yield buffer[lo:hi], oversized


@pytest.mark.parametrize("seed", range(40))
def test_the_spans_are_the_input_cut_at_newlines(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(seed)
    alphabet = b"ab\r\n\n40310000|"
    data = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 400)))
    block = rng.randint(1, 50)
    monkeypatch.setattr(reader, "BLOCK_BYTES", block)
    got = list(spans(data, block))
    assert b"".join(part for part, _ in got) == data  # every byte once, in order
    assert all(part.endswith(b"\n") for part, _ in got[:-1])  # whole lines only
    assert not any(oversized for _, oversized in got)
    assert all(part for part, _ in got)  # no empty span


@pytest.mark.parametrize("block", [1, 9, 40, 57, 100])
def test_kubernetes_parts_are_never_cut_from_their_final_part(
    block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a CRI runtime writes a long line as `P` parts then an `F` part: a span never ends on a `P` part, so
    # the handler sees every part of a line together
    part = "2025-10-10T15:59:40.500000000Z stderr {} {}\n"
    data = "".join(
        part.format("P", 'Error submitting order to Alpaca: {"code":') + part.format("F", "40310000}")
        for _ in range(5)
    ).encode()
    monkeypatch.setattr(reader, "BLOCK_BYTES", block)
    got = list(spans(data, block))
    assert b"".join(x for x, _ in got) == data
    for x, _ in got:
        assert x.rstrip(b"\n").rsplit(b"\n", 1)[-1].split(b" ")[2] == b"F"


def test_an_oversized_line_comes_alone_cut_and_the_next_line_follows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader, "MAX_LINE_BYTES", 10)
    monkeypatch.setattr(reader, "BLOCK_BYTES", 4)  # the long line reaches the reader in pieces
    data = b"short\n" + b"x" * 35 + b"\nnext 40310000\n"
    got = list(spans(data, 4))
    assert (b"x" * 10, True) in got
    assert b"".join(part for part, oversized in got if not oversized) == b"short\nnext 40310000\n"
