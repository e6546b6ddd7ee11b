"""Many accounts in one simulator: declared accounts, generated ones, per-account variations of the fill
plans, and ``AccountSpec``, an account with everything resolved (what the simulator builds and the demo
reads for each account's keys and parents).

Apart from the market because only a many-account run needs it: a scenario without ``accounts`` is one
account made of the scenario's own ``account``, ``foreign_orders``, ``faults`` and ``parents``.
"""

from __future__ import annotations

import random
import uuid
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field

from .faults import FaultConfig
from .scenario_market import ForeignOrderModel, ParentModel, StartingPosition, StrictModel
from .serialize import ACCOUNT_ID, ACCOUNT_NUMBER


class VariationModel(StrictModel):
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


class AccountEntry(StrictModel):
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


class AccountsGenerator(StrictModel):
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


class AccountSpec(StrictModel):
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
