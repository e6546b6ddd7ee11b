"""The README's "Try it by hand" block, executed verbatim: if a newcomer can copy it, CI can run it.

It starts `ordersync sim serve` and `ordersync run` as background processes, submits a resting limit buy
with a take-profit and a stop-loss, moves the simulator's price through the limit, and reads the status, the
broker's orders and /metrics. The test checks what a person would look for: the parent filled, its 9 shares
protected by one OCO at the broker, and the submits counted on /metrics.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow]

README = Path(__file__).resolve().parents[2] / "README.md"


def _try_it_block() -> str:
    found = re.search(r"```bash try-it\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)
    assert found, "README.md has no ```bash try-it block"
    return found.group(1)


@pytest.mark.skipif(shutil.which("curl") is None, reason="the README's block uses curl")
def test_the_readme_try_it_block_runs_and_protects_the_fill(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", _try_it_block()],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    logs = "\n".join(f"--- {p.name}\n{p.read_text()}" for p in tmp_path.glob("*.log"))
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n{logs}"
    out = result.stdout
    assert re.search(r"my-1\s.*OKE\s.*filled\s.*9/9\s.*9/9 ok", out), out
    orders = json.loads(next(line for line in out.splitlines() if line.startswith("[")))
    oco = [o for o in orders if o["client_order_id"].startswith("my-1~") and o["order_class"] == "oco"]
    assert len(oco) == 1, orders
    assert oco[0]["qty"] == "9"
    assert re.search(r'ordersync_submits_total\{role="oco"\} 1\.0', out), out
    run_log = (tmp_path / "run.log").read_text()
    for event in ("order.accepted", "order.fill", "order.child_released"):  # the order's life at INFO
        assert event in run_log, f"{event} not logged:\n{run_log}"
