"""`ordersync sim serve` says on start, on stderr, what a person needs to use it: URLs, keys, clock, control
API and symbols. The test runs the console script, reads the banner, and uses the addresses it prints."""

from __future__ import annotations

import os
import re
import subprocess
import threading
from collections.abc import Iterator

import httpx
import pytest
from alpaca.trading.client import TradingClient

from ordersync.sim.process import end_process, ordersync_command

BANNER_TIMEOUT_S = 30.0


Served = list[tuple[subprocess.Popen[bytes], threading.Thread]]


def _serve(
    served: Served, *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], list[str]]:
    """Start `ordersync sim serve --port 0 ARGS` and collect its stderr lines as they come."""
    command = [*ordersync_command(), "sim", "serve", "--host", "127.0.0.1", "--port", "0", *args]
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("APCA_")}
    process = subprocess.Popen(
        command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=base_env | (env or {})
    )
    lines: list[str] = []

    def read() -> None:
        assert process.stderr is not None
        with process.stderr:
            for raw in process.stderr:
                lines.append(raw.decode(errors="replace").rstrip("\n"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    served.append((process, reader))
    return process, lines


def _banner(lines: list[str], process: subprocess.Popen[bytes]) -> str:
    """The banner, once its last line ("docs ...") has been printed."""
    done = threading.Event()

    def complete() -> bool:
        return any(line.strip().startswith("docs") for line in lines)

    deadline = threading.Timer(BANNER_TIMEOUT_S, done.set)
    deadline.start()
    try:
        while not complete() and not done.is_set() and process.poll() is None:
            done.wait(0.05)
    finally:
        deadline.cancel()
    assert complete(), f"no banner; stderr so far: {lines}"
    return "\n".join(lines)


@pytest.fixture
def served() -> Iterator[Served]:
    processes: Served = []
    yield processes
    for process, reader in processes:
        end_process(process)
        reader.join(timeout=10)  # it closes the pipe at end of file


def test_the_banner_shows_urls_keys_clock_control_api_and_symbols(
    served: Served,
) -> None:
    process, lines = _serve(served, "--clock", "stepped")
    banner = _banner(lines, process)

    base = re.search(r"REST base URL\s+(http://127\.0\.0\.1:(\d+))", banner)
    assert base is not None
    assert base.group(2) != "0"
    assert f"ws://127.0.0.1:{base.group(2)}/stream" in banner
    assert "any non-empty pair" in banner
    assert "stepped" in banner
    assert "now 2025-10-10T15:59:00" in banner
    assert f"{base.group(1)}/sim/" in banner
    assert "OKE 72.1 (NYSE)" in banner
    assert "PAA 17.3 (NASDAQ)" in banner
    # the printed addresses and keys work as printed
    assert httpx.get(f"{base.group(1)}/sim/clock", timeout=5).status_code == 200
    client = TradingClient("any-key", "any-secret", url_override=base.group(1))
    assert {a.symbol for a in client.get_all_assets()} >= {"OKE", "PAA"}


def test_the_banner_names_the_environment_keys_without_showing_them(
    served: Served,
) -> None:
    secrets = {"APCA_API_KEY_ID": "PK-SECRET-ID-123", "APCA_API_SECRET_KEY": "sk-very-secret"}
    process, lines = _serve(served, env=secrets)
    banner = _banner(lines, process)

    assert "only the pair in APCA_API_KEY_ID / APCA_API_SECRET_KEY" in banner
    assert "PK-SECRET-ID-123" not in banner
    assert "sk-very-secret" not in banner
    assert "real time" in banner
