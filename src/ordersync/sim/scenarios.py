"""Scenario files: the market, the account and the broker's behaviour for one simulator run, as YAML.

A scenario is validated into pydantic models; any problem is a `ScenarioError` whose message is one line
naming the field (`parents.3.fills.0.qty: Input should be greater than 0`). Every key is documented, with
examples, in docs/scenarios.md; docs/scenario.schema.json is generated from these models
(`write_json_schema`). Version 2 only adds keys (account, foreign_orders, actions, restarts, market, fault
windows, exit offsets and trailing stops, virtual HTTP latency), so every version 1 file stays valid.

The packaged default, `scenarios/seed_incident.yaml`, reproduces the seed incident.

The parts live by concept (``scenario_market``: symbols, parents, the account, latency, the calendar;
``scenario_accounts``: many accounts; ``scenario_actions``: a person's actions and restarts); the root model
``Scenario`` is here, with every check that needs the whole scenario, and so is every top-level key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from importlib import resources
from pathlib import Path

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from .checks import Policy
from .exchange_config import ExchangeConfig, PricePoint
from .faults import FaultConfig
from .model import SymbolInfo
from .scenario_accounts import AccountEntry, AccountsGenerator, AccountSpec, VariationModel
from .scenario_actions import (
    Action,
    CancelAction,
    CancelAllAction,
    ClientOrderTarget,
    ClosePositionAction,
    ReplaceAction,
    RestartModel,
    RoleTarget,
    SubmitAction,
    Target,
    action_symbol,
)
from .scenario_market import (
    AccountModel,
    Exchange,
    FillStepModel,
    ForeignOrderModel,
    LatencyModel,
    MarketModel,
    OrderModel,
    ParentModel,
    PriceMove,
    StartingPosition,
    StopLossModel,
    StrictModel,
    SymbolModel,
    TakeProfitModel,
)
from .wire import JsonDict, asset_id_for

__all__ = [
    "AccountEntry",
    "AccountModel",
    "AccountSpec",
    "AccountsGenerator",
    "Action",
    "CancelAction",
    "CancelAllAction",
    "ClientOrderTarget",
    "ClosePositionAction",
    "Exchange",
    "FillStepModel",
    "ForeignOrderModel",
    "LatencyModel",
    "MarketModel",
    "OrderModel",
    "ParentModel",
    "PriceMove",
    "ReplaceAction",
    "RestartModel",
    "RoleTarget",
    "Scenario",
    "ScenarioError",
    "StartingPosition",
    "StopLossModel",
    "SubmitAction",
    "SymbolModel",
    "TakeProfitModel",
    "Target",
    "VariationModel",
    "default_scenario",
    "load_scenario",
    "parse_scenario",
    "scenario_json_schema",
    "write_json_schema",
]


class ScenarioError(ValueError):
    """A scenario file is missing, is not YAML, or does not validate; the message is one line."""


class Scenario(StrictModel):
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
            *((f"actions ({a.action})", action_symbol(a)) for a in self.actions),
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
