"""The fleet demo's market: one scenario (the seed incident by default) on N accounts, each with its own keys
and its own variation of the fill plans, on a compressed timeline that runs in real time.

Why real time and not the single-account demo's jumping clock: the workers are real ``ordersync run
--worker`` processes on the system clock, as an operator runs them. A broker clock that jumps ahead of the
engines' clocks would make their "closed since our oldest open order" catch-up reads and fill-activity
cursors compare two different times, so the takeover after a SIGKILL would be judged on a setup production
never has. Instead the scenario's times are divided by ``compression`` (hours of the seed in about a minute)
and the simulator runs ``--clock real``: every fill and price move happens while the workers run, the
engines' own waits (polls, backoffs, lease expiry) are real seconds, and a fill's wait for protection is
measured in real time.

Per account: a random key pair (the simulator's generated ``name``/``name-secret`` pairs would be guessable
from the name), and the scenario's ``variation``: each parent's plan starts up to ``fill_delay_s`` later and
loses its last fill with probability ``drop_last_fill_p``, drawn reproducibly from the account's name.
The price moves are taken out of the simulator's scenario and played by the demo on its own timeline
(``price_moves``), so they keep their place relative to the parents' submissions whatever the start-up took.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ordersync.sim.scenarios import Scenario, parse_scenario

__all__ = ["FleetAccount", "FleetScenario", "UnsupportedFleetScenario", "fleet_scenario"]

TIMELINE_S = 120.0  # real seconds from the first submission to the last planned fill (before variations)
FILL_DELAY_S = 1.5  # real seconds: each parent's plan starts up to this much later, per account
DROP_LAST_FILL_P = 0.25  # per parent and account: the plan loses its last fill (a parent left partly filled)
NAME_PREFIX = "demo"


class UnsupportedFleetScenario(ValueError):
    """The scenario cannot run on many accounts in real time; the message is one line."""


@dataclass(frozen=True)
class FleetAccount:
    """One simulated account: its name (the catalog's account id) and keys (the secrets folder only)."""

    name: str
    key_id: str
    secret_key: str

    def __repr__(self) -> str:  # never a key in a traceback or a log line
        return f"FleetAccount({self.name!r})"


@dataclass(frozen=True)
class FleetScenario:
    """What the simulator serves (``scenario``) and what the demo plays beside it."""

    scenario: Scenario  # N accounts, compressed, without price moves (the demo plays them)
    accounts: list[FleetAccount]
    compression: float  # scenario seconds per real second
    price_moves: list[tuple[float, str, Decimal]]  # (real seconds after the first submission, symbol, price)
    timeline_s: float  # real seconds from the first submission to the last planned event of any account
    plans: dict[str, list[Any]]  # account name -> its parents as the simulator plans them (varied)

    def parents_of(self, name: str) -> list[Any]:
        """The account's parents as the simulator plans them (its variation applied), by submission time."""
        return sorted(self.plans[name], key=lambda p: p.submit_at_s)

    @property
    def parent_ids(self) -> set[str]:
        return {p.id for p in self.scenario.parents}


def check_fleet_scenario(scenario: Scenario) -> None:
    """Refuse what a real-time run over many accounts cannot play.

    Raises:
        UnsupportedFleetScenario: one line naming the key.
    """
    where = f"scenario {scenario.name!r}"
    if scenario.accounts is not None:
        raise UnsupportedFleetScenario(f"{where} declares its own accounts; --accounts N generates them")
    if scenario.actions or scenario.restarts:
        raise UnsupportedFleetScenario(
            f"{where} has actions or restarts, which --accounts does not play (the demo kills a worker)"
        )
    if scenario.market.calendar:
        raise UnsupportedFleetScenario(f"{where} uses the market calendar; --accounts runs in real time")
    if not scenario.parents:
        raise UnsupportedFleetScenario(f"{where} has no parents: nothing to protect")


def _last_event_s(scenario: Scenario) -> float:
    last = max((p.at_s for p in scenario.prices), default=0.0)
    for parent in scenario.parents:
        ends = [f.after_s for f in parent.fills] + [
            t for t in (parent.cancel_after_s, parent.expire_after_s, parent.reject_after_s) if t is not None
        ]
        last = max(last, parent.submit_at_s + max(ends, default=0.0))
    return last


def _scaled(value: float | None, factor: float) -> float | None:
    return None if value is None else round(value / factor, 3)


def _compressed_parent(parent: dict[str, Any], factor: float) -> dict[str, Any]:
    parent = dict(parent)
    parent["submit_at_s"] = _scaled(parent.get("submit_at_s", 0.0), factor)
    parent["fills"] = [{**f, "after_s": _scaled(f["after_s"], factor)} for f in parent.get("fills", [])]
    for key in ("cancel_after_s", "expire_after_s", "reject_after_s"):
        if parent.get(key) is not None:
            parent[key] = _scaled(parent[key], factor)
    return parent


def fleet_scenario(
    scenario: Scenario,
    count: int,
    *,
    timeline_s: float = TIMELINE_S,
    fill_delay_s: float = FILL_DELAY_S,
    drop_last_fill_p: float = DROP_LAST_FILL_P,
) -> FleetScenario:
    """``scenario`` on ``count`` accounts named ``demo-001``..., compressed to about ``timeline_s``.

    Raises:
        UnsupportedFleetScenario: see ``check_fleet_scenario``.
        ScenarioError: the generated scenario does not validate (one line).
    """
    check_fleet_scenario(scenario)
    if count < 1:
        raise ValueError(f"count must be at least 1, was {count}")
    factor = max(1.0, _last_event_s(scenario) / timeline_s)
    width = max(3, len(str(count)))
    accounts = [
        FleetAccount(
            f"{NAME_PREFIX}-{i:0{width}d}", f"FK{secrets.token_hex(8).upper()}", secrets.token_hex(20)
        )
        for i in range(1, count + 1)
    ]
    data = scenario.model_dump(mode="json", exclude_unset=True)
    for key in ("start", "prices", "accounts"):
        data.pop(key, None)
    data["parents"] = [_compressed_parent(p, factor) for p in data.get("parents", [])]
    variation = {"fill_delay_s": fill_delay_s, "drop_last_fill_p": drop_last_fill_p}
    data["accounts"] = [
        {"name": a.name, "key_id": a.key_id, "secret_key": a.secret_key, "variation": variation}
        for a in accounts
    ]
    fleet = parse_scenario(data, f"{scenario.name} on {count} accounts")
    moves = sorted((round(p.at_s / factor, 3), p.symbol, p.price) for p in scenario.prices)
    last = _last_event_s(fleet)
    timeline = max([last + fill_delay_s, *(at for at, _, _ in moves)])
    plans = {spec.name: list(spec.parents) for spec in fleet.account_specs()}  # resolved once: N validations
    return FleetScenario(fleet, accounts, factor, moves, timeline, plans)


def scenario_text(fleet: FleetScenario) -> str:
    """The simulator's scenario file (JSON, which is YAML); it holds the keys: write it owner-only."""
    return fleet.scenario.model_dump_json(exclude_none=True)
