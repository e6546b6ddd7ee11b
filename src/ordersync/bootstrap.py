"""The composition root: settings -> adapters -> engine. The only place concrete classes are chosen."""

from __future__ import annotations

from ordersync.brokers.alpaca import AlpacaBroker, AlpacaStream
from ordersync.clocks import SystemClock
from ordersync.config import Credentials, Settings
from ordersync.engine import Engine, EngineOptions
from ordersync.ports import Clock
from ordersync.store import SqlAlchemyStore, open_store


def engine_options(settings: Settings) -> EngineOptions:
    """Return the engine tunables from the config file."""
    return EngineOptions(**settings.engine.model_dump())


def build_engine(
    settings: Settings, credentials: Credentials, clock: Clock | None = None, *, with_lease: bool = True
) -> tuple[Engine, SqlAlchemyStore, AlpacaBroker]:
    """Wire an engine against the configured broker and store (with the HA lease unless told not to)."""
    clock = clock or SystemClock()
    key, secret = credentials.key_id.get_secret_value(), credentials.secret_key.get_secret_value()
    broker = AlpacaBroker(
        key,
        secret,
        clock=clock,
        base_url=settings.broker.base_url,
        paper=settings.broker.paper,
        timeout_s=settings.broker.timeout_s,
        requests_per_minute=settings.broker.requests_per_minute,
    )
    stream = AlpacaStream(key, secret, clock=clock, url=settings.broker.stream_url)
    store = open_store(settings.store.url, keep_orders=True)  # the engine is the single writer
    # one active instance per account and database; the key id only names the lock (it is hashed)
    lease = store.lease(f"ordersync:{key}") if with_lease else None
    engine = Engine(
        broker=broker, store=store, clock=clock, stream=stream, options=engine_options(settings), lease=lease
    )
    return engine, store, broker
