"""Scenarios and clocks: the packaged seed incident, clear errors for bad files, and the three clock kinds."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest

from ordersync.sim import (
    ClockSpecError,
    FastClock,
    RealClock,
    ScenarioError,
    SimServer,
    SteppedClock,
    default_scenario,
    load_scenario,
    parse_clock_spec,
)


def test_default_scenario_has_the_seed_incidents_shape() -> None:
    """13 parents, one per symbol, submitted 15:59:13-16:03:49, open 2.9 to 386 minutes; partial fills on
    ET (4 before the last), EPD (3) and STWD (1): the seed's 5/4/2 refusals for a platform that re-sends
    the whole take-profit on each fill it notices."""
    scenario = default_scenario()

    assert scenario.start == datetime(2025, 10, 10, 15, 59, tzinfo=UTC)
    assert len(scenario.symbols) == 13
    parents = scenario.parents
    assert sorted(p.symbol for p in parents) == sorted(scenario.symbols), "one parent per symbol"
    assert all(p.side == "buy" and p.take_profit is not None for p in parents)
    assert sum(p.stop_loss is not None for p in parents) == 3
    submits = [timedelta(seconds=p.submit_at_s) for p in parents]
    assert (min(submits), max(submits)) == (timedelta(seconds=13), timedelta(minutes=4, seconds=49))
    open_minutes = [max(f.after_s for f in p.fills) / 60 for p in parents]
    assert round(min(open_minutes), 1) == 2.9
    assert max(open_minutes) == 386
    partials = {p.symbol: len(p.fills) - 1 for p in parents if len(p.fills) > 1}
    assert partials == {"ET": 4, "EPD": 3, "STWD": 1}


def test_the_seed_incident_replays_against_a_naive_client(client_for: Callable[..., TradingClient]) -> None:
    """Submit p01 as the seed's platform did and send its take-profit at once: refused, as on 2025-10-10."""
    with SimServer() as sim:
        client = client_for(sim, key="any", secret="pair")  # no keys configured: any non-empty pair
        p01 = next(p for p in sim.scenario.parents if p.id == "p01")
        sim.advance(p01.submit_at_s)
        parent = client.submit_order(
            MarketOrderRequest(
                symbol=p01.symbol, qty=float(p01.qty), side="buy", time_in_force="gtc", client_order_id="p01"
            )
        )
        take_profit = LimitOrderRequest(
            symbol=p01.symbol,
            qty=float(p01.qty),
            side="sell",
            time_in_force="gtc",
            limit_price=float(p01.take_profit.limit_price if p01.take_profit else 0),
        )
        with pytest.raises(APIError) as early:
            client.submit_order(take_profit)
        assert early.value.message == "cannot open a short sell while a long buy order is open"

        sim.advance(max(f.after_s for f in p01.fills) + 1)
        assert Decimal(str(client.get_order_by_id(parent.id).filled_qty)) == p01.qty
        assert client.submit_order(take_profit).symbol == p01.symbol


def test_malformed_scenario_is_a_one_line_error_naming_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "symbols: {OKE: {price: '72.10'}}\n"
        "parents:\n"
        "  - {id: p01, symbol: OKE, qty: '9', fills: [{after_s: 10, qty: '-1'}]}\n"
    )
    with pytest.raises(ScenarioError) as excinfo:
        load_scenario(bad)
    message = str(excinfo.value)
    assert "parents.0.fills.0.qty" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("symbols: {OKE: {price: '1'}}\nfaults: {drop_event_p: 2}\n", "faults.drop_event_p"),
        ("symbols: {OKE: {price: '1'}}\nprices: [{at_s: 1, symbol: XYZ, price: '2'}]\n", "symbol 'XYZ'"),
        ("symbols: {OKE: {price: '1'}}\ntypo_key: 1\n", "typo_key"),
        ("symbols: {OKE: {price: '1', exchange: IEX}}\n", "symbols.OKE.exchange"),
        ("symbols: [unclosed\n", "not valid YAML"),
        ("- just a list\n", "top level must be a mapping"),
    ],
)
def test_scenario_errors_name_the_problem(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError, match=expected):
        load_scenario(path)


def test_missing_scenario_file_is_a_scenario_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "nope.yaml")


def test_clock_specs() -> None:
    start = datetime(2025, 10, 10, 15, 59, tzinfo=UTC)
    assert isinstance(parse_clock_spec("real"), RealClock)
    fast = parse_clock_spec("fast:3600", start)
    assert isinstance(fast, FastClock)
    assert fast.now() >= start
    stepped = parse_clock_spec("stepped", start)
    assert isinstance(stepped, SteppedClock)
    assert stepped.advance(90) == start + timedelta(seconds=90)
    for bad in ("slow", "fast:", "fast:-2", "fast:x"):
        with pytest.raises(ClockSpecError):
            parse_clock_spec(bad, start)


def test_stepped_clock_advance_fires_due_events_at_their_own_times(
    client_for: Callable[..., TradingClient],
) -> None:
    clock = SteppedClock(datetime(2025, 10, 10, 15, 59, tzinfo=UTC))
    with SimServer(clock=clock) as sim:
        client = client_for(sim, key="k", secret="s")
        parent = client.submit_order(
            MarketOrderRequest(symbol="OKE", qty=9, side="buy", time_in_force="gtc", client_order_id="p02")
        )
        clock.advance(3600)  # the clock itself drives the simulator's scheduler

        order = client.get_order_by_id(parent.id)
        assert order.filled_at == parent.submitted_at + timedelta(seconds=204)  # p02's plan: all 9 at 204 s
        assert order.filled_avg_price is not None
        with pytest.raises(ValueError, match="back"):
            clock.advance_to(parent.submitted_at)


def test_fast_clock_fills_a_plan_in_real_time(client_for: Callable[..., TradingClient]) -> None:
    start = datetime(2025, 10, 10, 15, 59, tzinfo=UTC)
    with SimServer(clock=FastClock(2000, start)) as sim:  # 300 virtual seconds in about 0.15 s
        client = client_for(sim, key="k", secret="s")
        parent = client.submit_order(
            MarketOrderRequest(symbol="OKE", qty=9, side="buy", time_in_force="gtc", client_order_id="p02")
        )
        deadline = sim.now() + timedelta(seconds=400)
        while client.get_order_by_id(parent.id).status != "filled":
            assert sim.now() < deadline, "the plan did not fill on the fast clock"
        with pytest.raises(RuntimeError, match="not stepped"):
            sim.advance(1)
