"""Four ways to protect a position, side by side on the same simulator: ordersync, the seed's naive platform,
a competent poller and Alpaca's own brackets (issue 21; docs/comparison.md).

Each scenario runs in every mode (``ordersync demo --compare``'s runs, ``ordersync.demo.compare``), one mode
at a time on a fresh embedded simulator; every figure comes from that run's simulator books:

* the seed incident (``src/ordersync/sim/scenarios/seed_incident.yaml``);
* ``tests/fixtures/scenarios/compare_*.yaml``: partial fills over hours, a partly filled entry that expires at
  the close (and one cancelled part-filled), exits edited by a person (PATCH), a stream outage.

stdout gets one Markdown table (the one in docs/comparison.md); progress goes to stderr. A run takes a few
minutes on a shared 2-core machine (the poller reads every 5 s of virtual time over hours of scenario).

    python bench/bench_modes.py                      # every scenario
    python bench/bench_modes.py --only stream        # scenarios whose file name contains "stream"
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from common import environment, log, quiet_logs
from ordersync.demo.compare import compare_modes, markdown_table
from ordersync.demo.summary import Summary
from ordersync.sim.scenarios import Scenario, default_scenario, load_scenario

FIXTURES = Path(__file__).parents[1] / "tests" / "fixtures" / "scenarios"


def scenarios(only: str | None) -> list[tuple[str, Scenario]]:
    """Return the seed scenario and every compare_* fixture, by file name (filtered by ``only``)."""
    found = [("seed_incident", default_scenario())]
    found += [(p.stem, load_scenario(p)) for p in sorted(FIXTURES.glob("compare_*.yaml"))]
    return [(name, s) for name, s in found if only is None or only in name]


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--only", help="run only the scenarios whose file name contains this text")
    args = parser.parse_args()
    quiet_logs()
    summaries: list[Summary] = []
    for name, scenario in scenarios(args.only):
        started = time.monotonic()
        found = compare_modes(scenario)
        log(f"{name}: {', '.join(f'{s.mode} {s.real_duration_s:.0f} s' for s in found)}")
        log(f"{name}: done in {time.monotonic() - started:.0f} s")
        summaries += found
    print(f"Modes compared ({environment()}); figures from the simulator's books.\n")
    print(markdown_table(summaries))
    return 0


if __name__ == "__main__":
    sys.exit(main())
