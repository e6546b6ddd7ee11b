"""What a person does during a scenario (cancel, edit, close a position, cancel everything, send an order by
hand) and the engine restarts the demo plays: timed events against the account, not its starting state.

A target names an order by client_order_id, or by its role in a scenario parent's protection, resolved
only when the action runs (the child does not exist when the scenario is read).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field, model_validator

from .scenario_market import OrderModel, StrictModel


class ClientOrderTarget(StrictModel):
    client_order_id: str = Field(min_length=1, max_length=128)


class RoleTarget(StrictModel):
    """An order found by its place in a scenario parent's protection: resolved when the action runs."""

    parent: str = Field(min_length=1, max_length=128)
    role: Literal["entry", "take_profit", "stop_loss"]


Target = ClientOrderTarget | RoleTarget


class _Action(StrictModel):
    at_s: float = Field(ge=0, allow_inf_nan=False)
    note: str = ""


class CancelAction(_Action):
    """A person cancels one order (DELETE /v2/orders/{id})."""

    action: Literal["cancel"]
    target: Target


class ReplaceAction(_Action):
    """A person edits one order (PATCH /v2/orders/{id}); at least one field changes."""

    action: Literal["replace"]
    target: Target
    qty: Decimal | None = Field(default=None, gt=0)
    limit_price: Decimal | None = Field(default=None, gt=0)
    stop_price: Decimal | None = Field(default=None, gt=0)
    trail: Decimal | None = Field(default=None, gt=0)
    time_in_force: Literal["day", "gtc"] | None = None

    @model_validator(mode="after")
    def _changes(self) -> ReplaceAction:
        fields = (self.qty, self.limit_price, self.stop_price, self.trail, self.time_in_force)
        if all(v is None for v in fields):
            raise ValueError("give at least one of qty, limit_price, stop_price, trail, time_in_force")
        return self


class ClosePositionAction(_Action):
    """A person closes a position (DELETE /v2/positions/{symbol}): all of it, `qty` shares or `percentage`.
    With `cancel_orders`, the symbol's open orders are canceled first and the close goes after the cancels."""

    action: Literal["close_position"]
    symbol: str
    qty: Decimal | None = Field(default=None, gt=0)
    percentage: Decimal | None = Field(default=None, gt=0, le=100)
    cancel_orders: bool = False

    @model_validator(mode="after")
    def _one(self) -> ClosePositionAction:
        if self.qty is not None and self.percentage is not None:
            raise ValueError("give qty or percentage, not both")
        return self


class CancelAllAction(_Action):
    """A person cancels every open order (DELETE /v2/orders)."""

    action: Literal["cancel_all"]


class SubmitAction(_Action):
    """A person sends an order by hand (sells or buys); `order` is the POST /v2/orders body."""

    action: Literal["submit"]
    order: OrderModel


Action = Annotated[
    CancelAction | ReplaceAction | ClosePositionAction | CancelAllAction | SubmitAction,
    Field(discriminator="action"),
]


class RestartModel(StrictModel):
    """An engine restart inside `ordersync demo` (the simulator ignores it)."""

    at_s: float = Field(ge=0, allow_inf_nan=False)


def action_symbol(
    action: CancelAction | ReplaceAction | ClosePositionAction | CancelAllAction | SubmitAction,
) -> str | None:
    if isinstance(action, ClosePositionAction):
        return action.symbol
    if isinstance(action, SubmitAction):
        return action.order.symbol
    return None
