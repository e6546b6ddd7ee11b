"""Protection plans: the exits a parent's filled shares get, as the caller states them.

A plan is stored with its parent (the ``plans`` table) and turned into child orders by the release rule
(``domain/protection.py``) through ``domain/exits.py``. The exit kinds and their policies are
docs/architecture.md §14.1.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from ordersync.domain.errors import InvalidProtectionPlan
from ordersync.domain.order import Order, OrderRole, OrderSide, OrderType, TimeInForce


class PartialFillPolicy(StrEnum):
    """When to protect a partially filled parent."""

    EACH_FILL = "each_fill"  # protect every confirmed increment at once
    FULL_FILL = "full_fill"  # wait until the parent is completely filled (or dead with a partial fill)


@dataclass(frozen=True, slots=True)
class PriceRule:
    """An exit price: absolute, or a fraction away from the parent's average fill price."""

    price: Decimal | None = None
    offset: Decimal | None = None  # 0.05 = 5 % away from the fill, in the protective direction

    def __post_init__(self) -> None:
        if (self.price is None) == (self.offset is None):
            raise InvalidProtectionPlan("give exactly one of price or offset for each exit")
        if self.price is not None and self.price <= 0:
            raise InvalidProtectionPlan(f"exit price must be positive, was {self.price}")
        if self.offset is not None and not Decimal(0) < self.offset < Decimal(1):
            raise InvalidProtectionPlan(f"exit offset must be a fraction in (0, 1), was {self.offset}")


@dataclass(frozen=True, slots=True)
class TrailRule:
    """A trailing stop: the stop follows the best price by ``trail_price`` dollars or ``trail_percent`` %."""

    trail_price: Decimal | None = None
    trail_percent: Decimal | None = None  # 2.5 = 2.5 %, as Alpaca's trail_percent

    def __post_init__(self) -> None:
        if (self.trail_price is None) == (self.trail_percent is None):
            raise InvalidProtectionPlan("give exactly one of trail_price or trail_percent")
        if self.trail_price is not None and self.trail_price <= 0:
            raise InvalidProtectionPlan(f"trail_price must be positive, was {self.trail_price}")
        if self.trail_percent is not None and not Decimal(0) < self.trail_percent < Decimal(100):
            raise InvalidProtectionPlan(f"trail_percent must be in (0, 100), was {self.trail_percent}")


@dataclass(frozen=True, slots=True)
class ProtectionPlan:
    """Take-profit and/or stop-loss for a parent (docs/architecture.md §14 lists the exit kinds).

    The stop-loss is a stop (``stop_loss``), a stop-limit (``stop_loss`` and ``stop_limit``, the limit
    given like any exit price: absolute or an offset from the fill) or a trailing stop (``trailing``).
    A take-profit with a stop or stop-limit becomes one OCO (the stop-limit as its stop leg). Alpaca has
    no trailing OCO leg (docs/alpaca.md §6.1), so a take-profit beside a trailing stop releases the
    trailing stop alone: protection of the shares comes before the profit target.
    """

    take_profit: PriceRule | None = None
    stop_loss: PriceRule | None = None
    policy: PartialFillPolicy = PartialFillPolicy.EACH_FILL
    stop_limit: PriceRule | None = None  # the limit of a stop-limit stop-loss
    trailing: TrailRule | None = None  # a trailing stop-loss, instead of stop_loss
    native: bool = (
        False  # send the parent as Alpaca's bracket/OTO with these exits attached (docs/comparison.md §8)
    )

    def __post_init__(self) -> None:
        if self.stop_limit is not None and self.stop_loss is None:
            raise InvalidProtectionPlan("a stop-limit needs its stop price (stop_loss) as well")
        if self.trailing is not None and self.stop_loss is not None:
            raise InvalidProtectionPlan("give a stop-loss or a trailing stop, not both")

    @property
    def role(self) -> OrderRole:
        """Return the role of the child orders this plan releases."""
        if self.take_profit and self.stop_loss:
            return OrderRole.OCO
        if self.trailing is not None:
            return OrderRole.STOP_LOSS  # alone, even beside a take-profit (no trailing OCO leg)
        return OrderRole.TAKE_PROFIT if self.take_profit else OrderRole.STOP_LOSS

    @property
    def stop_type(self) -> OrderType:
        """Return the order type of the stop-loss (of a lone stop, or of the OCO's stop leg)."""
        if self.trailing is not None:
            return OrderType.TRAILING_STOP
        return OrderType.STOP_LIMIT if self.stop_limit is not None else OrderType.STOP

    @property
    def has_stop(self) -> bool:
        """True when the plan protects with a stop of any kind."""
        return self.stop_loss is not None or self.trailing is not None


def native_refusal(plan: ProtectionPlan, parent: Order) -> str | None:
    """Why ``plan`` cannot ride on ``parent`` as a native bracket/OTO (None when it can).

    A native group keeps ordersync's guarantees only where Alpaca's bracket does what the release rule
    would (docs/comparison.md §8): a market or limit entry (Alpaca's rule), GTC (a DAY bracket's legs die
    at the close), absolute exit prices (a bracket's legs are priced when it is sent, before any fill)
    and a plain stop or stop-limit (a bracket has no trailing leg). That the entry opens or adds to a
    position is the broker's to check when the POST arrives (422 "bracket orders must be entry orders").
    """
    if parent.type not in (OrderType.MARKET, OrderType.LIMIT):
        return f"a native bracket needs a market or limit entry, not {parent.type}"
    if parent.time_in_force is not TimeInForce.GTC:
        tif = parent.time_in_force
        return f"a native bracket needs a GTC entry (a DAY bracket's legs end at the close), not {tif}"
    if plan.trailing is not None:
        return "a native bracket has no trailing stop leg"
    rules = (plan.take_profit, plan.stop_loss, plan.stop_limit)
    if any(r is not None and r.price is None for r in rules):
        return "a native bracket needs absolute exit prices (offsets are priced from the fill)"
    return None


def validate_plan(plan: ProtectionPlan, parent: Order) -> ProtectionPlan:
    """Return ``plan`` if it can protect ``parent``.

    Raises:
        InvalidProtectionPlan: no exit given, or an exit on the wrong side of the entry (a take-profit
            below a long's limit price, a stop above it, a take-profit not beyond the stop), or a
            ``native`` plan a bracket cannot carry (``native_refusal``).
    """
    if plan.take_profit is None and not plan.has_stop:
        raise InvalidProtectionPlan("a protection plan needs a take_profit, a stop_loss or both")
    if parent.role is not OrderRole.ENTRY:
        raise InvalidProtectionPlan("only an entry order can carry a protection plan")
    sign = 1 if parent.side is OrderSide.BUY else -1
    reference = parent.limit_price or parent.stop_price
    tp = plan.take_profit.price if plan.take_profit else None
    sl = plan.stop_loss.price if plan.stop_loss else None
    direction = "long" if sign == 1 else "short"
    if tp is not None and reference is not None and sign * (tp - reference) <= 0:
        raise InvalidProtectionPlan(f"take-profit {tp} is not beyond the {direction} entry at {reference}")
    if sl is not None and reference is not None and sign * (reference - sl) <= 0:
        raise InvalidProtectionPlan(
            f"stop-loss {sl} is not protective for the {direction} entry at {reference}"
        )
    if tp is not None and sl is not None and sign * (tp - sl) <= 0:
        raise InvalidProtectionPlan(f"take-profit {tp} must be beyond stop-loss {sl} for a {direction}")
    limit = plan.stop_limit.price if plan.stop_limit else None
    if limit is not None and sl is not None and sign * (sl - limit) < 0:
        # a sell stop-limit's limit at or below its stop (a buy's at or above): a limit beyond the stop
        # would be marketable only on a rebound, so the stop would not protect
        raise InvalidProtectionPlan(f"stop-limit limit {limit} is beyond its stop {sl} for a {direction}")
    if plan.native and (why := native_refusal(plan, parent)):
        raise InvalidProtectionPlan(f"native: {why}")
    return plan
