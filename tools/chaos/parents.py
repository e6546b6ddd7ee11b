"""The scenario's parents as the worker reads them: plain JSON the driver writes from a scenario, so a
restarted worker gets going without loading the scenario's models (and protects sooner).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from ordersync.domain.order import Order, new_order
from ordersync.domain.protection import PartialFillPolicy, PriceRule, ProtectionPlan
from tools.chaos.fastclock import FollowClock
from tools.chaos.lockstep import LockstepClock

__all__ = ["Parent", "order_of", "read_parents", "write_parents"]


@dataclass(frozen=True, slots=True)
class Parent:
    """One scenario parent: its order, when to submit it, and its protection plan."""

    order: dict[str, Any]  # new_order's keyword arguments but created_at, as strings
    submit_at_s: float
    plan: ProtectionPlan | None


def write_parents(scenario: Path, out: Path) -> Path:
    """Write a scenario's parents, each with the demo's protection plan, as the worker's plain JSON."""
    from ordersync.demo.run import plan_for  # the driver's side: the worker never imports these
    from ordersync.sim.scenarios import load_scenario

    def rule(r: PriceRule | None) -> dict[str, Any] | None:
        return None if r is None else {"price": r.price, "offset": r.offset}

    rows = []
    for parent in load_scenario(scenario).parents:
        plan = plan_for(parent)
        order = {
            "client_order_id": parent.id,
            "symbol": parent.symbol,
            "side": parent.side,
            "type": parent.type,
            "qty": parent.qty,
            "time_in_force": parent.time_in_force,
            "limit_price": parent.limit_price,
        }
        rows.append(
            {
                "order": {k: None if v is None else str(getattr(v, "value", v)) for k, v in order.items()},
                "submit_at_s": parent.submit_at_s,
                "plan": None
                if plan is None
                else {
                    "take_profit": rule(plan.take_profit),
                    "stop_loss": rule(plan.stop_loss),
                    "policy": plan.policy.value,
                },
            }
        )
    out.write_text(json.dumps(rows, default=str), encoding="utf-8")
    return out


def read_parents(path: Path) -> list[Parent]:
    """Read the JSON ``write_parents`` wrote."""

    def rule(raw: dict[str, Any] | None) -> PriceRule | None:
        if raw is None:
            return None
        return PriceRule(*(None if raw[k] is None else Decimal(raw[k]) for k in ("price", "offset")))

    parents = []
    for row in json.loads(path.read_text(encoding="utf-8")):
        raw = row["plan"]
        plan = (
            None
            if raw is None
            else ProtectionPlan(
                rule(raw["take_profit"]), rule(raw["stop_loss"]), PartialFillPolicy(raw["policy"])
            )
        )
        parents.append(Parent(row["order"], float(row["submit_at_s"]), plan))
    return parents


def order_of(parent: Parent, clock: LockstepClock | FollowClock) -> Order:
    """The parent's order, created now on the worker's clock."""
    fields = {k: v for k, v in parent.order.items() if v is not None}
    return new_order(created_at=clock.now(), **fields)
