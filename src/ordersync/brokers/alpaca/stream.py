"""The BrokerStream port: Alpaca's trade_updates websocket, with a small client of our own.

Why not alpaca-py's TradingStream: it swallows handler exceptions and stops delivering, retries with
no hook to tell us it reconnected (so we could not catch up on what we missed), and needs up to 5 s to
stop (docs/alpaca.md, 11.4). The protocol is three messages (authenticate, listen, updates),
so this client speaks it directly, reports every connect/disconnect to the engine (which then reads
everything it missed before trusting the stream again), backs off with jitter, and still validates
every update exactly as alpaca-py's own ``TradeUpdate`` model would: through a fast direct mapping
(``parse.fast_observation``) that only accepts what that model accepts, and through the model itself
for anything the fast path declines.
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from decimal import InvalidOperation
from typing import Any

import structlog
from alpaca.trading.models import TradeUpdate
from pydantic import ValidationError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from ordersync.brokers.alpaca.mapping import observation
from ordersync.brokers.alpaca.parse import Declined, decode, fast_observation
from ordersync.domain.errors import MalformedObservation
from ordersync.domain.events import OrderObserved
from ordersync.ports import Clock, StreamState, StreamStatus

log = structlog.get_logger(__name__)

PAPER_STREAM = "wss://paper-api.alpaca.markets/stream"
LIVE_STREAM = "wss://api.alpaca.markets/stream"


class StreamAuthError(Exception):
    """The broker refused our keys on the stream."""


class AlpacaStream:
    """trade_updates as an async iterator of observations and connection changes; never raises."""

    def __init__(
        self,
        api_key: str,
        secret_key: str,
        *,
        clock: Clock,
        url: str = PAPER_STREAM,
        max_backoff_s: float = 30.0,
        seed: int | None = None,
    ) -> None:
        self._auth = {"action": "authenticate", "data": {"key_id": api_key, "secret_key": secret_key}}
        self._clock = clock
        self._url = url
        self._max_backoff_s = max_backoff_s
        self._random = random.Random(seed)
        self._ws: ClientConnection | None = None
        self._closed = False
        self.malformed = 0
        self.connects = 0
        self.declined = 0  # messages the fast parse left to alpaca-py's model (valid or not)

    def __repr__(self) -> str:  # never show keys
        return f"AlpacaStream(url={self._url!r})"

    async def events(self) -> AsyncIterator[OrderObserved | StreamStatus]:
        """Yield observations; a CONNECTED status after each (re)connect, DISCONNECTED after each loss."""
        failures = 0
        while not self._closed:
            try:
                async for item in self._session():
                    failures = 0
                    yield item
            except (OSError, WebSocketException, StreamAuthError, TimeoutError) as e:
                detail = f"{type(e).__name__}: {e}"[:200]
            else:
                detail = "closed by the broker"
            if self._closed:
                break
            yield StreamStatus(StreamState.DISCONNECTED, self._clock.now(), detail)
            failures += 1
            await self._clock.sleep(self._backoff(failures))

    def _backoff(self, failures: int) -> float:
        ceiling = min(self._max_backoff_s, 0.5 * 2.0 ** min(failures, 10))
        return ceiling / 2 + self._random.uniform(0, ceiling / 2)

    async def _session(self) -> AsyncIterator[OrderObserved | StreamStatus]:
        async with connect(self._url, open_timeout=10, ping_interval=10, ping_timeout=30) as ws:
            self._ws = ws
            await ws.send(json.dumps(self._auth))
            reply = _decode(await ws.recv())
            if reply.get("data", {}).get("status") != "authorized":
                raise StreamAuthError("the broker refused the stream credentials")
            await ws.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
            async for frame in ws:
                item = self._parse(frame)
                if item is not None:
                    yield item

    def _parse(self, frame: str | bytes) -> OrderObserved | StreamStatus | None:
        try:
            message = _decode(frame)
            if message.get("stream") == "listening":
                self.connects += 1
                return StreamStatus(StreamState.CONNECTED, self._clock.now())
            if message.get("stream") != "trade_updates":
                return None
            data = message["data"]
            try:
                return fast_observation(data, self._clock.now())
            except Declined:
                self.declined += 1
            return observation(TradeUpdate(**data), self._clock.now())
        except (
            ValueError,
            KeyError,
            TypeError,
            ValidationError,
            MalformedObservation,
            InvalidOperation,  # a number field that is no number ("abc"): Decimal's own error
        ) as e:
            # one bad message must never stop delivery (the alpaca-py failure mode); count and go on
            self.malformed += 1
            log.warning("stream.malformed_message", error=f"{type(e).__name__}: {e}"[:300])
            return None

    async def close(self) -> None:
        """Stop the stream; ``events`` ends."""
        self._closed = True
        if self._ws is not None:
            await self._ws.close()


def _decode(frame: str | bytes) -> dict[str, Any]:
    message = decode(frame)
    if not isinstance(message, dict):
        raise ValueError("a trade_updates frame must hold one JSON object")
    return message
