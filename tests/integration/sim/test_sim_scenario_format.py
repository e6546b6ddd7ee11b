"""Scenario format version 2: the checked-in JSON schema is current, every new key validates, version 1 files
still load, and a bad file gives one line naming the field."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from simtools import scenario

from ordersync.sim import Scenario, ScenarioError, Simulator, SteppedClock, default_scenario, load_scenario
from ordersync.sim.scenarios import ClientOrderTarget, RoleTarget, scenario_json_schema

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures" / "scenarios"


def test_the_checked_in_json_schema_is_the_generated_one() -> None:
    checked_in = json.loads((ROOT / "docs" / "scenario.schema.json").read_text(encoding="utf-8"))

    assert checked_in == scenario_json_schema(), (
        "regenerate docs/scenario.schema.json (see docs/scenarios.md)"
    )


def test_the_v2_reference_file_loads_with_every_key() -> None:
    loaded = load_scenario(FIXTURES / "v2_everything.yaml")

    assert loaded.starting_cash == Decimal("250000")
    assert loaded.account.margin_multiplier == 2
    assert [(p.symbol, p.qty) for p in loaded.account.positions] == [("OKE", 40), ("WMB", Decimal("0.5"))]
    assert [o.client_order_id for o in loaded.foreign_orders] == ["other-app-1", "other-app-2"]
    assert [a.action for a in loaded.actions] == [
        "cancel",
        "cancel",
        "replace",
        "close_position",
        "cancel_all",
        "submit",
    ]
    first, second = loaded.actions[0], loaded.actions[1]
    assert first.action == "cancel"
    assert first.target == RoleTarget(parent="p01", role="take_profit")
    assert second.action == "cancel"
    assert second.target == ClientOrderTarget(client_order_id="other-app-1")
    p01, p02, p03 = loaded.parents
    assert p01.policy == "full_fill"
    assert p01.take_profit is not None
    assert p01.take_profit.offset == Decimal("0.04")
    assert p01.stop_loss is not None
    assert p01.stop_loss.kind == "stop_limit"
    assert p02.stop_loss is not None
    assert p02.stop_loss.kind == "trailing_stop"
    assert p03.stop_loss is not None
    assert p03.stop_loss.kind == "stop_limit"
    assert [r.at_s for r in loaded.restarts] == [450]
    assert loaded.market.calendar
    assert loaded.symbols["BRKB"].fractionable is False
    assert [w.from_s for w in loaded.faults.windows] == [100, 500, 600, 900, 1200]
    assert loaded.latency.venue().replace_s == 0.2


def test_version_1_files_keep_their_meaning() -> None:
    seed = default_scenario()

    assert seed.account.positions == []
    assert seed.foreign_orders == []
    assert seed.actions == []
    assert not seed.market.calendar
    assert seed.faults.windows == []
    assert seed.starting_cash == Decimal(1_000_000)
    assert seed.latency.venue().replace_s == seed.latency.cancel_s  # a PATCH confirms like a cancel


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"cash": "5", "account": {"cash": "6"}}, "give cash once"),
        ({"account": {"margin_multiplier": 3}}, "account.margin_multiplier"),
        ({"account": {"positions": [{"symbol": "NOPE", "qty": "1"}]}}, "symbol 'NOPE' is not listed"),
        ({"account": {"positions": [{"symbol": "OKE", "qty": "0"}]}}, "qty must be a non-zero number"),
        (
            {"actions": [{"at_s": 1, "action": "cancel", "target": {"parent": "nope", "role": "entry"}}]},
            "target parent 'nope' is not a scenario parent",
        ),
        (
            {"actions": [{"at_s": 1, "action": "replace", "target": {"client_order_id": "x"}}]},
            "give at least one of qty",
        ),
        ({"actions": [{"at_s": 1, "action": "explode"}]}, "actions.0"),
        (
            {
                "foreign_orders": [
                    {"client_order_id": "o", "symbol": "OKE", "side": "sell", "qty": "1", "type": "limit"}
                ]
            },
            "limit_price is required for limit orders",
        ),
        ({"faults": {"windows": [{"from_s": 10, "to_s": 5}]}}, "to_s must be after from_s"),
        ({"faults": {"windows": [{"from_s": 0, "to_s": 5, "http_5xx_statuses": [404]}]}}, "5xx"),
        ({"market": {"calendar": "sometimes"}}, "market.calendar"),
        ({"restarts": [{"at_s": -1}]}, "restarts.0.at_s"),
        ({"latency": {"http_s": 1e309}}, "latency.http_s"),
    ],
)
def test_a_bad_v2_key_gives_one_line_naming_it(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ScenarioError) as raised:
        scenario(**overrides)

    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("exit_key", "value", "message"),
    [
        ("take_profit", {"limit_price": "80", "offset": 0.1}, "exactly one of limit_price or offset"),
        ("take_profit", {"offset": 1.5}, "take_profit.offset"),
        ("stop_loss", {"stop_price": "60", "trail_percent": "2"}, "exactly one of stop_price"),
        ("stop_loss", {"offset": 0.02, "limit_price": "60"}, "limit_price goes with stop_price"),
        ("stop_loss", {"trail_price": "1", "limit_offset": 0.02}, "limit_offset goes with offset"),
    ],
)
def test_a_bad_exit_form_is_refused(exit_key: str, value: dict[str, Any], message: str) -> None:
    parent = {"id": "p1", "symbol": "OKE", "qty": "1", exit_key: value}

    with pytest.raises(ScenarioError) as raised:
        scenario(parents=[parent])

    assert message in str(raised.value)


FIXTURE_FILES = sorted(FIXTURES.glob("*.yaml"))
ACCOUNT_ACTION_FILES = {
    "action_cancel_take_profit.yaml": {"cancel", "replace"},
    "action_edit_entry_mid_fill.yaml": {"replace"},
    "action_close_position.yaml": {"close_position"},
    "action_cancel_all.yaml": {"cancel_all"},
    "action_sell_by_hand.yaml": {"submit", "cancel"},
}
FAULT_FILES = {
    "fault_stream_silent_window.yaml": "stream_silent",
    "fault_lossy_live_stream.yaml": "drop_event_p",
    "fault_429_storm.yaml": "http_429_storm",
    "fault_5xx_post_orders.yaml": "http_5xx_p",
    "fault_lost_post_responses.yaml": "lost_response_p",
}


def _last_time_s(loaded: Scenario) -> float:
    times = [a.at_s for a in loaded.actions] + [w.to_s for w in loaded.faults.windows]
    times += [p.submit_at_s + max((f.after_s for f in p.fills), default=0) for p in loaded.parents]
    return max(times, default=0) + 60


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: p.name)
def test_every_fixture_scenario_loads_and_runs_to_its_end(path: Path) -> None:
    """Each file validates, builds a simulator (foreign orders accepted by the account) and runs past its
    last action and window with no client: unresolved targets are logged, never raised."""
    loaded = load_scenario(path)
    assert loaded.start is not None
    clock = SteppedClock(loaded.start)
    simulator = Simulator(loaded, clock)

    simulator.exchange.advance_to(loaded.start + timedelta(seconds=_last_time_s(loaded)))

    assert len(simulator.state()["actions"]) >= len(loaded.actions)


@pytest.mark.parametrize(("name", "kinds"), sorted(ACCOUNT_ACTION_FILES.items()))
def test_there_is_a_scenario_for_each_kind_of_account_action(name: str, kinds: set[str]) -> None:
    loaded = load_scenario(FIXTURES / name)

    assert kinds <= {a.action for a in loaded.actions}


def test_there_is_a_scenario_with_another_applications_orders_and_shares() -> None:
    loaded = load_scenario(FIXTURES / "foreign_orders_same_symbol.yaml")

    foreign_symbols = {o.symbol for o in loaded.foreign_orders}
    assert foreign_symbols & {p.symbol for p in loaded.parents} == foreign_symbols
    assert {p.symbol for p in loaded.account.positions} >= foreign_symbols


@pytest.mark.parametrize(("name", "key"), sorted(FAULT_FILES.items()))
def test_there_is_a_scenario_for_each_windowed_fault(name: str, key: str) -> None:
    loaded = load_scenario(FIXTURES / name)

    assert any(getattr(w, key) for w in loaded.faults.windows)
