"""The account-level `/v2` endpoints an OMS touches besides orders: activities, assets, calendar,
configurations and closing every position.

`account_routes(sim)` returns (path, method, handler) rows that `app.py` puts in its route table, so every
one of them goes through the same `/v2` guard as the order endpoints (auth, latency, rate limit, faults,
counters). Handlers read the books under the exchange's lock and render Alpaca's shapes; the rules live in
`activities.py` (FILL rows and paging), `assets.py` (the asset list) and `calendar.py` (sessions)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .activities import list_activities, parse_activity_query

if TYPE_CHECKING:
    from .simulator import Simulator

__all__ = ["account_routes"]

Handler = Callable[[Request], Awaitable[Response]]


def account_routes(sim: Simulator) -> list[tuple[str, str, Handler]]:
    """The account endpoints of `sim`, as rows of the `/v2` route table."""
    handlers = _AccountHandlers(sim)
    return [
        ("/v2/account/activities", "GET", handlers.activities),
        ("/v2/account/activities/{activity_type}", "GET", handlers.activities),
    ]


class _AccountHandlers:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.exchange = sim.exchange

    async def activities(self, request: Request) -> Response:
        query = parse_activity_query(request.query_params, request.path_params.get("activity_type"))
        with self.exchange.lock:
            return JSONResponse(list_activities(self.exchange.book, query))
