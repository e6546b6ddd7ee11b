"""examples/embed.py, the README's library snippet, runs as written against the simulator."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from conftest import KEY, MARKET, SECRET, SYMBOL, Sim

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "embed.py"


def test_the_embedding_example_protects_its_fill_with_one_oco_of_the_filled_quantity(
    start_sim: Callable[..., Sim], tmp_path: Path
) -> None:
    sim = start_sim()
    env = {**os.environ, "APCA_API_KEY_ID": KEY, "APCA_API_SECRET_KEY": SECRET, "NO_PROXY": "127.0.0.1"}
    marketable = str(MARKET + Decimal("0.50"))
    command = [sys.executable, str(EXAMPLE), "--base-url", sim.base_url, "--stream-url", sim.stream_url]
    command += ["--symbol", SYMBOL, "--limit", marketable, "--store", f"sqlite:///{tmp_path / 'embed.db'}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)

    assert done.returncode == 0, done.stdout + done.stderr
    heard = [line.split(" ", 2)[:2] for line in done.stdout.splitlines() if not line.startswith("held:")]
    kinds = [kind for kind, _ in heard]
    assert kinds[:2] == ["accepted", "fill"], done.stdout
    assert "child_released" in kinds, done.stdout
    parent = heard[0][1]
    orders = {o.client_order_id: o for o in sim.client().get_orders()}  # the broker's books, not its word
    oco = orders[f"{parent}~oco1"]
    assert (oco.order_class, oco.side, Decimal(str(oco.qty))) == ("oco", "sell", 9)


def test_every_line_of_the_readme_snippet_is_in_the_example() -> None:
    readme = (EXAMPLE.parents[1] / "README.md").read_text(encoding="utf-8")
    block = readme.split("```python embed\n", 1)[1].split("```", 1)[0]
    example = {line.strip() for line in EXAMPLE.read_text(encoding="utf-8").splitlines()}
    missing = [line for line in block.splitlines() if line.strip() and line.strip() not in example]
    assert missing == [], "README's embedding snippet drifted from examples/embed.py"
