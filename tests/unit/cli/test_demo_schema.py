"""`ordersync demo --json` follows docs/demo.schema.json (the e2e demo tests validate real runs too)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from ordersync.demo.schema import DemoOutput, DemoSummary, json_schema
from ordersync.demo.summary import Summary, percentiles

SCHEMA = Path(__file__).resolve().parents[3] / "docs" / "demo.schema.json"


def _summary(mode: str) -> Summary:
    return Summary(
        mode=mode,
        scenario="s",
        unprotected_qty="1.5",
        fill_to_protect_ms=percentiles([12.0, 80.5]),
        alerts={"position_drift": 1},
    )


def test_the_published_schema_is_the_generated_one() -> None:
    assert SCHEMA.read_text(encoding="utf-8") == json_schema(), (
        "regenerate: python -m ordersync.demo.schema > docs/demo.schema.json"
    )


def test_the_schema_names_every_figure_of_the_summary_and_nothing_else() -> None:
    assert set(DemoSummary.model_fields) == {f.name for f in dataclasses.fields(Summary)}


def test_one_summary_and_a_comparison_both_validate() -> None:
    one = json.dumps(_summary("safe").as_dict())
    both = json.dumps({m: _summary(m).as_dict() for m in ("safe", "naive", "poller", "bracket")})
    assert isinstance(DemoOutput.model_validate_json(one).root, DemoSummary)
    assert set(DemoOutput.model_validate_json(both).root.root) == {"safe", "naive", "poller", "bracket"}  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("key", "value"),
    [("unprotected_qty", 1.5), ("parents", "3"), ("mode", "fast"), ("surprise", 1)],
    ids=["quantity-as-float", "count-as-string", "unknown-mode", "unknown-key"],
)
def test_the_schema_rejects_a_summary_that_breaks_the_contract(key: str, value: object) -> None:
    doc = {**_summary("safe").as_dict(), key: value}
    with pytest.raises(ValidationError):
        DemoSummary.model_validate_json(json.dumps(doc))


def test_the_fleet_summary_validates_as_demo_fleet() -> None:
    from ordersync.demo.fleet_summary import FleetSummary, KilledWorker, totals
    from ordersync.demo.schema import DemoFleet

    accounts = {"demo-001": _summary("safe"), "demo-002": _summary("safe")}
    fleet = FleetSummary("seed-incident", 2, "127.0.0.1:5432/test", accounts=accounts, compression=390.2)
    fleet.total = totals("seed-incident", list(accounts.values()), [12.0, 80.5, 30.0])
    fleet.killed = KilledWorker(pid=42, accounts=["demo-001"], at_s=15.0, fills_before=20, fills_after=9)
    parsed = DemoOutput.model_validate_json(json.dumps(fleet.as_dict())).root
    assert isinstance(parsed, DemoFleet)
    assert parsed.failing_accounts == ["demo-001", "demo-002"]  # each has 1.5 shares unprotected
    assert parsed.total is not None
    assert parsed.total.unprotected_qty == "3"
    assert parsed.total.fill_to_protect_ms.n == 3
