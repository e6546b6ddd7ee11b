"""Exit kinds and the wash-trade rule through `ordersync demo` in safe mode (docs/architecture.md §14).

The fixtures (tests/fixtures/scenarios/wash_trade_stop_only.yaml, fractional_and_sessions.yaml,
restart_and_market_close.yaml) run in test_demo_scenarios.py with every figure 0; here, what their books show.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ordersync.demo.run import DemoOptions, run_demo
from ordersync.demo.summary import Summary
from ordersync.sim.scenarios import load_scenario, parse_scenario

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).parents[1] / "fixtures" / "scenarios"


def _run(scenario: Any) -> tuple[Summary, dict[str, Any]]:
    books: list[dict[str, Any]] = []
    summary = asyncio.run(run_demo(scenario, DemoOptions(mode="safe", stall_s=20), None, books.append))
    return summary, books[0]


def _orders(books: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    return [o for o in books["orders"] if o["client_order_id"].startswith(prefix)]


@pytest.fixture(scope="module")
def wash() -> tuple[Summary, dict[str, Any]]:
    return _run(load_scenario(FIXTURES / "wash_trade_stop_only.yaml"))


def test_stop_only_parents_beside_our_working_buys_are_protected_after_the_bound_by_cutting_the_buys(
    wash: tuple[Summary, dict[str, Any]],
) -> None:
    summary, books = wash
    (big,) = [o for o in books["orders"] if o["client_order_id"] == "big"]
    stops = [o for o in _orders(books, "big~") if o["type"] == "stop"]

    assert big["status"] == "canceled"  # its rest was cut so that its filled shares get their stop
    assert sum(Decimal(s["qty"]) for s in stops) == Decimal(big["filled_qty"])
    assert summary.wash_trade_rejections == 0  # the engine never sent a stop the broker would refuse
    assert summary.unprotected_qty == "0"
    assert summary.fill_to_protect_ms["max"] is not None
    assert summary.fill_to_protect_ms["max"] <= 60_000  # issue 13: fill -> protect within 60 s of market time


def test_a_foreign_buy_blocking_our_lone_stop_is_counted_as_wash_trade_not_insufficient_qty() -> None:
    scenario = parse_scenario(
        {
            "name": "foreign-wash",
            "start": "2025-10-10T14:00:00Z",
            "latency": {"ack_s": 0.05, "fill_s": 0.05, "cancel_s": 0.1},
            "symbols": {"KMI": {"price": "27.40"}},
            "foreign_orders": [
                {
                    "client_order_id": "other-app",
                    "symbol": "KMI",
                    "side": "buy",
                    "qty": "5",
                    "type": "limit",
                    "limit_price": "27.00",
                }
            ],
            "parents": [
                {
                    "id": "s01",
                    "symbol": "KMI",
                    "qty": "10",
                    "submit_at_s": 10,
                    "fills": [{"after_s": 5, "qty": "10"}],
                    "stop_loss": {"stop_price": "26.50"},
                }
            ],
            "actions": [{"at_s": 200, "action": "cancel", "target": {"client_order_id": "other-app"}}],
        }
    )

    summary, books = _run(scenario)

    assert summary.wash_trade_rejections >= 1
    assert summary.insufficient_qty_rejections == 0
    assert summary.unprotected_qty == "0"
    assert [o["status"] for o in _orders(books, "s01~") if o["status"] != "rejected"] == ["new"]
