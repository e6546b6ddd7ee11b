"""The contract of `ordersync demo --json` as pydantic models; docs/demo.schema.json from them.

``summary.py`` writes a plain dataclass as JSON; this module states the same shape for whoever consumes it
(a CI job gating on the demo, a dashboard), so nobody has to read the source to learn that quantities are
decimal strings (exact, never floats) and counts are integers. Regenerate the published schema after a change
with ``python -m ordersync.demo.schema > docs/demo.schema.json``; a test fails while the file is stale and
another validates every mode's real output against it. Loaded only by tests and this command.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

Mode = Literal["safe", "naive", "poller", "bracket"]
DecimalText = str


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class FillToProtect(_Model):
    """Milliseconds of virtual time from a parent's fill to a live exit covering it (null: no sample)."""

    p50: float | None
    p99: float | None
    max: float | None
    n: int = Field(description="fills measured")


def _qty(description: str) -> Any:
    return Field(description=f"{description} (a decimal number as a string)", pattern=r"^-?\d+(\.\d+)?$")


class DemoSummary(_Model):
    """One mode's run of one scenario; every figure is read from the simulator's books, not the client's."""

    mode: Mode
    scenario: str = Field(description="the scenario's name")
    parents: int = Field(description="entry orders the scenario defines")
    children_submitted: int = Field(description="exit orders the mode submitted")
    broker_rejections: int = Field(description="submits the broker refused, every code")
    insufficient_qty_rejections: int = Field(description="403 40310000 refusals (the incident's symptom)")
    wash_trade_rejections: int = Field(description="refusals as a potential wash trade, counted apart")
    unprotected_qty: DecimalText = _qty("our filled shares without a live exit at the end")
    overprotected_qty: DecimalText = _qty("exit shares beyond our filled shares at the end")
    duplicate_submissions: int = Field(description="one intent that reached the broker more than once")
    discrepancies: int = Field(description="reconciliation differences still alerted at the end")
    unprotected_share_s: DecimalText = _qty("exposure: sum over virtual time of unprotected filled shares")
    others_qty: DecimalText = _qty("shares at the end that our orders did not trade (other apps, a person)")
    exits_on_others_qty: DecimalText = _qty("our live exits reserving shares that are not ours")
    operator_unprotected_qty: DecimalText = _qty(
        "our filled shares a person deliberately left without an exit (cancelled our protection)"
    )
    fill_to_protect_ms: FillToProtect
    broker_requests: int = Field(description="HTTP requests the mode made to the broker")
    alerts: dict[str, int] = Field(description="alerts raised during the run, by kind")
    faults: dict[str, int] = Field(description="faults the simulator injected, by kind")
    virtual_duration_s: float
    real_duration_s: float
    errors: list[str] = Field(description="what the demo could not do (e.g. a final read)")
    notes: list[str] = Field(description="what the mode did differently from the scenario")
    refused: str | None = Field(description="why the mode cannot play the scenario (every figure is void)")


class DemoComparison(RootModel[dict[Mode, DemoSummary]]):
    """``demo --compare --json``: one summary per mode, keyed by mode."""


class KilledWorker(_Model):
    """The worker ``demo --accounts`` SIGKILLed mid-run."""

    pid: int
    accounts: list[str] = Field(description="the accounts it ran when it died")
    at_s: float = Field(description="real seconds into the timeline")
    fills_before: int = Field(description="fills its accounts had received when it died")
    fills_after: int = Field(description="fills its accounts received after (the other workers protected)")
    takeover_s: float | None = Field(description="seconds until other workers ran all its accounts")


class DemoFleet(_Model):
    """``demo --accounts N --workers W --json``: every account's summary (mode safe) and the totals."""

    mode: Literal["fleet"]
    scenario: str = Field(description="the scenario's name")
    workers: int = Field(description="worker processes started (before the kill)")
    database: str = Field(description="host:port/database of the PostgreSQL server used (no credentials)")
    compression: float = Field(description="scenario seconds per real second")
    killed_worker: KilledWorker | None
    accounts: dict[str, DemoSummary] = Field(description="one summary per account, by account name")
    total: DemoSummary | None = Field(description="counts and quantities summed; fill_to_protect_ms pooled")
    failing_accounts: list[str] = Field(description="accounts whose figures show the incident's symptoms")
    real_duration_s: float
    errors: list[str] = Field(description="what the demo could not do (not settled, a secret in a log)")


class DemoOutput(RootModel[DemoSummary | DemoComparison | DemoFleet]):
    """What ``ordersync demo --json`` prints: one summary, or with ``--compare`` one per mode, or with
    ``--accounts`` the fleet's summary."""


def json_schema() -> str:
    """The published JSON Schema text (docs/demo.schema.json)."""
    schema = DemoOutput.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://github.com/ordersync/ordersync/docs/demo.schema.json"
    schema["title"] = "ordersync demo --json"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    import sys

    sys.stdout.write(json_schema())
