"""The composition root: settings -> adapters -> engine. The only place concrete classes are chosen.

Every engine is built here: ``ordersync run`` and ``reconcile``, the fleet's workers, the demo's safe mode,
the chaos worker (``tools/chaos``) and the end-to-end tests. What differs between them is passed in as
parameters (tunables, an open store to reuse, stream tuning, a wrapper around the adapters), so none of them
wires a broker, a stream or a store by hand and the engine itself carries no test or demo hook.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ordersync.brokers.alpaca import AlpacaBroker, AlpacaStream
from ordersync.clocks import SystemClock
from ordersync.config import Credentials, Settings
from ordersync.engine import Engine, EngineOptions
from ordersync.ports import Broker, Clock, Lease, Store
from ordersync.store import SqlAlchemyStore, open_store

__all__ = ["Adapt", "Wiring", "build_engine", "engine_options", "wire"]

# Wraps the adapters the engine will see, never the ones the caller keeps (the chaos worker's crash points)
Adapt = Callable[[Store, Broker], tuple[Store, Broker]]


@dataclass(frozen=True)
class Wiring:
    """An engine and the concrete adapters it was built on.

    The caller keeps the adapters: it closes the store and releases the lease when done, and a driver of
    virtual time reads the broker's requests in flight and its budget."""

    engine: Engine
    store: SqlAlchemyStore
    broker: AlpacaBroker
    stream: AlpacaStream | None
    lease: Lease | None


def engine_options(settings: Settings) -> EngineOptions:
    """Return the engine tunables from the config file."""
    return EngineOptions(**settings.engine.model_dump())


def wire(
    settings: Settings,
    credentials: Credentials,
    clock: Clock | None = None,
    *,
    with_lease: bool = True,
    options: EngineOptions | None = None,
    store: SqlAlchemyStore | None = None,
    keep_orders: bool = True,
    stream: bool = True,
    stream_seed: int | None = None,
    stream_max_backoff_s: float = 30.0,
    adapt: Adapt | None = None,
) -> Wiring:
    """Build (not start) an engine against the configured broker and store.

    ``options``: the engine's tunables when not the config file's (tests and the demo run faster or slower
    loops than a config may set). ``store``: an open store to reuse (an engine restarted on the same
    store); else ``settings.store.url`` is opened, keeping open orders in memory (``keep_orders``) as the
    engine's own store does when it is the single writer. ``stream``: False builds an engine without the
    websocket (it polls). ``with_lease``: one active instance per account and database; the key id only
    names the lock (it is hashed). ``adapt``: wraps the store and broker the engine sees.
    """
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
    events = (
        AlpacaStream(
            key,
            secret,
            clock=clock,
            url=settings.broker.stream_url,
            max_backoff_s=stream_max_backoff_s,
            seed=stream_seed,
        )
        if stream
        else None
    )
    store = store or open_store(settings.store.url, keep_orders=keep_orders)
    lease = store.lease(f"ordersync:{key}") if with_lease else None
    seen_store, seen_broker = adapt(store, broker) if adapt is not None else (store, broker)
    engine = Engine(
        broker=seen_broker,
        store=seen_store,
        clock=clock,
        stream=events,
        options=options or engine_options(settings),
        lease=lease,
    )
    return Wiring(engine=engine, store=store, broker=broker, stream=events, lease=lease)


def build_engine(
    settings: Settings, credentials: Credentials, clock: Clock | None = None, *, with_lease: bool = True
) -> tuple[Engine, SqlAlchemyStore, AlpacaBroker]:
    """Wire an engine as ``ordersync run`` does (with the HA lease unless told not to): ``wire`` with the
    config file's everything, for callers that need only the engine, its store and its broker."""
    wiring = wire(settings, credentials, clock, with_lease=with_lease)
    return wiring.engine, wiring.store, wiring.broker
