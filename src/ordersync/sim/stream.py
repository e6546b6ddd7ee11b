"""The trade_updates websocket at `/stream` (and `/stream/`), speaking Alpaca's protocol as alpaca-py expects
it.

Protocol (docs/alpaca.md §11.4, docs/alpaca.md §2): no greeting; the client sends `authenticate` and
the very next frame is the authorization reply; `listen` with `["trade_updates"]` is acknowledged with
`listening`; then each event is one JSON object in one *binary* frame, as the paper API sends them. Several
connections may listen at once and each gets every event of its account. There is no replay: an event
published while a connection is down is lost for it, which is exactly what a client must survive.

`StreamGateway` serves the websocket route and speaks the protocol; the key pair a connection authenticates
with picks its account's `StreamHub` (one per account), so a connection only ever gets its own account's
events (many accounts in one simulator, docs/scenarios.md "accounts").

`StreamHub.publish` is called under the books lock from any thread (REST handlers, the ticker, a test
advancing the clock); it applies the stream faults and hands frames to each connection's queue with
`call_soon_threadsafe`, so one sender task per connection writes frames in publish order."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.websockets import WebSocket, WebSocketDisconnect

from .counters import Counters
from .faults import FaultInjector
from .wire import JsonDict

__all__ = ["StreamGateway", "StreamHub"]

REORDER_MAX_HOLD_S = 0.2  # real seconds a held-back event waits for a successor before it is sent anyway

Resolver = Callable[[str, str], "StreamHub | None"]


@dataclass(eq=False)
class _Connection:
    queue: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)
    hub: StreamHub | None = None  # the account it authenticated for
    listening: bool = False

    @property
    def authorized(self) -> bool:
        return self.hub is not None


class StreamHub:
    """Fan-out of one account's trade_updates to its listening connections, with stream faults applied."""

    def __init__(self, faults: FaultInjector, counters: Counters) -> None:
        self._faults = faults
        self._counters = counters
        self._lock = threading.Lock()
        self._connections: set[_Connection] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._held: tuple[bytes, float] | None = None

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def listening_count(self) -> int:
        with self._lock:
            return sum(1 for c in self._connections if c.listening)

    def attach(self, connection: _Connection) -> None:
        with self._lock:
            self._connections.add(connection)

    def detach(self, connection: _Connection) -> None:
        with self._lock:
            self._connections.discard(connection)

    def set_listening(self, connection: _Connection, listening: bool) -> None:
        with self._lock:
            connection.listening = listening

    def publish(self, message: JsonDict) -> None:
        """Deliver one trade_updates message to every listening connection, faults permitting."""
        frame = json.dumps(message, separators=(",", ":")).encode()
        fault = self._faults.stream_fault(_symbol_of(message))
        with self._lock:
            if fault == "disconnect":
                self._drop_all_locked()
                return
            if fault in ("drop", "silent"):
                return
            if fault == "reorder" and self._held is None:
                self._held = (frame, time.monotonic())
                return
            frames = [frame, frame] if fault == "duplicate" else [frame]
            if self._held is not None:
                frames.append(self._held[0])
                self._held = None
            self._deliver_locked(frames)

    def flush_stale(self) -> None:
        """Send a held-back event that has waited too long for a successor (called by the ticker)."""
        with self._lock:
            if self._held is not None and time.monotonic() - self._held[1] >= REORDER_MAX_HOLD_S:
                frame, self._held = self._held[0], None
                self._deliver_locked([frame])

    def disconnect_all(self) -> int:
        """Drop every connection now (as a network failure would); return how many were dropped."""
        with self._lock:
            dropped = self._drop_all_locked()
        self._counters.fault("stream_disconnect")
        return dropped

    def _deliver_locked(self, frames: list[bytes]) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        for connection in self._connections:
            if connection.listening:
                for frame in frames:
                    loop.call_soon_threadsafe(connection.queue.put_nowait, frame)

    def _drop_all_locked(self) -> int:
        loop = self._loop
        dropped = 0
        for connection in self._connections:
            connection.listening = False
            if loop is not None and not loop.is_closed():
                loop.call_soon_threadsafe(connection.queue.put_nowait, None)
            dropped += 1
        self._connections.clear()
        return dropped


class StreamGateway:
    """The `/stream` websocket endpoint: the protocol, and the account (hub) each connection belongs to.

    `resolve(key, secret)` returns the hub of the account that pair opens, or None (unauthorized)."""

    def __init__(self, resolve: Resolver) -> None:
        self._resolve = resolve
        self._lock = threading.Lock()
        self._pending: set[_Connection] = set()  # connected, not (yet) authenticated
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def drop_pending(self) -> int:
        """Drop the connections that have not authenticated (a shutdown); return how many."""
        loop = self._loop
        with self._lock:
            pending, self._pending = self._pending, set()
        if loop is not None and not loop.is_closed():
            for connection in pending:
                loop.call_soon_threadsafe(connection.queue.put_nowait, None)
        return len(pending)

    async def endpoint(self, websocket: WebSocket) -> None:
        """Serve one websocket connection until either side closes it."""
        await websocket.accept()
        connection = _Connection()
        with self._lock:
            self._pending.add(connection)
        sender = asyncio.create_task(self._send_loop(websocket, connection))
        try:
            await self._receive_loop(websocket, connection)
        except WebSocketDisconnect:
            pass
        finally:
            with self._lock:
                self._pending.discard(connection)
            if connection.hub is not None:
                connection.hub.detach(connection)
            sender.cancel()

    async def _receive_loop(self, websocket: WebSocket, connection: _Connection) -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            raw = message.get("text") or (message.get("bytes") or b"").decode(errors="replace")
            reply = self._handle(connection, raw)
            if reply is not None:
                connection.queue.put_nowait(json.dumps(reply, separators=(",", ":")).encode())

    async def _send_loop(self, websocket: WebSocket, connection: _Connection) -> None:
        while True:
            frame = await connection.queue.get()
            if frame is None:
                await websocket.close(code=1011)
                return
            await websocket.send_bytes(frame)

    def _handle(self, connection: _Connection, raw: str) -> JsonDict | None:
        try:
            message = json.loads(raw)
        except (ValueError, RecursionError):
            return {"stream": "error", "data": {"error_message": "invalid syntax"}}
        if not isinstance(message, dict):
            return {"stream": "error", "data": {"error_message": "invalid syntax"}}
        action = message.get("action")
        raw_data = message.get("data")
        data: JsonDict = raw_data if isinstance(raw_data, dict) else {}
        if action == "authenticate":
            return self._authenticate(connection, data)
        if action == "listen":
            return self._listen(connection, data)
        return {"stream": "error", "data": {"error_message": f"unknown action {action!r}"}}

    def _authenticate(self, connection: _Connection, data: JsonDict) -> JsonDict:
        key, secret = data.get("key_id"), data.get("secret_key")
        hub = self._resolve(key, secret) if isinstance(key, str) and isinstance(secret, str) else None
        if connection.hub is not None and connection.hub is not hub:
            connection.hub.detach(connection)
        connection.hub, connection.listening = hub, False
        with self._lock:
            if hub is None:
                self._pending.add(connection)
            else:
                self._pending.discard(connection)
        if hub is not None:
            hub.attach(connection)
        reply: JsonDict = {"action": "authenticate", "status": "authorized" if hub else "unauthorized"}
        if hub is None:
            reply["message"] = "access key verification failed"
        return {"stream": "authorization", "data": reply}

    def _listen(self, connection: _Connection, data: JsonDict) -> JsonDict:
        hub = connection.hub
        if hub is None:
            return {"stream": "authorization", "data": {"status": "unauthorized", "action": "listen"}}
        streams = data.get("streams")
        known = [s for s in streams if s == "trade_updates"] if isinstance(streams, list) else []
        hub.set_listening(connection, bool(known))
        return {"stream": "listening", "data": {"streams": known}}


def _symbol_of(message: JsonDict) -> str | None:
    data = message.get("data")
    order = data.get("order") if isinstance(data, dict) else None
    symbol = order.get("symbol") if isinstance(order, dict) else None
    return symbol if isinstance(symbol, str) else None
