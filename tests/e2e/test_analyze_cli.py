"""`ordersync analyze` as a process: exit codes 0/1/2 (docs/forensics.md), stdin, every output format."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

LOGS = Path(__file__).resolve().parents[1] / "fixtures" / "logs"
CLEAN = (
    "2025-10-10 15:59:16,078 - AlpacaAccount - INFO - Successfully submitted order to Alpaca: "
    "broker_order_id=P1\n"
)


def analyze(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "ordersync", "analyze", *args],
        input=stdin,
        capture_output=True,
        timeout=120,
        check=False,
    )


def test_exit_0_when_no_refusal(tmp_path: Path) -> None:
    log = tmp_path / "clean.log"
    log.write_text(CLEAN)
    result = analyze(str(log))
    assert result.returncode == 0, result.stderr
    assert b"No `40310000` refusals were found" in result.stdout


@pytest.mark.parametrize("fmt", ["md", "json", "html"])
def test_exit_1_when_refusals_are_found_in_every_format(fmt: str) -> None:
    result = analyze(str(LOGS / "seed_incident.log"), "--format", fmt)
    assert result.returncode == 1, result.stderr
    assert result.stderr == b""
    if fmt == "json":
        assert json.loads(result.stdout)["summary"]["issues"] == 21
    elif fmt == "html":
        assert result.stdout.count(b"<svg") == 13
    else:
        assert (
            b"| 5dfdb853-25b2-484d-9d97-914c82e8120c | OKE | 15:59:16 | 16:02:40 | 3.4 min | 1 |"
            in result.stdout
        )


def test_stdin_gzip_is_read_like_a_file() -> None:
    data = gzip.compress((LOGS / "seed_incident.log").read_bytes())
    result = analyze("-", "--format", "json", stdin=data)
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert (report["summary"]["issues"], report["parse_stats"]["files"][0]["gzip"]) == (21, True)


@pytest.mark.parametrize(
    ("args", "stdin", "expected"),
    [
        (["--still-failing-hours", "nan", "LOG"], None, "--still-failing-hours must be a finite number"),
        (["--still-failing-hours", "1e999", "LOG"], None, "--still-failing-hours must be a finite number"),
        (["--still-failing-hours", "soon", "LOG"], None, "--still-failing-hours must be a finite number"),
        (["--format", "pdf", "LOG"], None, "--format must be md or json or html"),
        (["-"], b"", "empty input"),
        (["-"], bytes(range(256)) * 64, "binary data"),
        (["-"], "2025-10-10 a log line\n".encode("utf-16-le") * 40, "UTF-16 text without a byte-order mark"),
        (["/nonexistent/app.log"], None, "no such file"),
    ],
    ids=["nan", "inf", "word", "format", "empty", "binary", "utf16", "missing"],
)
def test_exit_2_with_one_line(args: list[str], stdin: bytes | None, expected: str) -> None:
    args = [str(LOGS / "seed_sample.log") if a == "LOG" else a for a in args]
    result = analyze(*args, stdin=stdin)
    err = result.stderr.decode()
    assert result.returncode == 2
    assert expected in err
    assert len(err.strip().splitlines()) == 1
    assert result.stdout == b""


def test_verify_without_keys_is_exit_2_naming_the_variables() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("APCA_")}
    result = subprocess.run(
        [sys.executable, "-m", "ordersync", "analyze", str(LOGS / "seed_sample.log"), "--verify"],
        capture_output=True,
        timeout=120,
        check=False,
        env=env,
    )
    err = result.stderr.decode()
    assert result.returncode == 2
    assert "APCA_API_KEY_ID" in err
    assert len(err.strip().splitlines()) == 1


def test_json_written_from_the_spooled_rows_is_the_rendered_report() -> None:
    # the CLI writes `parents` from rows spooled while the report was built, not from a second pass
    from ordersync.forensics import analyze_paths, render_json

    log = LOGS / "seed_incident.log"
    result = analyze(str(log), "--format", "json")
    assert result.stdout.decode() == render_json(analyze_paths([log]))
