"""Scenario files: the market, the account and the broker's behaviour for one simulator run, as YAML.

A scenario is validated into pydantic models; any problem is a `ScenarioError` whose message is one line
naming the field (`parents.3.fills.0.qty: Input should be greater than 0`). Every key is documented, with
examples, in docs/scenarios.md; docs/scenario.schema.json is generated from these models
(`write_json_schema`). Version 2 only adds keys (account, foreign_orders, actions, restarts, market, fault
windows, exit offsets and trailing stops, virtual HTTP latency), so every version 1 file stays valid.

The packaged default, `scenarios/seed_incident.yaml`, reproduces the seed incident.
"""

from __future__ import annotations

import json
import random
import re
import uuid
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from .checks import Policy
from .exchange import ExchangeConfig, FillPlan, FillStep, PricePoint
from .faults import FaultConfig
from .model import SymbolInfo
from .order_request import OrderSpec, parse_order_request
from .serialize import ACCOUNT_ID, ACCOUNT_NUMBER
from .venue import Latency
from .wire import ApiError, JsonDict, asset_id_for

__all__ = [
    "AccountEntry",
    "AccountSpec",
    "AccountsGenerator",
    "Scenario",
    "ScenarioError",
    "default_scenario",
    "load_scenario",
    "parse_scenario",
    "scenario_json_schema",
    "write_json_schema",
]

Exchange = Literal["AMEX", "ARCA", "BATS", "NYSE", "NASDAQ", "NYSEARCA", "OTC"]


class ScenarioError(ValueError):
    """A scenario file is missing, is not YAML, or does not validate; the message is one line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Money = Decimal
Offset = Annotated[
    Decimal, Field(gt=0, lt=1)
]  # a fraction of the parent's fill price, as the engine's PriceRule


class SymbolModel(_Strict):
    price: Decimal = Field(gt=0)
    exchange: Exchange = "NYSE"
    fractionable: bool = True


class PriceMove(_Strict):
    at_s: float = Field(ge=0, allow_inf_nan=False)
    symbol: str
    price: Decimal = Field(gt=0)


class FillStepModel(_Strict):
    after_s: float = Field(ge=0, allow_inf_nan=False)
    qty: Decimal = Field(gt=0)
    price: Decimal | None = Field(default=None, gt=0)


class TakeProfitModel(_Strict):
    """A take-profit: an absolute `limit_price`, or an `offset` (fraction) beyond the parent's fill price."""

    limit_price: Decimal | None = Field(default=None, gt=0)
    offset: Offset | None = None

    @model_validator(mode="after")
    def _one(self) -> TakeProfitModel:
        if (self.limit_price is None) == (self.offset is None):
            raise ValueError("give exactly one of limit_price or offset")
        return self


class StopLossModel(_Strict):
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


class ParentModel(_Strict):
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


class LatencyModel(_Strict):
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


class StartingPosition(_Strict):
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


class AccountModel(_Strict):
    """The account at the start: cash (overrides the top-level `cash`), margin and positions."""

    cash: Decimal | None = Field(default=None, gt=0)
    margin_multiplier: Literal[1, 2, 4] = 1
    positions: list[StartingPosition] = Field(default_factory=list)


class OrderModel(_Strict):
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


class VariationModel(_Strict):
    """How one account's fill plans differ from the scenario's, reproducibly: each parent's plan starts a
    random `0..fill_delay_s` seconds later (its fills, cancel, expiry and rejection move together), and
    with probability `drop_last_fill_p` loses its last fill (the parent stays partly filled, or unfilled
    when it had one fill). Draws come from `seed` (default: from the scenario's seed and the account's
    name)."""

    seed: int | None = None
    fill_delay_s: float = Field(default=0.0, ge=0, le=86_400, allow_inf_nan=False)
    drop_last_fill_p: float = Field(default=0.0, ge=0, le=1, allow_inf_nan=False)

    def apply(self, parents: list[ParentModel], default_seed: str) -> list[ParentModel]:
        """The parents with this variation applied (unchanged when it varies nothing)."""
        if self.fill_delay_s == 0 and self.drop_last_fill_p == 0:
            return parents
        rng = random.Random(self.seed if self.seed is not None else default_seed)
        varied: list[ParentModel] = []
        for parent in parents:
            delay = round(rng.uniform(0, self.fill_delay_s), 3)
            drop = rng.random() < self.drop_last_fill_p
            fills = sorted(parent.fills, key=lambda f: f.after_s)
            if drop and fills:
                fills = fills[:-1]
            varied.append(
                parent.model_copy(
                    update={
                        "fills": [
                            f.model_copy(update={"after_s": round(f.after_s + delay, 3)}) for f in fills
                        ],
                        "cancel_after_s": _later(parent.cancel_after_s, delay),
                        "expire_after_s": _later(parent.expire_after_s, delay),
                        "reject_after_s": _later(parent.reject_after_s, delay),
                    }
                )
            )
        return varied


def _later(after_s: float | None, delay: float) -> float | None:
    return None if after_s is None else round(after_s + delay, 3)


AccountName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


class AccountEntry(_Strict):
    """One account of a many-account simulator: its name and key pair, and what differs from the scenario's
    account (every field left out is the scenario's: `account.*`, `foreign_orders`, `faults`)."""

    name: AccountName
    key_id: str = Field(min_length=1, max_length=128)
    secret_key: str = Field(min_length=1, max_length=256)
    cash: Decimal | None = Field(default=None, gt=0)
    margin_multiplier: Literal[1, 2, 4] | None = None
    positions: list[StartingPosition] | None = None
    foreign_orders: list[ForeignOrderModel] | None = None
    faults: FaultConfig | None = None
    variation: VariationModel = VariationModel()


class AccountsGenerator(_Strict):
    """`count` accounts named `<key_prefix>-001`... (at least three digits): key id = the name, secret key =
    the name + `-secret`; each is the scenario's account with `variation` applied."""

    count: int = Field(ge=1, le=10_000)
    key_prefix: AccountName = "acct"
    variation: VariationModel = VariationModel()

    def entries(self) -> list[AccountEntry]:
        width = max(3, len(str(self.count)))
        names = [f"{self.key_prefix}-{i:0{width}d}" for i in range(1, self.count + 1)]
        return [
            AccountEntry(name=n, key_id=n, secret_key=f"{n}-secret", variation=self.variation) for n in names
        ]


class AccountSpec(_Strict):
    """One account as the simulator builds it, with everything resolved: the demo reads these to know each
    account's keys and (varied) parents. `key_id`/`secret_key` are None for the single account of a scenario
    without `accounts` (it takes the keys `serve` is given, or any non-empty pair)."""

    index: int
    name: str
    key_id: str | None
    secret_key: str | None
    cash: Decimal
    margin_multiplier: Literal[1, 2, 4]
    positions: list[StartingPosition]
    foreign_orders: list[ForeignOrderModel]
    faults: FaultConfig
    parents: list[ParentModel]

    @property
    def account_id(self) -> str:
        """A stable UUID for the account (Alpaca's `id`); the single account keeps the historical one."""
        if self.key_id is None:
            return ACCOUNT_ID
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"ordersync-sim/account/{self.name}"))

    @property
    def account_number(self) -> str:
        return ACCOUNT_NUMBER if self.key_id is None else f"PA0SIM{self.index + 1:06d}"


class ClientOrderTarget(_Strict):
    client_order_id: str = Field(min_length=1, max_length=128)


class RoleTarget(_Strict):
    """An order found by its place in a scenario parent's protection: resolved when the action runs."""

    parent: str = Field(min_length=1, max_length=128)
    role: Literal["entry", "take_profit", "stop_loss"]


Target = ClientOrderTarget | RoleTarget


class _Action(_Strict):
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


class RestartModel(_Strict):
    """An engine restart inside `ordersync demo` (the simulator ignores it)."""

    at_s: float = Field(ge=0, allow_inf_nan=False)


class MarketModel(_Strict):
    """`calendar: true` opens and closes the market on the NYSE calendar; false = always open.
    `done_for_day: true` (with the calendar): partially filled GTC orders go `done_for_day` at the close."""

    calendar: bool = False
    done_for_day: bool = False

    @model_validator(mode="after")
    def _needs_calendar(self) -> MarketModel:
        if self.done_for_day and not self.calendar:
            raise ValueError("done_for_day needs calendar: true")
        return self


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
    account: AccountModel = AccountModel()
    foreign_orders: list[ForeignOrderModel] = Field(default_factory=list)
    actions: list[Action] = Field(default_factory=list)
    restarts: list[RestartModel] = Field(default_factory=list)
    market: MarketModel = MarketModel()
    accounts: list[AccountEntry] | AccountsGenerator | None = None

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
            *(("account.positions", p.symbol) for p in self.account.positions),
            *(("foreign_orders", o.symbol) for o in self.foreign_orders),
            *((f"actions ({a.action})", _action_symbol(a)) for a in self.actions),
        ]:
            if symbol is not None and symbol not in self.symbols:
                raise ValueError(f"{where}: symbol {symbol!r} is not listed under symbols")
        ids = [p.id for p in self.parents] + [o.client_order_id for o in self.foreign_orders]
        if len(ids) != len(set(ids)):
            raise ValueError("parents and foreign_orders: ids must be unique (they are client_order_ids)")
        if "cash" in self.model_fields_set and self.account.cash is not None:
            raise ValueError("give cash once: top-level cash or account.cash")
        held = [p.symbol for p in self.account.positions]
        if len(held) != len(set(held)):
            raise ValueError("account.positions: one entry per symbol")
        self._check_accounts()
        parent_ids = {p.id for p in self.parents}
        for action in self.actions:
            target = getattr(action, "target", None)
            if isinstance(target, RoleTarget) and target.parent not in parent_ids:
                raise ValueError(f"actions: target parent {target.parent!r} is not a scenario parent")
        return self

    def _check_accounts(self) -> None:
        entries = self.account_entries()
        for field_name in ("name", "key_id"):
            values = [getattr(e, field_name) for e in entries]
            if len(values) != len(set(values)):
                raise ValueError(f"accounts: every {field_name} must be unique")
        for entry in entries:
            symbols = [p.symbol for p in entry.positions or []] + [
                o.symbol for o in entry.foreign_orders or []
            ]
            unknown = [s for s in symbols if s not in self.symbols]
            if unknown:
                raise ValueError(
                    f"accounts ({entry.name}): symbol {unknown[0]!r} is not listed under symbols"
                )
            held = [p.symbol for p in entry.positions or []]
            if len(held) != len(set(held)):
                raise ValueError(f"accounts ({entry.name}): positions: one entry per symbol")

    def with_accounts(
        self, count: int, key_prefix: str = "acct", variation: Mapping[str, object] | None = None
    ) -> Scenario:
        """This scenario on `count` generated accounts (`accounts: {count, key_prefix, variation}`), validated
        like a file: how a demo runs one scenario, with variations, over N accounts.

        Raises:
            ScenarioError: one line naming the bad field.
        """
        data = self.model_dump(mode="json", exclude_unset=True)
        data["accounts"] = {"count": count, "key_prefix": key_prefix, "variation": dict(variation or {})}
        return parse_scenario(data, f"{self.name} on {count} accounts")

    @property
    def accounts_declared(self) -> bool:
        """True when the scenario lists its accounts (keys from the scenario, many accounts)."""
        return self.accounts is not None

    def account_entries(self) -> list[AccountEntry]:
        """The declared accounts (generated ones expanded); empty without `accounts`."""
        if self.accounts is None:
            return []
        if isinstance(self.accounts, AccountsGenerator):
            return self.accounts.entries()
        return list(self.accounts)

    def account_specs(self) -> list[AccountSpec]:
        """Every account the simulator serves, resolved: one (keys from `serve`) without `accounts`."""
        entries = self.account_entries()
        if not entries:
            return [
                AccountSpec(
                    index=0,
                    name="default",
                    key_id=None,
                    secret_key=None,
                    cash=self.starting_cash,
                    margin_multiplier=self.account.margin_multiplier,
                    positions=list(self.account.positions),
                    foreign_orders=list(self.foreign_orders),
                    faults=self.faults,
                    parents=list(self.parents),
                )
            ]
        return [self._spec(index, entry) for index, entry in enumerate(entries)]

    def _spec(self, index: int, entry: AccountEntry) -> AccountSpec:
        def pick(value: object, default: object) -> object:
            return default if value is None else value

        return AccountSpec.model_validate(
            {
                "index": index,
                "name": entry.name,
                "key_id": entry.key_id,
                "secret_key": entry.secret_key,
                "cash": pick(entry.cash, self.starting_cash),
                "margin_multiplier": pick(entry.margin_multiplier, self.account.margin_multiplier),
                "positions": pick(entry.positions, list(self.account.positions)),
                "foreign_orders": pick(entry.foreign_orders, list(self.foreign_orders)),
                "faults": pick(entry.faults, self.faults),
                "parents": entry.variation.apply(list(self.parents), f"{self.seed}/{entry.name}"),
            }
        )

    @property
    def starting_cash(self) -> Decimal:
        return self.account.cash if self.account.cash is not None else self.cash

    def symbol_infos(self) -> list[SymbolInfo]:
        return [
            SymbolInfo(s, m.price, m.exchange, asset_id_for(s), m.fractionable)
            for s, m in self.symbols.items()
        ]

    def exchange_config(self, spec: AccountSpec | None = None) -> ExchangeConfig:
        """The broker model's settings for one account (the first, or only, one by default)."""
        account = spec if spec is not None else self.account_specs()[0]
        return ExchangeConfig(
            symbols=self.symbol_infos(),
            cash=account.cash,
            policy=Policy(shorting_enabled=self.shorting_enabled, wash_trade_check=self.wash_trade_check),
            latency=self.latency.venue(),
            plans={p.id: p.plan() for p in account.parents},
            prices=[PricePoint(p.at_s, p.symbol, p.price) for p in self.prices],
            positions=[
                (p.symbol, p.qty, p.avg_entry_price or self.symbols[p.symbol].price)
                for p in account.positions
            ],
            margin_multiplier=account.margin_multiplier,
            foreign_orders=[o.spec() for o in account.foreign_orders],
            calendar=self.market.calendar,
            done_for_day=self.market.done_for_day,
            account_id=account.account_id,
            account_number=account.account_number,
        )


def _action_symbol(
    action: CancelAction | ReplaceAction | ClosePositionAction | CancelAllAction | SubmitAction,
) -> str | None:
    if isinstance(action, ClosePositionAction):
        return action.symbol
    if isinstance(action, SubmitAction):
        return action.order.symbol
    return None


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
        first = _most_telling(e)
        where = ".".join(str(part) for part in first["loc"] if not _UNION_BRANCH.match(str(part)))
        raise ScenarioError(f"{source}: {where or '(top level)'}: {first['msg']}") from None


# A union (`accounts`: a list or a generator; action targets) reports one error per branch, named by the
# branch's type; the error that matters is the one from the branch the input's shape chose.
_UNION_BRANCH = re.compile(r"^(list\[\w+\]|[A-Z][a-z]+[A-Z]\w*)$")
_SHAPE_MISMATCH = frozenset({"list_type", "dict_type", "model_type", "model_attributes_type"})


def _most_telling(error: ValidationError) -> ErrorDetails:
    errors = error.errors()
    return next((e for e in errors if e["type"] not in _SHAPE_MISMATCH), errors[0])


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


def scenario_json_schema() -> JsonDict:
    """The JSON schema of a scenario file, from the models (checked in as docs/scenario.schema.json)."""
    schema: JsonDict = Scenario.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "ordersync simulator scenario"
    return schema


def write_json_schema(path: Path | str) -> None:
    """Write `scenario_json_schema()` to `path`, formatted as checked in."""
    Path(path).write_text(
        json.dumps(scenario_json_schema(), indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )


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
