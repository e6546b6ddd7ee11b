"""Embed the ordersync engine in your own asyncio program (the README's "Embedding the engine" section).

Point it at Alpaca (paper) or at the simulator, with the keys in the environment:

    export APCA_API_KEY_ID=demo-key APCA_API_SECRET_KEY=demo-secret
    ordersync sim serve --port 8800 &
    python examples/embed.py --base-url http://127.0.0.1:8800 --stream-url ws://127.0.0.1:8800/stream

It submits one marketable limit buy with a take-profit and a stop-loss, prints what the engine tells it
(the broker's acceptance, the confirmed fill, the protective OCO released for exactly the filled shares),
and stops once that OCO is live at the broker. CI runs this file against the simulator
(tests/e2e/test_embed_example.py), so the snippet in the README cannot rot.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from decimal import Decimal

from ordersync.bootstrap import build_engine
from ordersync.clocks import SystemClock
from ordersync.config import (
    BrokerSettings,
    EngineSettings,
    Settings,
    StoreSettings,
    credentials_from_env,
    secret_values,
)
from ordersync.domain.kinds import NotificationKind
from ordersync.domain.order import OrderRole, new_order
from ordersync.domain.protection import PriceRule, ProtectionPlan
from ordersync.engine.context import Notification
from ordersync.logging import configure


def say(*words: object) -> None:
    """One line on stdout (the engine's own logs go to stderr)."""
    sys.stdout.write(" ".join(str(w) for w in words) + "\n")
    sys.stdout.flush()


async def main(base_url: str, stream_url: str, store_url: str, symbol: str, limit: Decimal) -> int:
    settings = Settings(
        broker=BrokerSettings(base_url=base_url, stream_url=stream_url),
        store=StoreSettings(url=store_url),
        engine=EngineSettings(poll_interval_s=1),
    )
    configure(json=False, level="warning", secrets=secret_values())  # engine logs to stderr, keys masked
    clock = SystemClock()
    engine, store, _ = build_engine(settings, credentials_from_env(), clock)
    protected = asyncio.Event()

    def on_note(note: Notification) -> None:  # called on the engine's loop: never block, never raise
        say(note.kind, note.client_order_id, {k: str(v) for k, v in note.detail.items()})
        if note.kind is NotificationKind.ACCEPTED and note.detail.get("role") == OrderRole.OCO.value:
            protected.set()

    await engine.start()  # takes the HA lease, catches up with the broker, resumes earlier work
    engine.subscribe(on_note)
    try:
        parent = new_order(
            client_order_id=f"embed-{uuid.uuid4().hex[:8]}",  # yours; ordersync derives its children's
            symbol=symbol,
            side="buy",
            type="limit",
            qty=9,
            limit_price=limit,
            created_at=clock.now(),
            time_in_force="gtc",
        )
        plan = ProtectionPlan(
            take_profit=PriceRule(offset=Decimal("0.05")),  # 5 % above the average fill price
            stop_loss=PriceRule(offset=Decimal("0.05")),  # 5 % below it
        )
        await engine.submit(parent, plan)
        await asyncio.wait_for(protected.wait(), timeout=60)
        for order in engine.orders():
            say("held:", order.client_order_id, order.role, order.status, order.qty, order.filled_qty)
        return 0
    finally:
        await engine.stop()
        store.close()


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default="https://paper-api.alpaca.markets")
    parser.add_argument("--stream-url", default="wss://paper-api.alpaca.markets/stream")
    parser.add_argument("--store", default="sqlite:///embed.db", help="SQLAlchemy URL of the store")
    parser.add_argument("--symbol", default="OKE")
    parser.add_argument("--limit", type=Decimal, default=Decimal("72.20"), help="limit price of the buy")
    return parser.parse_args()


if __name__ == "__main__":
    a = _args()
    raise SystemExit(asyncio.run(main(a.base_url, a.stream_url, a.store, a.symbol, a.limit)))
