"""The parts of a scenario that set up the market: symbols and price moves, the parents with their fill
schedules and exits, the account at the start, other applications' orders, the venue's latency and its
calendar (docs/scenarios.md documents every key).

Each model validates only itself; what needs the whole scenario (a symbol listed under ``symbols``, ids
unique across parents and foreign orders) is checked by ``Scenario`` in ``scenarios.py``, the one root
model a new key is added to. Every model here is strict (unknown keys refused) and frozen.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .exchange_config import FillPlan, FillStep
from .order_request import OrderSpec, parse_order_request
from .venue import Latency
from .wire import ApiError, JsonDict

Exchange = Literal["AMEX", "ARCA", "BATS", "NYSE", "NASDAQ", "NYSEARCA", "OTC"]


class StrictModel(BaseModel):
    """Every scenario model: an unknown key is an error (a typo must not pass silently), values frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


Money = Decimal
Offset = Annotated[
    Decimal, Field(gt=0, lt=1)
]  # a fraction of the parent's fill price, as the engine's PriceRule


class SymbolModel(StrictModel):
    price: Decimal = Field(gt=0)
    exchange: Exchange = "NYSE"
    fractionable: bool = True


class PriceMove(StrictModel):
    at_s: float = Field(ge=0, allow_inf_nan=False)
    symbol: str
    price: Decimal = Field(gt=0)


class FillStepModel(StrictModel):
    after_s: float = Field(ge=0, allow_inf_nan=False)
    qty: Decimal = Field(gt=0)
    price: Decimal | None = Field(default=None, gt=0)


class TakeProfitModel(StrictModel):
    """A take-profit: an absolute `limit_price`, or an `offset` (fraction) beyond the parent's fill price."""

    limit_price: Decimal | None = Field(default=None, gt=0)
    offset: Offset | None = None

    @model_validator(mode="after")
    def _one(self) -> TakeProfitModel:
        if (self.limit_price is None) == (self.offset is None):
            raise ValueError("give exactly one of limit_price or offset")
        return self


class StopLossModel(StrictModel):
    """A stop-loss: `stop_price` (with `limit_price` for a stop-limit), or `offset` (with `limit_offset`) from
    the parent's fill price, or a trailing stop by `trail_percent` or `trail_price`."""

    stop_price: Decimal | None = Field(default=None, gt=0)
    limit_price: Decimal | None = Field(default=None, gt=0)
    offset: Offset | None = None
    limit_offset: Offset | None = None
    trail_percent: Decimal | None = Field(default=None, gt=0, lt=100)
    trail_price: Decimal | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one(self) -> StopLossModel:
        given = [self.stop_price, self.offset, self.trail_percent, self.trail_price]
        if sum(v is not None for v in given) != 1:
            raise ValueError("give exactly one of stop_price, offset, trail_percent or trail_price")
        if self.limit_price is not None and self.stop_price is None:
            raise ValueError("limit_price goes with stop_price (use limit_offset with offset)")
        if self.limit_offset is not None and self.offset is None:
            raise ValueError("limit_offset goes with offset")
        return self

    @property
    def kind(self) -> Literal["stop", "stop_limit", "trailing_stop"]:
        """The order type the exit is sent as."""
        if self.trail_percent is not None or self.trail_price is not None:
            return "trailing_stop"
        return "stop_limit" if self.limit_price is not None or self.limit_offset is not None else "stop"


class ParentModel(StrictModel):
    id: str = Field(min_length=1, max_length=128)
    symbol: str
    qty: Decimal = Field(gt=0)
    side: Literal["buy", "sell"] = "buy"
    type: Literal["market", "limit"] = "market"
    limit_price: Decimal | None = Field(default=None, gt=0)
    time_in_force: Literal["day", "gtc"] = "gtc"
    submit_at_s: float = Field(default=0, ge=0, allow_inf_nan=False)
    fills: list[FillStepModel] = Field(default_factory=list)
    cancel_after_s: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    expire_after_s: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    reject_after_s: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    take_profit: TakeProfitModel | None = None
    stop_loss: StopLossModel | None = None
    policy: Literal["each_fill", "full_fill"] = (
        "each_fill"  # the platform's partial-fill policy (sim ignores)
    )
    native: bool = False  # ordersync sends the parent as a bracket/OTO with its exits (sim ignores)

    @model_validator(mode="after")
    def _consistent(self) -> ParentModel:
        if (self.type == "limit") != (self.limit_price is not None):
            raise ValueError("limit_price is required for limit parents and only for them")
        if sum((f.qty for f in self.fills), Decimal(0)) > self.qty:
            raise ValueError("fills sum to more than qty")
        return self

    def plan(self) -> FillPlan:
        steps = tuple(
            FillStep(f.after_s, f.qty, f.price) for f in sorted(self.fills, key=lambda f: f.after_s)
        )
        return FillPlan(steps, self.cancel_after_s, self.expire_after_s, self.reject_after_s)


class LatencyModel(StrictModel):
    ack_s: float = Field(default=0.0, ge=0, le=86_400, allow_inf_nan=False)
    fill_s: float = Field(default=0.0, ge=0, le=86_400, allow_inf_nan=False)
    cancel_s: float = Field(default=0.0, ge=0, le=86_400, allow_inf_nan=False)
    # the venue's confirmation of a PATCH (pending_replace -> replaced); default: cancel_s
    replace_s: float | None = Field(default=None, ge=0, le=86_400, allow_inf_nan=False)
    pending_new_event: bool = False
    pending_cancel_event: bool = False
    # virtual seconds before the REST answer, for every /v2 request and per route ("POST /v2/orders")
    http_s: float = Field(default=0.0, ge=0, le=3600, allow_inf_nan=False)
    routes: dict[str, Annotated[float, Field(ge=0, le=3600, allow_inf_nan=False)]] = Field(
        default_factory=dict
    )

    def venue(self) -> Latency:
        return Latency(
            ack_s=self.ack_s,
            fill_s=self.fill_s,
            cancel_s=self.cancel_s,
            replace_s=self.cancel_s if self.replace_s is None else self.replace_s,
            pending_new_event=self.pending_new_event,
            pending_cancel_event=self.pending_cancel_event,
        )


class StartingPosition(StrictModel):
    """A position held at the start; negative qty = short; `avg_entry_price` defaults to the price."""

    symbol: str
    qty: Decimal
    avg_entry_price: Decimal | None = Field(default=None, gt=0)

    @field_validator("qty")
    @classmethod
    def _nonzero(cls, value: Decimal) -> Decimal:
        if value == 0 or not value.is_finite():
            raise ValueError("qty must be a non-zero number")
        return value


class AccountModel(StrictModel):
    """The account at the start: cash (overrides the top-level `cash`), margin and positions."""

    cash: Decimal | None = Field(default=None, gt=0)
    margin_multiplier: Literal[1, 2, 4] = 1
    positions: list[StartingPosition] = Field(default_factory=list)


class OrderModel(StrictModel):
    """An order as an application sends it: another application's open order, or a person's manual one."""

    symbol: str
    side: Literal["buy", "sell"]
    qty: Decimal = Field(gt=0)
    type: Literal["market", "limit", "stop", "stop_limit", "trailing_stop"] = "market"
    time_in_force: Literal["day", "gtc", "opg", "cls", "ioc", "fok"] = "day"
    limit_price: Decimal | None = Field(default=None, gt=0)
    stop_price: Decimal | None = Field(default=None, gt=0)
    trail_price: Decimal | None = Field(default=None, gt=0)
    trail_percent: Decimal | None = Field(default=None, gt=0, lt=100)
    extended_hours: bool = False
    client_order_id: str | None = Field(default=None, min_length=1, max_length=128)

    @model_validator(mode="after")
    def _valid_request(self) -> OrderModel:
        try:
            parse_order_request(self.request_body())
        except ApiError as e:
            raise ValueError(str(e.body.get("message", e))) from None
        return self

    def request_body(self) -> JsonDict:
        """The POST /v2/orders body this order stands for."""
        return self.model_dump(exclude_none=True, mode="json")

    def spec(self) -> OrderSpec:
        return parse_order_request(self.request_body())


class ForeignOrderModel(OrderModel):
    """Another application's open order, in the account at the start; `client_order_id` is required."""

    client_order_id: str = Field(min_length=1, max_length=128)
    time_in_force: Literal["day", "gtc", "opg", "cls", "ioc", "fok"] = "gtc"


class MarketModel(StrictModel):
    """`calendar: true` opens and closes the market on the NYSE calendar; false = always open.
    `done_for_day: true` (with the calendar): partially filled GTC orders go `done_for_day` at the close."""

    calendar: bool = False
    done_for_day: bool = False

    @model_validator(mode="after")
    def _needs_calendar(self) -> MarketModel:
        if self.done_for_day and not self.calendar:
            raise ValueError("done_for_day needs calendar: true")
        return self
