"""The account-level `/v2` endpoints an OMS touches besides orders: activities, assets, calendar,
configurations and closing every position.

`account_routes(sim)` returns (path, method, handler) rows that `app.py` puts in its route table, so every
one of them goes through the same `/v2` guard as the order endpoints (auth, latency, rate limit, faults,
counters). Handlers read the books under the exchange's lock and render Alpaca's shapes; the rules live in
`activities.py` (FILL rows and paging), `assets.py` (the asset list), `calendar.py` (sessions) and
`configurations.py` (account settings)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import date
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .activities import FillLog, parse_activity_query
from .assets import find_asset, parse_asset_query, select_assets
from .calendar import MarketCalendar
from .configurations import AccountConfigurations
from .queries import parse_bool
from .wire import ApiError, JsonDict

if TYPE_CHECKING:
    from .simulator import Simulator

__all__ = ["account_routes"]

Handler = Callable[[Request], Awaitable[Response]]

# GET /v2/calendar without bounds lists 1970..2029, as Alpaca documents its range.
CALENDAR_FIRST = date(1970, 1, 1)
CALENDAR_LAST = date(2029, 12, 31)


def account_routes(sim: Simulator) -> list[tuple[str, str, Handler]]:
    """The account endpoints of `sim`, as rows of the `/v2` route table."""
    handlers = _AccountHandlers(sim)
    return [
        ("/v2/account/activities", "GET", handlers.activities),
        ("/v2/account/activities/{activity_type}", "GET", handlers.activities),
        ("/v2/account/configurations", "GET", handlers.get_configurations),
        ("/v2/account/configurations", "PATCH", handlers.patch_configurations),
        ("/v2/assets", "GET", handlers.assets),
        ("/v2/assets/{symbol_or_id}", "GET", handlers.asset),
        ("/v2/calendar", "GET", handlers.calendar),
        ("/v2/positions", "DELETE", handlers.close_all_positions),
    ]


class _AccountHandlers:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.exchange = sim.exchange
        self.market = MarketCalendar()
        self.fills = FillLog()
        account = sim.exchange.account()
        self.configurations = AccountConfigurations(
            max_margin_multiplier=str(account.get("multiplier", "1")),
            no_shorting=not account.get("shorting_enabled", False),
        )

    async def activities(self, request: Request) -> Response:
        query = parse_activity_query(request.query_params, request.path_params.get("activity_type"))
        with self.exchange.lock:
            self.fills.refresh(self.exchange.book)
            return JSONResponse(self.fills.select(query))

    async def get_configurations(self, request: Request) -> Response:
        return JSONResponse(self.configurations.get())

    async def patch_configurations(self, request: Request) -> Response:
        return JSONResponse(self.configurations.patch(await _json_body(request)))

    async def assets(self, request: Request) -> Response:
        query = parse_asset_query(request.query_params)
        with self.exchange.lock:
            return JSONResponse(select_assets(list(self.exchange.book.symbols.values()), query))

    async def asset(self, request: Request) -> Response:
        with self.exchange.lock:
            return JSONResponse(find_asset(self.exchange.book.symbols, request.path_params["symbol_or_id"]))

    async def calendar(self, request: Request) -> Response:
        params = request.query_params
        start = _calendar_date(params.get("start"), "start") or CALENDAR_FIRST
        end = _calendar_date(params.get("end"), "end") or CALENDAR_LAST
        return JSONResponse(self.market.calendar_json(max(start, CALENDAR_FIRST), min(end, CALENDAR_LAST)))

    async def close_all_positions(self, request: Request) -> Response:
        """Alpaca's 207: one item per position, `{symbol, status, body}` with the closing order or the error.

        With `cancel_orders=true` every open order is canceled first; the cancels are asynchronous at the
        venue, so the due events are fired before closing (a venue with a cancel latency can still hold the
        shares, and that symbol's item is then the 403 a close would get).
        """
        cancel_orders = parse_bool(request.query_params.get("cancel_orders"), "cancel_orders")
        exchange = self.exchange
        with exchange.lock:
            if cancel_orders:
                exchange.cancel_all()
                exchange.tick()
            items: list[JsonDict] = []
            for symbol in sorted(exchange.book.positions):
                try:
                    order = exchange.close_position(symbol, None, None)
                except ApiError as e:
                    items.append({"symbol": symbol, "status": e.status, "body": e.body})
                else:
                    items.append({"symbol": symbol, "status": 200, "body": order})
        return JSONResponse(items, status_code=207)


def _calendar_date(raw: str | None, field: str) -> date | None:
    if raw is None or not raw.strip():
        return None
    try:
        return date.fromisoformat(raw.strip()[:10])  # a date, or the date part of a timestamp
    except ValueError:
        raise ApiError.unprocessable(f"invalid {field}: {raw!r}"[:200]) from None


async def _json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body() or b"null")
    except (ValueError, RecursionError):
        raise ApiError.bad_body() from None
