"""`check_at_broker` (issue 19's first part) against the in-process simulator through alpaca-py.

The simulator holds a filled buy of 10 OKE and one open take-profit selling 4 of them; the report (built
from records, as a log would give them) names the buy, the take-profit and an order the broker never saw.
The check must read them without changing anything, find 6 shares unprotected now, and report the
unknown order instead of failing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, TimeInForce
from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest
from inprocess import KEY, SECRET, position, start_simulator, until
from typer.testing import CliRunner

from ordersync.brokers.alpaca import AlpacaBroker
from ordersync.cli import app
from ordersync.clocks import SystemClock
from ordersync.forensics import ErrorBody, Rejection, Submission, analyze_records
from ordersync.forensics.schema import AnalyzeReport
from ordersync.incident_check import check_at_broker
from ordersync.sim.server import SimServer

UNKNOWN = "6f1c2d3e-0000-4000-8000-000000000042"  # a well-formed id the broker never issued


@pytest.fixture
def sim() -> Iterator[SimServer]:
    server = start_simulator("verify", cancel_s=0.05)
    try:
        yield server
    finally:
        server.stop()


def wait_for(predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "the simulator did not get there"
        time.sleep(0.05)


def reserved(symbol: str, qty: int, related: str) -> ErrorBody:
    q = Decimal(qty)
    return ErrorBody(
        code=40310000,
        message=f"insufficient qty available for order (requested: {qty}, available: 0)",
        symbol=symbol,
        available=Decimal(0),
        existing_qty=q,
        held_for_orders=q,
        related_orders=(related,),
    )


async def test_check_reads_orders_and_positions_and_finds_the_unprotected_shares(sim: SimServer) -> None:
    client = TradingClient(KEY, SECRET, url_override=sim.base_url)
    buy = client.submit_order(
        MarketOrderRequest(symbol="OKE", qty=10, side=OrderSide.BUY, time_in_force=TimeInForce.DAY)
    )
    assert await until(lambda: position(sim) == 10, "the buy filled")
    tp = client.submit_order(
        LimitOrderRequest(
            symbol="OKE", qty=4, side=OrderSide.SELL, time_in_force=TimeInForce.GTC, limit_price=90
        )
    )
    acked = lambda: all(o["status"] not in ("pending_new", "accepted") for o in sim.snapshot()["orders"])  # noqa: E731
    assert await until(acked, "the take-profit was acknowledged")  # no change left in flight
    now = datetime.now(UTC)
    records = [
        Submission(str(buy.id), now, symbol="OKE", side="buy", qty=Decimal(10)),
        Submission(str(tp.id), now, symbol="OKE", side="sell", qty=Decimal(4)),
        Rejection(reserved("OKE", 10, str(tp.id)), now),
        Rejection(reserved("OKE", 10, UNKNOWN), now),
        Rejection(reserved("OKE", 10, "not-an-alpaca-id"), now),
    ]
    report = analyze_records(records)
    before = sim.snapshot()
    broker = AlpacaBroker(KEY, SECRET, clock=SystemClock(), base_url=sim.base_url, timeout_s=5)

    check = await check_at_broker(report, broker, max_requests=10)

    assert sim.snapshot()["orders"] == before["orders"]  # read-only
    (oke,) = check.symbols
    assert (oke.qty, oke.unprotected, [h.order.broker_order_id for h in oke.holders]) == (
        Decimal(10),
        Decimal(6),
        [str(tp.id)],
    )
    assert check.unprotected_now
    assert set(check.unknown_orders) == {UNKNOWN, "not-an-alpaca-id"}
    parent = next(c for c in check.parents if c.order_id == str(buy.id))
    assert parent.order is not None
    assert str(parent.order.status) == "filled"
    assert str(tp.id) in parent.verdict
    assert check.requests <= 10


async def test_the_request_budget_is_never_exceeded(sim: SimServer) -> None:
    ids = [f"00000000-0000-4000-8000-00000000000{i}" for i in range(8)]
    report = analyze_records([Rejection(reserved("OKE", 9, i), datetime.now(UTC)) for i in ids])
    broker = AlpacaBroker(KEY, SECRET, clock=SystemClock(), base_url=sim.base_url, timeout_s=5)
    seen: list[tuple[int, int]] = []
    check = await check_at_broker(report, broker, max_requests=3, on_read=lambda *a: seen.append(a))
    assert check.requests == 3
    assert seen == [(1, 3), (2, 3), (3, 3)]  # what the progress bar is drawn from
    assert len(check.unknown_orders) + len(check.unread_orders) == 8
    assert check.unread_orders  # said, not silently dropped


def seed_log(path: Path, buy_id: str, tp_id: str) -> Path:
    body = (
        '{"available":"0","code":40310000,"existing_qty":"10","held_for_orders":"10",'
        '"message":"insufficient qty available for order (requested: 10, available: 0)",'
        f'"related_orders":["{tp_id}"],"symbol":"OKE"}}'
    )
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S,000")
    path.write_text(
        f"{stamp} - AlpacaAccount - INFO - Successfully submitted order to Alpaca: broker_order_id={buy_id} "
        "symbol=OKE side=buy qty=10\n"
        f"{stamp} - AlpacaAccount - INFO - Successfully submitted order to Alpaca: broker_order_id={tp_id} "
        "symbol=OKE side=sell qty=4\n"
        f"{stamp} - AlpacaAccount - ERROR - Error submitting order to Alpaca: {body}\n"
    )
    return path


def test_cli_verify_exits_1_while_shares_are_unprotected_then_0(sim: SimServer, tmp_path: Path) -> None:
    client = TradingClient(KEY, SECRET, url_override=sim.base_url)
    buy = client.submit_order(
        MarketOrderRequest(symbol="OKE", qty=10, side=OrderSide.BUY, time_in_force=TimeInForce.DAY)
    )
    wait_for(lambda: position(sim) == 10)
    tp = client.submit_order(
        LimitOrderRequest(
            symbol="OKE", qty=4, side=OrderSide.SELL, time_in_force=TimeInForce.GTC, limit_price=90
        )
    )
    log = seed_log(tmp_path / "platform.log", str(buy.id), str(tp.id))
    config = tmp_path / "config.yaml"
    config.write_text(f"broker: {{base_url: '{sim.base_url}', paper: true}}\n")
    env = {"APCA_API_KEY_ID": KEY, "APCA_API_SECRET_KEY": SECRET}
    args = ["analyze", str(log), "--verify", "--config", str(config), "--format", "json"]

    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 1, result.stderr
    AnalyzeReport.model_validate_json(result.stdout)  # the `validation` key follows the published schema
    validation = json.loads(result.stdout)["validation"]
    assert validation["symbols"][0]["unprotected"] == "6"
    html = CliRunner().invoke(app, [*args[:-2], "--format", "html"], env=env)
    assert html.exit_code == 1
    assert "<h2>Validation at the broker</h2>" in html.stdout
    assert html.stdout.rstrip().endswith("</body></html>")
    assert validation["parents"][0]["status"] == "filled"

    client.submit_order(
        LimitOrderRequest(
            symbol="OKE", qty=6, side=OrderSide.SELL, time_in_force=TimeInForce.GTC, limit_price=91
        )
    )
    result = CliRunner().invoke(app, [*args[:-2], "--format", "md"], env=env)
    assert result.exit_code == 0, result.stderr
    assert "## Validation at the broker" in result.stdout
