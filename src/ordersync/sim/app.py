"""The Alpaca Trading API v2 subset over HTTP (Starlette), mounted with the control API and the stream.

Every `/v2` request goes through one guard, in this order: count it, add the configured latency, check the
`APCA-API-KEY-ID`/`APCA-API-SECRET-KEY` pair (401 `{"message":"unauthorized."}`, no code, as Alpaca sends),
count it against the per-key rate limit (429), apply injected HTTP faults, run the handler, and for a "lost
response" fault replace its answer with a 504 after the request took effect. Errors are Alpaca's JSON bodies;
every response carries the `X-Ratelimit-*` headers. Handlers are thin: parse, call the `Exchange`, render."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute

from .account_routes import account_routes
from .control import control_routes
from .order_request import parse_order_request, parse_replace_request
from .queries import parse_bool, parse_order_query
from .simulator import Simulator
from .wire import ApiError, parse_decimal

__all__ = ["build_app"]

Handler = Callable[[Request], Awaitable[Response]]

VIRTUAL_WAIT_POLL_S = 0.002  # real seconds between looks at the clock while an answer waits for virtual time

_FAULT_MESSAGES = {
    429: "too many requests",
    500: "internal server error",
    502: "bad gateway",
    503: "service unavailable",
    504: "gateway timeout",
}


def build_app(sim: Simulator) -> Starlette:
    """Build the ASGI app serving `/v2/*`, `/sim/*` and the `/stream` websocket for `sim`."""
    api = _Api(sim)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        sim.hub.bind_loop(asyncio.get_running_loop())
        ticker = asyncio.create_task(sim.run_ticker())
        try:
            yield
        finally:
            ticker.cancel()
            sim.hub.disconnect_all()

    routes: list[BaseRoute] = [
        *api.routes(),
        *control_routes(sim),
        WebSocketRoute("/stream", sim.hub.endpoint),
        WebSocketRoute("/stream/", sim.hub.endpoint),
    ]
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers={ApiError: _api_error})


class _Api:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.exchange = sim.exchange

    def routes(self) -> list[Route]:
        table: list[tuple[str, str, Handler]] = [
            ("/v2/orders", "POST", self.submit),
            ("/v2/orders", "GET", self.list_orders),
            ("/v2/orders", "DELETE", self.cancel_all),
            ("/v2/orders:by_client_order_id", "GET", self.by_client_id),
            ("/v2/orders/{order_id}", "GET", self.get_order),
            ("/v2/orders/{order_id}", "PATCH", self.replace),
            ("/v2/orders/{order_id}", "DELETE", self.cancel),
            ("/v2/positions", "GET", self.positions),
            ("/v2/positions/{symbol}", "GET", self.position),
            ("/v2/positions/{symbol}", "DELETE", self.close_position),
            ("/v2/account", "GET", self.account),
            ("/v2/clock", "GET", self.market_clock),
            *account_routes(self.sim),
        ]
        return [
            Route(path, self._guarded(path, method, handler), methods=[method])
            for path, method, handler in table
        ]

    def _guarded(self, path: str, method: str, handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            response = await self._guard(request, path, method, handler)
            self.sim.counters.response(response.status_code)
            return response

        return endpoint

    async def _guard(self, request: Request, path: str, method: str, handler: Handler) -> Response:
        sim = self.sim
        sim.counters.request(f"{method} {path}")
        delay = sim.faults.latency_s(method, path)
        if delay:
            await asyncio.sleep(delay)
        symbol = await self._request_symbol(request)
        virtual_delay = sim.http_latency_s(method, path, symbol)
        if virtual_delay > 0:
            await _wait_virtual(sim, virtual_delay)
        key = request.headers.get("APCA-API-KEY-ID", "")
        if not sim.check_credentials(key, request.headers.get("APCA-API-SECRET-KEY", "")):
            return JSONResponse({"message": "unauthorized."}, status_code=401)
        decision = sim.limiter.hit(key)
        headers = decision.headers()
        if not decision.allowed:
            sim.counters.rate_limited()
            return JSONResponse({"code": 42910000, "message": "rate limit exceeded"}, 429, headers=headers)
        fault = sim.faults.http_fault(method, path, symbol)
        if fault is not None and fault.status == 429:
            # An injected 429 says what a real one says: nothing left, and when the budget comes back.
            headers["X-Ratelimit-Remaining"] = "0"
            headers["X-Ratelimit-Reset"] = str(fault.reset_epoch or decision.reset_epoch)
        if fault is not None and not fault.lost_response:
            return _fault_response(fault.status, headers)
        response = await self._run(handler, request)
        if fault is not None:
            return _fault_response(fault.status, headers)  # the request took effect; its answer is lost
        response.headers.update(headers)
        return response

    async def _request_symbol(self, request: Request) -> str | None:
        """The symbol a request is about, for symbol-limited fault windows (None when it names none)."""
        params = request.path_params
        if "symbol" in params:
            return str(params["symbol"]).upper()
        if "order_id" in params:
            return self.exchange.order_symbol(str(params["order_id"]))
        if request.method == "POST":
            try:
                body = await _json_body(request)
            except ApiError:
                return None
            symbol = body.get("symbol") if isinstance(body, dict) else None
            return symbol.strip().upper() if isinstance(symbol, str) else None
        return None

    async def _run(self, handler: Handler, request: Request) -> Response:
        try:
            return await handler(request)
        except ApiError as e:
            self.sim.counters.rejection(e.status, e.body)
            return JSONResponse(e.body, status_code=e.status)

    # -- handlers ------------------------------------------------------------------------------------

    async def submit(self, request: Request) -> Response:
        spec = parse_order_request(await _json_body(request))
        return JSONResponse(self.exchange.submit(spec))

    async def list_orders(self, request: Request) -> Response:
        return JSONResponse(self.exchange.list_orders(parse_order_query(request.query_params)))

    async def cancel_all(self, request: Request) -> Response:
        return JSONResponse(self.exchange.cancel_all(), status_code=207)

    async def by_client_id(self, request: Request) -> Response:
        client_order_id = request.query_params.get("client_order_id")
        if not client_order_id:
            raise ApiError.unprocessable("client_order_id is required")
        return JSONResponse(self.exchange.get_by_client_id(client_order_id))

    async def get_order(self, request: Request) -> Response:
        nested = parse_bool(request.query_params.get("nested"), "nested")
        return JSONResponse(self.exchange.get_order(request.path_params["order_id"], nested))

    async def replace(self, request: Request) -> Response:
        spec = parse_replace_request(await _json_body(request))
        return JSONResponse(self.exchange.replace(request.path_params["order_id"], spec))

    async def cancel(self, request: Request) -> Response:
        self.exchange.cancel(request.path_params["order_id"])
        return Response(status_code=204)

    async def positions(self, request: Request) -> Response:
        return JSONResponse(self.exchange.positions())

    async def position(self, request: Request) -> Response:
        return JSONResponse(self.exchange.position(request.path_params["symbol"].upper()))

    async def close_position(self, request: Request) -> Response:
        params = request.query_params
        qty = _opt_decimal(params.get("qty"), "qty")
        percentage = _opt_decimal(params.get("percentage"), "percentage")
        return JSONResponse(
            self.exchange.close_position(request.path_params["symbol"].upper(), qty, percentage)
        )

    async def account(self, request: Request) -> Response:
        return JSONResponse(self.exchange.account())

    async def market_clock(self, request: Request) -> Response:
        return JSONResponse(self.exchange.market_clock())


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw or b"null")
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        raise ApiError.bad_body() from None


async def _wait_virtual(sim: Simulator, seconds: float) -> None:
    """Hold an answer until the simulator's clock has moved `seconds` on (virtual-time HTTP latency)."""
    due = sim.clock.now() + timedelta(seconds=seconds)
    while sim.clock.now() < due:
        await asyncio.sleep(VIRTUAL_WAIT_POLL_S)


def _opt_decimal(raw: str | None, field: str) -> Decimal | None:
    return None if raw is None else parse_decimal(raw, field)


async def _api_error(request: Request, exc: Exception) -> Response:
    # Control-API errors; the /v2 guard renders (and counts) its own.
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.body, status_code=exc.status)


def _fault_response(status: int, headers: dict[str, str]) -> Response:
    body = {"code": status * 100000, "message": _FAULT_MESSAGES.get(status, "error")}
    return JSONResponse(body, status_code=status, headers=headers)
