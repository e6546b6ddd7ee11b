"""A broker that misbehaves: garbage frames, unknown statuses, non-JSON bodies. Never a crash, never a
silent stop, never a leaked key."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import requests
import structlog
from alpaca.common.exceptions import APIError
from websockets.asyncio.server import ServerConnection, serve

from ordersync.brokers.alpaca import AlpacaBroker, AlpacaStream
from ordersync.brokers.alpaca.errors import classify
from ordersync.domain.errors import BrokerUnavailable, Classification, OrderRefused
from ordersync.domain.events import OrderObserved
from ordersync.ports import StreamState, StreamStatus
from ordersync.testing import FakeClock

SECRET = "sk-very-secret-value-123"

ORDER = {
    "id": "61e69015-8549-4bfd-b9c3-01e75843f47d",
    "client_order_id": "p1",
    "created_at": "2024-01-02T15:04:05Z",
    "updated_at": "2024-01-02T15:04:05Z",
    "submitted_at": "2024-01-02T15:04:05Z",
    "time_in_force": "day",
    "status": "new",
    "extended_hours": False,
    "symbol": "AAPL",
    "qty": "10",
    "filled_qty": "0",
}
GOOD = {
    "stream": "trade_updates",
    "data": {"event": "new", "timestamp": "2024-01-02T15:04:05Z", "order": ORDER},
}
HOSTILE_FRAMES: list[str | bytes] = [
    b"\xff\xfe not json",
    "[1, 2, 3]",
    json.dumps({"stream": "trade_updates", "data": {"event": "fill"}}),  # no order, no timestamp
    json.dumps(
        {**GOOD, "data": {**GOOD["data"], "order": {**ORDER, "status": "exploded"}}}
    ),  # unknown status
    json.dumps({**GOOD, "data": {**GOOD["data"], "execution_id": "not-a-uuid"}}),
    json.dumps({"stream": "something_else", "data": {}}),
    json.dumps(GOOD),
]


async def _hostile_server(ws: ServerConnection) -> None:
    await ws.recv()  # authenticate
    await ws.send(
        json.dumps({"stream": "authorization", "data": {"status": "authorized", "action": "authenticate"}})
    )
    await ws.recv()  # listen
    await ws.send(json.dumps({"stream": "listening", "data": {"streams": ["trade_updates"]}}))
    for frame in HOSTILE_FRAMES:
        await ws.send(frame)
    await asyncio.sleep(5)


async def _first_items(stream: AlpacaStream, n: int) -> list[OrderObserved | StreamStatus]:
    items: list[OrderObserved | StreamStatus] = []
    events: AsyncIterator[OrderObserved | StreamStatus] = stream.events()
    async for item in events:
        items.append(item)
        if len(items) == n:
            break
    return items


async def test_garbage_frames_are_counted_and_the_stream_keeps_delivering() -> None:
    async with serve(_hostile_server, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        stream = AlpacaStream("key", SECRET, clock=FakeClock(), url=f"ws://127.0.0.1:{port}/stream")
        with structlog.testing.capture_logs() as logs:
            items = await asyncio.wait_for(_first_items(stream, 2), timeout=10)
        await stream.close()
    assert isinstance(items[0], StreamStatus)
    assert items[0].state is StreamState.CONNECTED
    assert isinstance(items[1], OrderObserved), "the valid event after the garbage must still arrive"
    assert items[1].order.client_order_id == "p1"
    assert stream.malformed == 5, "every malformed frame is counted (the unrelated stream is ignored)"
    assert all(SECRET not in json.dumps(entry, default=str) for entry in logs)


def _api_error(status: int, body: str) -> APIError:
    response = requests.Response()
    response.status_code = status
    response._content = body.encode()
    return APIError(body, requests.HTTPError(response=response))


@pytest.mark.parametrize(
    ("status", "body", "kind", "classification"),
    [
        (200, "<html>proxy error</html>", BrokerUnavailable, Classification.RETRYABLE),
        (502, "Bad Gateway", BrokerUnavailable, Classification.RETRYABLE),
        (403, '{"code": 40310000}', OrderRefused, Classification.FATAL),  # no message: not assumed qty
        (422, "{not json", OrderRefused, Classification.FATAL),
        (401, '{"message": "unauthorized."}', OrderRefused, Classification.FATAL),
    ],
)
def test_garbage_error_bodies_are_classified_not_crashed(
    status: int, body: str, kind: type[Exception], classification: Classification
) -> None:
    error = classify(_api_error(status, body)) if status != 200 else classify(ValueError(body))
    assert isinstance(error, kind)
    assert error.classification is classification


def test_an_unauthorized_error_names_the_variables_not_the_keys() -> None:
    error = classify(_api_error(401, json.dumps({"message": f"unauthorized. {SECRET}"})))
    assert "APCA_API_KEY_ID" in str(error)
    assert SECRET not in str(error)


def test_the_broker_adapter_never_shows_its_keys() -> None:
    broker = AlpacaBroker("key-id-abc", SECRET, clock=FakeClock(), base_url="http://127.0.0.1:1")
    stream = AlpacaStream("key-id-abc", SECRET, clock=FakeClock(), url="ws://127.0.0.1:1/stream")
    for text in (repr(broker), repr(stream), str(broker), str(stream)):
        assert SECRET not in text
        assert "key-id-abc" not in text


async def test_a_dead_broker_is_unavailable_not_a_crash() -> None:
    broker = AlpacaBroker("k", SECRET, clock=FakeClock(), base_url="http://127.0.0.1:1", timeout_s=1)
    with pytest.raises(BrokerUnavailable) as raised:
        await broker.get_by_client_id("p1")  # type: ignore[arg-type]
    assert SECRET not in str(raised.value)


def test_structlog_redaction_masks_secret_values_and_credential_fields() -> None:
    from ordersync.logging import redactor

    redact = redactor([SECRET])
    event: dict[str, Any] = {"event": f"failed with {SECRET}", "secret_key": "x", "api_key": "y", "n": 1}
    out = redact(None, "info", event)
    assert out["event"] == "failed with ***"
    assert out["secret_key"] == out["api_key"] == "***"
    assert out["n"] == 1
