"""The simulator's control API under `/sim/` (not Alpaca's; no auth): for tests, the demo and chaos runs.

GET  /sim/state               books (orders with detail, positions with held/available), account, counters,
                              faults, rate limit, stream connections, pending timers
GET  /sim/clock               {"now", "kind"}
POST /sim/clock/advance       {"seconds": s} -> {"now"}; stepped clock only (409 otherwise)
POST /sim/price               {"symbol", "price", "exchange"?} -> {"symbol", "price"}
POST /sim/fill                {"order_id" | "client_order_id", "qty"?, "price"?} -> the order
GET  /sim/faults              the fault config
POST /sim/faults              a full fault config (see faults.FaultConfig) replacing the current one
POST /sim/ratelimit           {"limit_per_min": n}
POST /sim/stream/disconnect   drop every stream connection now -> {"dropped": n}
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .faults import FaultConfig
from .wire import ApiError, fmt_time, parse_decimal

if TYPE_CHECKING:
    from .simulator import Simulator

__all__ = ["control_routes"]


def control_routes(sim: Simulator) -> list[Route]:
    """Routes of the control API for `sim`."""
    control = _Control(sim)
    return [
        Route("/sim/state", control.state, methods=["GET"]),
        Route("/sim/clock", control.clock, methods=["GET"]),
        Route("/sim/clock/advance", control.advance, methods=["POST"]),
        Route("/sim/price", control.price, methods=["POST"]),
        Route("/sim/fill", control.fill, methods=["POST"]),
        Route("/sim/faults", control.get_faults, methods=["GET"]),
        Route("/sim/faults", control.set_faults, methods=["POST"]),
        Route("/sim/ratelimit", control.rate_limit, methods=["POST"]),
        Route("/sim/stream/disconnect", control.disconnect, methods=["POST"]),
    ]


class _Control:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    async def state(self, request: Request) -> Response:
        return JSONResponse(self.sim.state())

    async def clock(self, request: Request) -> Response:
        return JSONResponse({"now": fmt_time(self.sim.clock.now()), "kind": type(self.sim.clock).__name__})

    async def advance(self, request: Request) -> Response:
        body = await _body(request)
        seconds = parse_decimal(body.get("seconds"), "seconds")
        if seconds < 0:
            raise ApiError.unprocessable("seconds must be >= 0")
        self.sim.exchange.advance_to(self.sim.clock.now() + timedelta(seconds=float(seconds)))
        return JSONResponse({"now": fmt_time(self.sim.clock.now())})

    async def price(self, request: Request) -> Response:
        body = await _body(request)
        symbol = body.get("symbol")
        if not isinstance(symbol, str) or not symbol:
            raise ApiError.unprocessable("symbol is required")
        price = parse_decimal(body.get("price"), "price")
        self.sim.exchange.set_price(symbol.upper(), price, str(body.get("exchange", "NYSE")))
        return JSONResponse({"symbol": symbol.upper(), "price": str(price)})

    async def fill(self, request: Request) -> Response:
        body = await _body(request)
        qty = None if body.get("qty") is None else parse_decimal(body["qty"], "qty")
        price = None if body.get("price") is None else parse_decimal(body["price"], "price")
        order = self.sim.exchange.manual_fill(body.get("order_id"), body.get("client_order_id"), qty, price)
        return JSONResponse(order)

    async def get_faults(self, request: Request) -> Response:
        return JSONResponse(self.sim.faults.config.model_dump(mode="json"))

    async def set_faults(self, request: Request) -> Response:
        try:
            config = FaultConfig.model_validate(await _body(request))
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ApiError.unprocessable(f"faults.{where}: {first['msg']}") from None
        self.sim.set_faults(config)
        return JSONResponse(config.model_dump(mode="json"))

    async def rate_limit(self, request: Request) -> Response:
        body = await _body(request)
        limit = body.get("limit_per_min")
        if not isinstance(limit, int) or limit < 1:
            raise ApiError.unprocessable("limit_per_min must be a positive integer")
        self.sim.limiter.set_limit(limit)
        return JSONResponse(self.sim.limiter.snapshot())

    async def disconnect(self, request: Request) -> Response:
        return JSONResponse({"dropped": self.sim.hub.disconnect_all()})


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except (ValueError, RecursionError):
        raise ApiError.bad_body() from None
    if not isinstance(body, dict):
        raise ApiError.bad_body()
    return body
