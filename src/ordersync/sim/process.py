"""Run `ordersync sim serve` in a process of its own, as the chaos driver and the end-to-end tests do.

They reach it only over HTTP and websocket, exactly as an engine reaches Alpaca, so a crash of the process
under test can never take the broker's books with it. Starting one has two traps this module handles once:
the free port probed here may be taken before the simulator binds it (another port is tried), and the
process is up some time before it answers (wait until ``/sim/clock`` does).
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

__all__ = ["end_process", "free_port", "ordersync_command", "start_simulator_process"]

STARTUP_TIMEOUT_S = 30.0
PORT_ATTEMPTS = 3


def ordersync_command() -> list[str]:
    """The console script of this interpreter's environment; ``python -m ordersync`` if it has none."""
    script = Path(sys.executable).with_name("ordersync")
    if script.exists():
        return [str(script)]
    found = shutil.which("ordersync")
    return [found] if found else [sys.executable, "-m", "ordersync"]


def free_port() -> int:
    """A loopback port free at the time of asking (another process may take it before it is bound)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_simulator_process(
    scenario: Path, *, clock: str, log_path: Path, env: Mapping[str, str]
) -> tuple[subprocess.Popen[bytes], int]:
    """Start `ordersync sim serve` on a free loopback port; return the process and its port once serving.

    Its output is appended to ``log_path``.

    Raises:
        RuntimeError: when no attempt answered within ``STARTUP_TIMEOUT_S`` (the log says why).
    """
    for _attempt in range(PORT_ATTEMPTS):
        port = free_port()
        command = [*ordersync_command(), "sim", "serve", "--host", "127.0.0.1", "--port", str(port)]
        command += ["--scenario", str(scenario), "--clock", clock]
        with log_path.open("ab") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=dict(env))
        if _wait_serving(process, port):
            return process, port
        end_process(process)
    raise RuntimeError(f"`ordersync sim serve` did not start; see {log_path}")


def _wait_serving(process: subprocess.Popen[bytes], port: int) -> bool:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/sim/clock", timeout=1).status_code == 200:
                return True
        time.sleep(0.05)
    return False


def end_process(
    process: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGTERM, wait_s: float = 10.0
) -> int:
    """Send ``sig``, wait up to ``wait_s`` for the process to exit, then kill it; return its exit code."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    return process.returncode
