"""The account-level endpoints (activities, assets, calendar, configurations, close-all) through raw HTTP and
alpaca-py against a running simulator."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import (
    AssetClass,
    AssetExchange,
    AssetStatus,
    OrderClass,
    OrderSide,
    TradeConfirmationEmail,
)
from alpaca.trading.models import Order, TradeActivity
from alpaca.trading.requests import (
    GetAssetsRequest,
    GetCalendarRequest,
    GetOrderByIdRequest,
    LimitOrderRequest,
    MarketOrderRequest,
)
from simtools import HEADERS

from ordersync.sim import RealClock, SimServer, default_scenario


def get(sim: SimServer, path: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{sim.base_url}{path}", params=params, headers=HEADERS, timeout=10)


def fills(sim: SimServer, path: str = "/v2/account/activities/FILL", **params: Any) -> list[dict[str, Any]]:
    response = get(sim, path, **params)
    assert response.status_code == 200, response.text
    rows = response.json()
    assert isinstance(rows, list)
    return rows


def buy(symbol: str, qty: float, coid: str | None = None) -> MarketOrderRequest:
    return MarketOrderRequest(symbol=symbol, qty=qty, side="buy", time_in_force="gtc", client_order_id=coid)


def bracket_buy(symbol: str, qty: float, limit: float, take_profit: float, stop: float) -> LimitOrderRequest:
    return LimitOrderRequest(
        symbol=symbol,
        qty=qty,
        side="buy",
        time_in_force="gtc",
        limit_price=limit,
        order_class=OrderClass.BRACKET,
        take_profit={"limit_price": take_profit},
        stop_loss={"stop_price": stop},
    )


# -- activities ------------------------------------------------------------------------------------------


def test_fill_activities_list_every_execution_of_every_order_legs_included(
    make_sim: Callable[..., SimServer], client_for: Callable[..., TradingClient]
) -> None:
    sim = make_sim()
    client = client_for(sim)
    planned = client.submit_order(buy("EPD", 10, coid="plan-epd"))  # plan: 3 at 60 s, 4 at 120 s
    sim.advance(121)
    entry = client.submit_order(bracket_buy("OKE", 5, limit=73, take_profit=74, stop=70))
    sim.advance(1)
    sim.set_price("OKE", "74.50")  # the entry fills at its limit or better, then the take-profit fills
    sim.advance(1)
    nested = client.get_order_by_id(entry.id, GetOrderByIdRequest(nested=True))
    take_profit = next(leg for leg in nested.legs or [] if leg.limit_price is not None)

    rows = fills(sim)

    by_order: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_order.setdefault(row["order_id"], []).append(row)
    assert set(by_order) == {str(planned.id), str(entry.id), str(take_profit.id)}
    for order_id, order_rows in by_order.items():
        order = client.get_order_by_id(order_id)
        assert sum(Decimal(r["qty"]) for r in order_rows) == Decimal(str(order.filled_qty))
    planned_rows = sorted(by_order[str(planned.id)], key=lambda r: r["transaction_time"])
    assert [(r["type"], r["qty"], r["price"], r["cum_qty"], r["leaves_qty"]) for r in planned_rows] == [
        ("partial_fill", "3", "31.2", "3", "7"),
        ("partial_fill", "4", "31.25", "7", "3"),
    ]
    assert [r["order_status"] for r in planned_rows] == ["partially_filled", "partially_filled"]
    (tp_row,) = by_order[str(take_profit.id)]
    assert (tp_row["side"], tp_row["symbol"], tp_row["type"], tp_row["order_status"]) == (
        "sell",
        "OKE",
        "fill",
        "filled",
    )
    # newest first by default; every row is a valid alpaca-py TradeActivity
    times = [r["transaction_time"] for r in rows]
    assert times == sorted(times, reverse=True)
    for row in rows:
        activity = TradeActivity(**row)
        assert activity.activity_type == "FILL"
        stamp, _, uuid_part = row["id"].partition("::")
        assert len(stamp) == 17
        assert len(uuid_part) == 36
    # the same execution has the same id on every read, through either path
    assert fills(sim) == rows
    assert fills(sim, "/v2/account/activities", activity_types="FILL") == rows
    assert fills(sim, "/v2/account/activities") == rows


def test_a_new_execution_appears_on_the_next_read_and_older_rows_stay_as_they_were(
    make_sim: Callable[..., SimServer], client_for: Callable[..., TradingClient]
) -> None:
    sim = make_sim()
    resting = LimitOrderRequest(symbol="OKE", qty=10, side="buy", time_in_force="gtc", limit_price=1)
    order_id = str(client_for(sim).submit_order(resting).id)
    sim.advance(1)
    sim.fill(order_id=order_id, qty="4", price="1")
    before = fills(sim)
    sim.advance(1)
    sim.fill(order_id=order_id, qty="6", price="1")

    newest, *older = fills(sim)
    assert older == before
    assert (newest["type"], newest["cum_qty"], newest["leaves_qty"]) == ("fill", "10", "0")
    assert fills(sim, page_token=newest["id"]) == before  # the page after the newest row: the older ones


def test_activity_id_carries_the_eastern_time_of_the_execution(
    make_sim: Callable[..., SimServer], client_for: Callable[..., TradingClient]
) -> None:
    sim = make_sim()  # starts 2025-10-10T15:59:00Z = 11:59 EDT
    client_for(sim).submit_order(buy("STWD", 2))
    sim.advance(1)
    (row,) = fills(sim)
    assert row["transaction_time"].startswith("2025-10-10T15:59")
    assert row["id"].startswith("2025101011590")


def test_fill_activities_page_with_page_token_in_both_directions(
    make_sim: Callable[..., SimServer], client_for: Callable[..., TradingClient]
) -> None:
    sim = make_sim()
    resting = LimitOrderRequest(symbol="OKE", qty=105, side="buy", time_in_force="gtc", limit_price=1)
    order_id = str(client_for(sim).submit_order(resting).id)
    for _ in range(105):  # 105 executions of one share, one virtual second apart
        sim.advance(1)
        sim.fill(order_id=order_id, qty="1", price="1")

    everything = fills(sim, date="2025-10-10")  # with `date`, no page limit
    assert len(everything) == 105
    assert len(fills(sim)) == 100  # default page size
    assert len(fills(sim, page_size=500)) == 100  # the maximum without `date`

    for direction, expected in (("desc", everything), ("asc", everything[::-1])):
        walked: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"page_size": 7, "direction": direction}
            if token is not None:
                params["page_token"] = token
            page = fills(sim, **params)
            if not page:
                break
            walked.extend(page)
            token = page[-1]["id"]
        assert walked == expected, direction


def test_fill_activities_filter_by_time_and_type(
    make_sim: Callable[..., SimServer], client_for: Callable[..., TradingClient]
) -> None:
    sim = make_sim()
    client = client_for(sim)
    client.submit_order(buy("EPD", 10, coid="plan-epd"))  # executions at +60 s and +120 s
    sim.advance(121)
    first, second = fills(sim, direction="asc")
    assert fills(sim, after=first["transaction_time"]) == [second]
    assert fills(sim, until=second["transaction_time"]) == [first]
    assert fills(sim, date="2025-10-10") == [second, first]
    assert fills(sim, date="2025-10-11") == []
    assert fills(sim, "/v2/account/activities", activity_types="DIV,FEE") == []
    assert fills(sim, "/v2/account/activities", activity_types="DIV,FILL") == [second, first]
    assert fills(sim, "/v2/account/activities", category="non_trade_activity") == []
    assert fills(sim, "/v2/account/activities", category="trade_activity") == [second, first]


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("/v2/account/activities/FFFFF", {}, "invalid activity type: FFFFF"),
        ("/v2/account/activities", {"activity_types": "FILL,NOPE"}, "invalid activity type: NOPE"),
        ("/v2/account/activities/FILL", {"direction": "sideways"}, "invalid direction: 'sideways'"),
        ("/v2/account/activities/FILL", {"page_size": "0"}, "invalid page_size: '0'"),
        ("/v2/account/activities/FILL", {"page_size": "ten"}, "invalid page_size: 'ten'"),
        ("/v2/account/activities/FILL", {"page_token": "20250101000000000::nope"}, "invalid page_token"),
        ("/v2/account/activities/FILL", {"after": "yesterday"}, "invalid after: 'yesterday'"),
        ("/v2/account/activities/FILL", {"date": "2025-13-01"}, "invalid date: '2025-13-01'"),
    ],
)
def test_bad_activity_queries_are_refused_422(
    sim: SimServer, path: str, params: dict[str, str], message: str
) -> None:
    response = get(sim, path, **params)
    assert response.status_code == 422
    assert response.json() == {"code": 40010001, "message": message}


def test_fill_activities_through_the_alpaca_py_rest_client(
    make_sim: Callable[..., SimServer], client_for: Callable[..., TradingClient]
) -> None:
    # TradingClient has no activities call in alpaca-py 0.44; its generic get() goes through the same
    # session, auth headers and retry rules, and the rows parse as its TradeActivity model.
    sim = make_sim()
    client = client_for(sim)
    order = client.submit_order(buy("STWD", 3))
    sim.advance(1)
    raw = client.get("/account/activities/FILL", {"direction": "asc", "page_size": 10})
    assert isinstance(raw, list)
    activities = [TradeActivity(**row) for row in raw]
    assert [(str(a.order_id), a.qty, a.side.value) for a in activities] == [(str(order.id), 3.0, "buy")]


# -- assets ----------------------------------------------------------------------------------------------


def test_assets_list_the_scenario_symbols_through_alpaca_py(
    make_sim: Callable[..., SimServer], client_for: Callable[..., TradingClient]
) -> None:
    sim = make_sim()
    client = client_for(sim)
    assets = client.get_all_assets()
    assert [a.symbol for a in assets] == ["EPD", "OKE", "STWD"]
    for asset in assets:
        assert asset.asset_class == AssetClass.US_EQUITY
        assert asset.status == AssetStatus.ACTIVE
        assert (asset.tradable, asset.fractionable, asset.shortable, asset.easy_to_borrow) == (
            True,
            True,
            True,
            True,
        )
    assert client.get_all_assets(GetAssetsRequest(status=AssetStatus.INACTIVE)) == []
    assert client.get_all_assets(GetAssetsRequest(asset_class=AssetClass.CRYPTO)) == []
    nyse = client.get_all_assets(GetAssetsRequest(exchange=AssetExchange.NYSE, status=AssetStatus.ACTIVE))
    assert [a.symbol for a in nyse] == ["EPD", "OKE", "STWD"]
    assert client.get_all_assets(GetAssetsRequest(exchange=AssetExchange.NASDAQ)) == []

    sim.set_price("NEWCO", "12.5")  # a symbol listed at runtime is an asset at once
    assert "NEWCO" in [a.symbol for a in client.get_all_assets()]


def test_one_asset_by_symbol_or_id_and_404_when_unknown(
    sim: SimServer, client: TradingClient, fresh_symbol: Callable[..., str]
) -> None:
    symbol = fresh_symbol("10.00")
    by_symbol = client.get_asset(symbol)
    assert by_symbol.symbol == symbol
    assert client.get_asset(by_symbol.id) == by_symbol
    assert get(sim, f"/v2/assets/{symbol.lower()}").json()["symbol"] == symbol
    with pytest.raises(APIError) as excinfo:
        client.get_asset("AAPL")
    assert excinfo.value.status_code == 404
    assert json.loads(str(excinfo.value)) == {"code": 40410000, "message": "asset not found"}
    response = get(sim, "/v2/assets/00000000-0000-4000-8000-000000000000")
    assert (response.status_code, response.json()["code"]) == (404, 40410000)


def test_asset_flags_follow_the_symbol_record(sim: SimServer, fresh_symbol: Callable[..., str]) -> None:
    symbol = fresh_symbol("10.00")
    with sim.simulator.exchange.lock:
        # a symbol record carrying the flag (as scenarios may set it) decides the asset's flag
        object.__setattr__(sim.simulator.exchange.book.symbols[symbol], "fractionable", False)
    assert get(sim, f"/v2/assets/{symbol}").json()["fractionable"] is False


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"status": "dead"}, "invalid status: 'dead'"),
        ({"asset_class": "bonds"}, "invalid asset_class: 'bonds'"),
        ({"exchange": "LSE"}, "invalid exchange: 'LSE'"),
    ],
)
def test_bad_asset_filters_are_refused_422(sim: SimServer, params: dict[str, str], message: str) -> None:
    response = get(sim, "/v2/assets", **params)
    assert (response.status_code, response.json()) == (422, {"code": 40010001, "message": message})


# -- calendar --------------------------------------------------------------------------------------------


def test_calendar_through_alpaca_py_skips_holidays_and_shows_early_closes(client: TradingClient) -> None:
    days = client.get_calendar(GetCalendarRequest(start=date(2026, 11, 25), end=date(2026, 11, 30)))
    assert [(d.date.isoformat(), d.open.strftime("%H:%M"), d.close.strftime("%H:%M")) for d in days] == [
        ("2026-11-25", "09:30", "16:00"),
        ("2026-11-27", "09:30", "13:00"),  # the day after Thanksgiving closes at 13:00
        ("2026-11-30", "09:30", "16:00"),
    ]
    whole = client.get_calendar()
    assert (whole[0].date, whole[-1].date) == (date(1970, 1, 2), date(2029, 12, 31))


def test_bad_calendar_bounds_are_refused_422(sim: SimServer) -> None:
    response = get(sim, "/v2/calendar", start="soon")
    assert (response.status_code, response.json()) == (
        422,
        {"code": 40010001, "message": "invalid start: 'soon'"},
    )
    assert get(sim, "/v2/calendar", start="2026-01-10", end="2026-01-01").json() == []


# -- account configurations ---------------------------------------------------------------------------------


def test_account_configurations_read_and_patch_through_alpaca_py(
    make_sim: Callable[..., SimServer], client_for: Callable[..., TradingClient]
) -> None:
    client = client_for(make_sim())
    config = client.get_account_configurations()
    assert (config.suspend_trade, config.fractional_trading, config.max_margin_multiplier) == (
        False,
        True,
        "1",
    )
    assert config.no_shorting is True  # the scenario does not enable shorting
    config.suspend_trade = True
    config.trade_confirm_email = TradeConfirmationEmail.NONE
    config.max_margin_multiplier = "2"
    updated = client.set_account_configurations(config)
    assert (updated.suspend_trade, updated.trade_confirm_email, updated.max_margin_multiplier) == (
        True,
        TradeConfirmationEmail.NONE,
        "2",
    )
    assert client.get_account_configurations() == updated
    # removed from Alpaca's responses on 2026-07-06: never returned
    assert "pdt_check" not in client.get("/account/configurations")  # type: ignore[operator]


def test_account_configuration_patch_refuses_bad_values(
    make_sim: Callable[..., SimServer], client_for: Callable[..., TradingClient]
) -> None:
    sim = make_sim()
    for body, message in (
        ({"suspend_trade": "yes"}, "invalid suspend_trade"),
        ({"max_margin_multiplier": "10"}, "invalid max_margin_multiplier"),
        ({"trade_confirm_email": 1}, "invalid trade_confirm_email"),
        ({"pdt_check": "sometimes"}, "invalid pdt_check"),
    ):
        response = httpx.patch(
            f"{sim.base_url}/v2/account/configurations", json=body, headers=HEADERS, timeout=10
        )
        assert (response.status_code, response.json()) == (422, {"code": 40010001, "message": message})
    assert client_for(sim).get_account_configurations().suspend_trade is False  # nothing was stored


# -- close every position ----------------------------------------------------------------------------------


def test_close_all_positions_answers_207_per_symbol_through_alpaca_py(
    make_sim: Callable[..., SimServer], client_for: Callable[..., TradingClient]
) -> None:
    sim = make_sim()
    client = client_for(sim)
    client.submit_order(buy("OKE", 5))
    client.submit_order(buy("STWD", 7))
    sim.advance(1)
    client.submit_order(  # holds 3 of OKE's 5 shares
        LimitOrderRequest(symbol="OKE", qty=3, side="sell", time_in_force="gtc", limit_price=99)
    )
    sim.advance(1)

    response = httpx.delete(f"{sim.base_url}/v2/positions", headers=HEADERS, timeout=10)
    assert response.status_code == 207
    items = {item["symbol"]: item for item in response.json()}
    assert items["STWD"]["status"] == 200
    assert items["STWD"]["body"]["side"] == "sell"
    assert items["STWD"]["body"]["qty"] == "7"
    # OKE's shares are held by the open sell: that symbol's item carries the refusal a close would get
    assert items["OKE"]["status"] == 403
    assert items["OKE"]["body"]["code"] == 40310000
    sim.advance(1)
    assert [p.symbol for p in client.get_all_positions()] == ["OKE"]

    closed = client.close_all_positions(cancel_orders=True)  # cancels the sell first, then closes
    assert [(c.symbol, c.status) for c in closed] == [("OKE", 200)]
    assert isinstance(closed[0].body, Order)
    assert closed[0].body.side == OrderSide.SELL
    sim.advance(1)
    assert client.get_all_positions() == []
    assert client.get_orders() == []
    assert client.close_all_positions() == []


# -- docs/simulator.md -------------------------------------------------------------------------------------

DOC = Path(__file__).resolve().parents[3] / "docs" / "simulator.md"
DOC_URL = "http://127.0.0.1:8800"


def doc_block(language: str) -> str:
    """The code block of `language` that follows the 'runs this block' marker in docs/simulator.md."""
    text = DOC.read_text(encoding="utf-8")
    for part in text.split("runs this block against a live simulator -->\n")[1:]:
        fence = f"```{language}\n"
        if part.startswith(fence):
            return part[len(fence) : part.index("\n```", len(fence))]
    raise AssertionError(f"no tested {language} block in {DOC}")


@pytest.fixture
def live_sim() -> Iterator[SimServer]:
    """The packaged scenario on a real-time clock with any key accepted: what `ordersync sim serve` runs."""
    with SimServer(default_scenario(), RealClock()) as server:
        yield server


def test_the_alpaca_py_snippet_of_the_docs_runs(
    live_sim: SimServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code = doc_block("python").replace(DOC_URL, live_sim.base_url)
    exec(compile(code, str(DOC), "exec"), {"__name__": "doc_snippet"})
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("['EPD', 'ET', 'F', 'KMI', 'MPLX', 'O', 'OKE', 'PAA', 'PFE', 'STWD', 'T'")
    assert printed[-1] == "[('buy', '5', '72.1'), ('sell', '5', '75.5')]"


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs the curl command")
def test_the_curl_snippet_of_the_docs_runs(live_sim: SimServer) -> None:
    script = doc_block("bash").replace(DOC_URL, live_sim.base_url)
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert '"symbol":"OKE"' in result.stdout
    sells = [o for o in live_sim.snapshot()["orders"] if o["symbol"] == "OKE" and o["side"] == "sell"]
    assert [(o["status"], o["filled_avg_price"]) for o in sells] == [("filled", "75.5")]
