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
from decimal import Decimal
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

MAX_ADVANCE_S = 10 * 366 * 86_400  # one request moves the clock by at most ten years
MAX_SYMBOL_LEN = 32
MAX_RATE_LIMIT = 10_000_000
EXCHANGES = ("AMEX", "ARCA", "BATS", "NYSE", "NASDAQ", "NYSEARCA", "OTC")


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
        if not 0 <= seconds <= MAX_ADVANCE_S:
            raise ApiError.unprocessable(f"seconds must be between 0 and {MAX_ADVANCE_S}")
        self.sim.exchange.advance_to(self.sim.clock.now() + timedelta(seconds=float(seconds)))
        return JSONResponse({"now": fmt_time(self.sim.clock.now())})

    async def price(self, request: Request) -> Response:
        body = await _body(request)
        symbol = body.get("symbol")
        if not isinstance(symbol, str) or not symbol:
            raise ApiError.unprocessable("symbol is required")
        price = parse_decimal(body.get("price"), "price")
        if price <= 0:
            raise ApiError.unprocessable("price must be > 0")
        if len(symbol) > MAX_SYMBOL_LEN:
            raise ApiError.unprocessable("invalid symbol")
        exchange = body.get("exchange", "NYSE")
        if exchange not in EXCHANGES:
            raise ApiError.unprocessable(f"exchange must be one of {', '.join(EXCHANGES)}")
        self.sim.exchange.set_price(symbol.upper(), price, exchange)
        return JSONResponse({"symbol": symbol.upper(), "price": str(price)})

    async def fill(self, request: Request) -> Response:
        body = await _body(request)
        qty = _opt_positive(body, "qty")
        price = _opt_positive(body, "price")
        order_id, client_order_id = body.get("order_id"), body.get("client_order_id")
        if not isinstance(order_id, str | None) or not isinstance(client_order_id, str | None):
            raise ApiError.unprocessable("order_id and client_order_id must be strings")
        if order_id is None and client_order_id is None:
            raise ApiError.unprocessable("order_id or client_order_id is required")
        order = self.sim.exchange.manual_fill(order_id, client_order_id, qty, price)
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
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_RATE_LIMIT:
            raise ApiError.unprocessable(f"limit_per_min must be an integer from 1 to {MAX_RATE_LIMIT}")
        self.sim.limiter.set_limit(limit)
        return JSONResponse(self.sim.limiter.snapshot())

    async def disconnect(self, request: Request) -> Response:
        return JSONResponse({"dropped": self.sim.hub.disconnect_all()})


def _opt_positive(body: dict[str, Any], field: str) -> Decimal | None:
    if body.get(field) is None:
        return None
    value = parse_decimal(body[field], field)
    if value <= 0:
        raise ApiError.unprocessable(f"{field} must be > 0")
    return value


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except (ValueError, RecursionError):
        raise ApiError.bad_body() from None
    if not isinstance(body, dict):
        raise ApiError.bad_body()
    return body
