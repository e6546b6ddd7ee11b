"""A scenario parent as safe mode sends it: the entry order and the engine's protection plan.

Which scenarios safe mode can play is decided here, before anything runs: a plan ``Engine.submit`` would
refuse makes the whole scenario ``UnsupportedScenario``, one line naming the parent and the exit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ordersync.demo.options import DEFAULT_START
from ordersync.domain.errors import InvalidProtectionPlan
from ordersync.domain.order import Order, new_order
from ordersync.domain.protection import PartialFillPolicy, PriceRule, ProtectionPlan, TrailRule, validate_plan
from ordersync.sim.scenarios import Scenario


class UnsupportedScenario(ValueError):
    """The scenario asks safe mode for an exit the engine cannot place; the message is one line."""


def plan_for(parent: Any) -> ProtectionPlan | None:
    """Return the engine's protection plan for a scenario parent: price or offset exits, a stop-limit's
    limit (price or offset), a trailing stop, and the fill policy (docs/architecture.md §14).

    Raises:
        UnsupportedScenario: the exits do not make a valid plan (one line naming the parent).
    """
    tp, sl = parent.take_profit, parent.stop_loss
    take_profit = None if tp is None else PriceRule(price=tp.limit_price, offset=tp.offset)
    stop_loss = stop_limit = trailing = None
    try:
        if sl is not None and sl.kind == "trailing_stop":
            trailing = TrailRule(trail_price=sl.trail_price, trail_percent=sl.trail_percent)
        elif sl is not None:
            stop_loss = PriceRule(price=sl.stop_price, offset=sl.offset)
            if sl.kind == "stop_limit":
                stop_limit = PriceRule(price=sl.limit_price, offset=sl.limit_offset)
        if take_profit is None and stop_loss is None and trailing is None:
            return None
        plan = ProtectionPlan(
            take_profit,
            stop_loss,
            PartialFillPolicy(parent.policy),
            stop_limit=stop_limit,
            trailing=trailing,
            native=parent.native,
        )
        return validate_plan(plan, entry_order(parent, DEFAULT_START))  # what Engine.submit would refuse
    except InvalidProtectionPlan as e:
        raise UnsupportedScenario(f"parent {parent.id}: {e}") from None


def entry_order(parent: Any, now: datetime) -> Order:
    return new_order(
        client_order_id=parent.id,
        symbol=parent.symbol,
        side=parent.side,
        type=parent.type,
        qty=parent.qty,
        created_at=now,
        time_in_force=parent.time_in_force,
        limit_price=parent.limit_price,
    )


def check_supported(scenario: Scenario, mode: str) -> None:
    """Refuse, before anything runs, a scenario the chosen mode cannot play.

    Raises:
        UnsupportedScenario: one line naming the parent and the exit.
    """
    if mode == "safe":
        for parent in scenario.parents:
            plan_for(parent)
