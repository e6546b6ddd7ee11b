"""Scenario files: the market, the account and the broker's behaviour for one simulator run, as YAML.

A scenario is validated into pydantic models; any problem is a `ScenarioError` whose message is one line
naming the field (`parents.3.fills.0.qty: Input should be greater than 0`). Shape (every key but `symbols`
optional):

    name: seed-incident
    description: free text
    seed: 7                        # default seed for faults (faults.seed overrides)
    start: "2025-10-10T15:59:00Z"  # virtual clock start (stepped and fast clocks); default: now
    cash: "1000000"
    shorting_enabled: false        # sells beyond the position are refused with 403 40310000 when false
    wash_trade_check: true         # 403 "potential wash trade detected. use complex orders"
    rate_limit_per_min: 200        # per API key, per minute of virtual time
    latency: {ack_s: 0, fill_s: 0, cancel_s: 0, pending_new_event: false, pending_cancel_event: false}
    symbols: {OKE: {price: "72.10", exchange: NYSE}}   # exchange from alpaca-py's AssetExchange list
    prices: [{at_s: 3600, symbol: OKE, price: "74.00"}]  # price path, virtual seconds after start
    parents:                       # what the platform under test submits; the sim uses only id + the plan
      - id: p01                    # the parent's client_order_id: the order with that id is filled by plan
        symbol: OKE
        qty: "9"
        side: buy
        type: market               # or limit, with limit_price
        time_in_force: gtc
        submit_at_s: 16            # when the platform submits (read by drivers; the sim ignores it)
        fills: [{after_s: 204, qty: "4"}, {after_s: 300, qty: "5", price: "72.15"}]  # after submission
        cancel_after_s: null       # the venue cancels the remainder then
        expire_after_s: null       # the venue expires the remainder then
        reject_after_s: null       # the venue rejects the order then (after a 200 on its POST)
        take_profit: {limit_price: "76.00"}      # the platform's protection plan (sim ignores)
        stop_loss: {stop_price: "68.50"}
    faults: {...}                  # see faults.FaultConfig

The packaged default, `scenarios/seed_incident.yaml`, reproduces the seed incident.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .checks import Policy
from .exchange import ExchangeConfig, FillPlan, FillStep, PricePoint
from .faults import FaultConfig
from .model import SymbolInfo
from .venue import Latency
from .wire import asset_id_for

__all__ = ["Scenario", "ScenarioError", "default_scenario", "load_scenario", "parse_scenario"]

Exchange = Literal["AMEX", "ARCA", "BATS", "NYSE", "NASDAQ", "NYSEARCA", "OTC"]


class ScenarioError(ValueError):
    """A scenario file is missing, is not YAML, or does not validate; the message is one line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SymbolModel(_Strict):
    price: Decimal = Field(gt=0)
    exchange: Exchange = "NYSE"


class PriceMove(_Strict):
    at_s: float = Field(ge=0)
    symbol: str
    price: Decimal = Field(gt=0)


class FillStepModel(_Strict):
    after_s: float = Field(ge=0)
    qty: Decimal = Field(gt=0)
    price: Decimal | None = Field(default=None, gt=0)


class TakeProfitModel(_Strict):
    limit_price: Decimal = Field(gt=0)


class StopLossModel(_Strict):
    stop_price: Decimal = Field(gt=0)
    limit_price: Decimal | None = Field(default=None, gt=0)


class ParentModel(_Strict):
    id: str = Field(min_length=1, max_length=128)
    symbol: str
    qty: Decimal = Field(gt=0)
    side: Literal["buy", "sell"] = "buy"
    type: Literal["market", "limit"] = "market"
    limit_price: Decimal | None = Field(default=None, gt=0)
    time_in_force: Literal["day", "gtc"] = "gtc"
    submit_at_s: float = Field(default=0, ge=0)
    fills: list[FillStepModel] = Field(default_factory=list)
    cancel_after_s: float | None = Field(default=None, ge=0)
    expire_after_s: float | None = Field(default=None, ge=0)
    reject_after_s: float | None = Field(default=None, ge=0)
    take_profit: TakeProfitModel | None = None
    stop_loss: StopLossModel | None = None

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


class LatencyModel(_Strict):
    ack_s: float = Field(default=0.0, ge=0)
    fill_s: float = Field(default=0.0, ge=0)
    cancel_s: float = Field(default=0.0, ge=0)
    pending_new_event: bool = False
    pending_cancel_event: bool = False


class Scenario(_Strict):
    """A validated scenario; `exchange_config()` turns it into the broker model's settings."""

    name: str = "unnamed"
    description: str = ""
    seed: int = 0
    start: datetime | None = None
    cash: Decimal = Field(default=Decimal(1_000_000), gt=0)
    shorting_enabled: bool = False
    wash_trade_check: bool = True
    rate_limit_per_min: int = Field(default=200, ge=1)
    latency: LatencyModel = LatencyModel()
    symbols: dict[str, SymbolModel] = Field(min_length=1)
    prices: list[PriceMove] = Field(default_factory=list)
    parents: list[ParentModel] = Field(default_factory=list)
    faults: FaultConfig = FaultConfig()

    @field_validator("start")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("start must carry a timezone, e.g. 2025-10-10T15:59:00Z")
        return value

    @model_validator(mode="after")
    def _known_symbols(self) -> Scenario:
        for where, symbol in [
            *(("prices", p.symbol) for p in self.prices),
            *(("parents", p.symbol) for p in self.parents),
        ]:
            if symbol not in self.symbols:
                raise ValueError(f"{where}: symbol {symbol!r} is not listed under symbols")
        ids = [p.id for p in self.parents]
        if len(ids) != len(set(ids)):
            raise ValueError("parents: ids must be unique (they are client_order_ids)")
        return self

    def exchange_config(self) -> ExchangeConfig:
        return ExchangeConfig(
            symbols=[SymbolInfo(s, m.price, m.exchange, asset_id_for(s)) for s, m in self.symbols.items()],
            cash=self.cash,
            policy=Policy(shorting_enabled=self.shorting_enabled, wash_trade_check=self.wash_trade_check),
            latency=Latency(**self.latency.model_dump()),
            plans={p.id: p.plan() for p in self.parents},
            prices=[PricePoint(p.at_s, p.symbol, p.price) for p in self.prices],
        )


def parse_scenario(data: object, source: str = "scenario") -> Scenario:
    """Validate already-loaded YAML data.

    Raises:
        ScenarioError: one line naming the offending field.
    """
    if not isinstance(data, Mapping):
        raise ScenarioError(f"{source}: the top level must be a mapping, got {type(data).__name__}")
    try:
        return Scenario.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise ScenarioError(f"{source}: {where}: {first['msg']}") from None


def load_scenario(path: Path | str) -> Scenario:
    """Read and validate a scenario file.

    Raises:
        ScenarioError: the file is missing, is not YAML, or does not validate.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ScenarioError(f"{path}: cannot read: {e.strerror}") from None
    return _parse_text(text, str(path))


def default_scenario() -> Scenario:
    """Return the packaged seed-incident scenario."""
    text = (
        resources.files("ordersync.sim").joinpath("scenarios/seed_incident.yaml").read_text(encoding="utf-8")
    )
    return _parse_text(text, "seed_incident.yaml")


def _parse_text(text: str, source: str) -> Scenario:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise ScenarioError(f"{source}:{line} is not valid YAML: {getattr(e, 'problem', e)}") from None
    return parse_scenario(data, source)
