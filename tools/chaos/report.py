"""The plain-text report of a chaos run: its counts, each kill and its restart's cost, the violations per
invariant, and the line that replays it.

Kept apart from the driver so how a run is told is read (and changed) apart from how it is run.
"""

from __future__ import annotations

from tools.chaos.crash import CRASH_MARK
from tools.chaos.evidence import INVARIANTS
from tools.chaos.results import P99_TARGET_S, ChaosOptions, ChaosResult, KillReport

__all__ = ["render"]


def render(result: ChaosResult) -> str:
    """Return the run's counts and its violations per invariant as a plain-text table."""
    o = result.options
    fig = result.verdict.figures
    p99 = result.verdict.fill_to_protect_p99_s
    own = result.verdict.fill_to_protect_own_p99_s
    rows: list[tuple[str, object]] = [
        ("seed", o.seed),
        ("parents generated", o.parents),
        ("fill->protect p99 (virtual s)", "-" if p99 is None else f"{p99:.1f}"),
        (f"  within {P99_TARGET_S:g} s", "-" if p99 is None else ("yes" if p99 <= P99_TARGET_S else "NO")),
        ("  the same less engine downtime", "-" if own is None else f"{own:.1f}"),
        *fig.items(),
        ("worker SIGKILLs by the driver", sum(1 for k in result.kills if k.cause == "random")),
        ("worker SIGKILLs at a crash point", sum(1 for k in result.kills if k.detail.startswith(CRASH_MARK))),
        ("worker restarts", result.restarts),
        ("engine start-ups refused by a broker error", len(result.start_failures)),
        ("kills with an unsent child intent", sum(1 for k in result.kills if k.intents)),
        ("kills with a submit sent, answer not applied", sum(1 for k in result.kills if k.submitting_sent)),
        ("kills with a submit journaled, not sent", sum(1 for k in result.kills if k.submitting_unsent)),
        ("kills with a fill not yet protected", sum(1 for k in result.kills if k.unprotected)),
        ("kills with a parent written, not sent", sum(1 for k in result.kills if k.parent_intents)),
        ("stream drops scheduled", result.scheduled_drops),
        *((f"fault injected: {k}", n) for k, n in sorted(result.faults.items())),
        (
            "clock",
            f"fast, {result.factor:.1f} virtual s per real s"
            if o.pace == "fast"
            else f"flowing, lockstep jumps of {o.step_s:g} s: {result.factor:.1f} virtual s per real s",
        ),
        ("quiescent", "yes" if result.quiescent else "NO (timed out)"),
        *((f"real seconds: {k}", v) for k, v in result.real_s.items()),
    ]
    width = max(len(k) for k, _ in rows)
    lines = [f"chaos run, seed {o.seed}", *(f"  {k.ljust(width)}  {v}" for k, v in rows), "invariants:"]
    for n, name in INVARIANTS.items():
        found = result.verdict.violations[n]
        judged = "" if n != 9 or o.judge_delay else " (not judged in this run)"
        lines.append(f"  ({n}) {name.ljust(24)} {len(found)} violations{judged}")
        lines += [f"        {v}" for v in found[:5]]
    for failure in result.worker_failures:
        lines.append(f"  worker failure: {failure}")
    for failure in result.start_failures:
        lines.append(f"  engine start failed (restarted): {failure}")
    for kill in result.kills:
        lines.append(
            f"  kill at {kill.at_s:6.2f}s {kill.cause:16} intents={kill.intents} "
            f"sent={kill.submitting_sent} unsent={kill.submitting_unsent} unprotected={kill.unprotected}"
            + (f" | {kill.detail.split()[-1]}: {kill.named}" if kill.detail.startswith(CRASH_MARK) else "")
            + (f" | {kill.named}" if kill.named and not kill.detail.startswith(CRASH_MARK) else "")
            + _restart_cost(kill)
        )
    verdict = "PASS" if result.ok else f"FAIL ({result.violations} violations); kept {result.workdir}"
    verdict += "" if result.p99_met else f" (fill->protect p99 over {P99_TARGET_S:g} s)"
    replay = f"python -m tools.chaos --seed {o.seed} --parents {o.parents} --kills {o.kills}"
    replay += "" if o.step_s == ChaosOptions.step_s else f" --step-s {o.step_s:g}"
    replay += "" if o.pace == ChaosOptions.pace else f" --pace {o.pace} --schedule-s {o.schedule_s:g}"
    replay += "" if o.span_s is None else f" --span-s {o.span_s:g}"
    replay += "" if o.judge_delay else " --no-delay-bound"
    lines += [f"result: {verdict}", f"replay: {replay}"]
    return "\n".join(lines)


def _restart_cost(kill: KillReport) -> str:
    if kill.at is None or kill.restarted_at is None:
        return ""
    down = kill.down_s
    wait = (kill.restarted_at - kill.at).total_seconds()
    if down is None:
        return f" | restarted after {wait:.0f} virtual s, never reconciled"
    return f" | down {down:.1f} virtual s: restart after {wait:.1f}, start-up {down - wait:.1f}"
