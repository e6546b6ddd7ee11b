"""One simulator instance: a market shared by one or more accounts, each with its exchange, stream, faults
and counters, wired together.

`Simulator` is what the REST app, the control API and `SimServer` share. It holds no logic of its own beyond
the wiring: which account a key pair opens (the configured pair, or any non-empty pair when none is
configured and the scenario lists no `accounts`; otherwise each account's own pair), scheduled stream drops
from each account's fault config, the state snapshot of `/sim/state`, and the background ticker that fires
timed events for real and fast clocks (and zero-latency events for a stepped clock).

Many accounts (docs/scenarios.md, "accounts"): every account has its own books, positions, orders, fill
plans, actions, faults, counters and stream; they share the market (symbols, prices, calendar, clock), one
lock and one scheduler, and the per-key rate limiter (each key its own budget). `exchange`, `faults`,
`counters`, `hub` and `actions` are the first account's, so single-account callers see what they always did.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from .actions import ActionRunner
from .activities import FillLog
from .clock import SimClock
from .counters import Counters
from .exchange import Exchange, Market
from .faults import FaultConfig, FaultInjector
from .model import SymbolInfo
from .ratelimit import RateLimiter, fingerprint
from .scenarios import AccountSpec, Scenario, ScenarioError
from .stream import StreamGateway, StreamHub
from .wire import ApiError, JsonDict

__all__ = ["TICK_INTERVAL_S", "SimAccount", "Simulator"]

TICK_INTERVAL_S = 0.01  # real seconds between ticker passes


@dataclass(eq=False)
class SimAccount:
    """One account of the simulator and everything that is its own."""

    spec: AccountSpec
    exchange: Exchange
    faults: FaultInjector
    counters: Counters
    hub: StreamHub
    actions: ActionRunner
    fills: FillLog = field(default_factory=FillLog)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def key_id(self) -> str | None:
        return self.spec.key_id

    def summary(self) -> JsonDict:
        """One row of `GET /sim/accounts`: never a key, only its fingerprint."""
        book = self.exchange.book
        with self.exchange.lock:
            open_orders = len(book.open_orders())
            orders, positions = len(book.orders), len(book.positions)
        return {
            "name": self.name,
            "account_id": self.spec.account_id,
            "account_number": self.spec.account_number,
            "key": None if self.key_id is None else fingerprint(self.key_id),
            "orders": orders,
            "open_orders": open_orders,
            "positions": positions,
            "listening": self.hub.listening_count(),
        }


class Simulator:
    """A scenario running on a clock, ready to be served."""

    def __init__(
        self, scenario: Scenario, clock: SimClock, api_key: str | None = None, secret_key: str | None = None
    ) -> None:
        self.scenario = scenario
        self.clock = clock
        # Without `accounts`, the one account takes the pair `serve` was given (or any non-empty pair).
        self._credentials = (api_key, secret_key) if api_key and secret_key else None
        self.market = Market(clock, scenario.symbol_infos())
        self.accounts: list[SimAccount] = [self._open(spec) for spec in scenario.account_specs()]
        self._by_name = {a.name: a for a in self.accounts}
        self._by_key = {a.key_id: a for a in self.accounts if a.key_id is not None}
        self.gateway = StreamGateway(self._stream_hub)
        self.limiter = RateLimiter(scenario.rate_limit_per_min, clock)

    def _open(self, spec: AccountSpec) -> SimAccount:
        counters = Counters()
        seed = self.scenario.seed + spec.index
        faults = FaultInjector(spec.faults, counters, default_seed=seed)
        hub = StreamHub(faults, counters)
        try:
            exchange = Exchange(self.scenario.exchange_config(spec), self.clock, hub, self.market)
        except ValueError as e:
            where = "" if spec.key_id is None else f" account {spec.name!r}:"
            raise ScenarioError(f"scenario {self.scenario.name!r}:{where} {e}") from None
        faults.bind_clock(self.clock, exchange.started_at)
        exchange.venue.omit_sibling_event = faults.omit_sibling_event
        actions = ActionRunner(exchange, spec.parents, self.scenario.actions)
        account = SimAccount(spec, exchange, faults, counters, hub, actions, FillLog(spec.account_id))
        self._schedule_stream_drops(account, spec.faults, elapsed_s=0.0)
        return account

    # -- the first account, for single-account callers ------------------------------------------------------

    @property
    def default(self) -> SimAccount:
        return self.accounts[0]

    @property
    def exchange(self) -> Exchange:
        return self.default.exchange

    @property
    def faults(self) -> FaultInjector:
        return self.default.faults

    @property
    def counters(self) -> Counters:
        return self.default.counters

    @property
    def hub(self) -> StreamHub:
        return self.default.hub

    @property
    def actions(self) -> ActionRunner:
        return self.default.actions

    # -- accounts and keys -------------------------------------------------------------------------------

    @property
    def multi_account(self) -> bool:
        return self.scenario.accounts_declared

    def account_named(self, name: str | None) -> SimAccount:
        """The account called `name` (the first one when None).

        Raises:
            ApiError: 404 when no account has that name.
        """
        if name is None:
            return self.default
        account = self._by_name.get(name)
        if account is None:
            raise ApiError(404, {"code": 40410000, "message": f"account {name[:64]!r} not found"})
        return account

    def account_for_key(self, key: str) -> SimAccount:
        """The account a request with this key id is about (the first one when the key opens none, so an
        unauthorized request is still counted somewhere)."""
        return self._by_key.get(key, self.default) if self.multi_account else self.default

    def authenticate(self, key: str, secret: str) -> SimAccount | None:
        """The account this key pair opens, or None."""
        if not self.multi_account:
            return self.default if self.check_credentials(key, secret) else None
        account = self._by_key.get(key)
        if account is None or account.spec.secret_key is None:
            return None
        return account if hmac.compare_digest(secret, account.spec.secret_key) else None

    def check_credentials(self, key: str, secret: str) -> bool:
        """Single account: accept the configured pair, or any non-empty pair when none is configured."""
        if self.multi_account:
            return self.authenticate(key, secret) is not None
        if self._credentials is None:
            return bool(key) and bool(secret)
        want_key, want_secret = self._credentials
        return hmac.compare_digest(key, want_key or "") and hmac.compare_digest(secret, want_secret or "")

    def _stream_hub(self, key: str, secret: str) -> StreamHub | None:
        account = self.authenticate(key, secret)
        return None if account is None else account.hub

    # -- the market ----------------------------------------------------------------------------------------

    def set_price(self, symbol: str, price: Decimal, exchange: str = "NYSE") -> None:
        """Move (or list) a symbol's price; working orders of every account react at once."""
        with self.market.lock:
            for account in self.accounts:
                account.exchange.set_price(symbol, price, exchange)

    def market_symbols(self) -> list[SymbolInfo]:
        with self.market.lock:
            return sorted(self.market.symbols.values(), key=lambda s: s.symbol)

    # -- control ---------------------------------------------------------------------------------------

    def set_faults(self, config: FaultConfig, account: SimAccount | None = None) -> None:
        """Replace one account's fault configuration at runtime; `stream_drop_at_s` then counts from now."""
        target = account or self.default
        target.faults.configure(config)
        elapsed = (self.clock.now() - self.market.started_at).total_seconds()
        self._schedule_stream_drops(target, config, elapsed_s=elapsed)

    def state(self, account: SimAccount | None = None) -> JsonDict:
        """One account's observable state: books, counters, faults, rate limit and stream connections."""
        target = account or self.default
        state = target.exchange.snapshot()
        state["counters"] = target.counters.snapshot()
        state["faults"] = target.faults.config.model_dump(mode="json")
        state["rate_limit"] = self.limiter.snapshot()
        state["stream"] = {"listening": target.hub.listening_count()}
        state["scenario"] = self.scenario.name
        state["actions"] = target.actions.log()
        state["counters"]["actions"] = target.actions.counts()
        if self.multi_account:
            state["account"]["name"] = target.name
            state["accounts"] = [a.name for a in self.accounts]
        return state

    def accounts_summary(self) -> list[JsonDict]:
        return [account.summary() for account in self.accounts]

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        self.gateway.bind_loop(loop)
        for account in self.accounts:
            account.hub.bind_loop(loop)

    def disconnect_all(self) -> int:
        """Drop every stream connection of every account (and unauthenticated ones): a shutdown."""
        return sum(a.hub.disconnect_all() for a in self.accounts) + self.gateway.drop_pending()

    async def run_ticker(self) -> None:
        """Fire due timed events every TICK_INTERVAL_S until cancelled."""
        while True:
            self.exchange.tick()  # the scheduler is the market's: one pass fires every account's events
            for account in self.accounts:
                account.hub.flush_stale()
            await asyncio.sleep(TICK_INTERVAL_S)

    def http_latency_s(
        self, method: str, route: str, symbol: str | None, account: SimAccount | None = None
    ) -> float:
        """Virtual seconds before a /v2 answer: the scenario's `latency.routes` (else `http_s`) plus the
        latency of the account's active fault windows."""
        latency = self.scenario.latency
        base = latency.routes.get(f"{method} {route}", latency.routes.get(route, latency.http_s))
        return base + (account or self.default).faults.window_latency_s(method, route, symbol)

    def _schedule_stream_drops(self, account: SimAccount, config: FaultConfig, elapsed_s: float) -> None:
        for at_s in config.stream_drop_at_s:
            account.exchange.schedule_at(elapsed_s + at_s, "stream drop", _dropper(account.hub))


def _dropper(hub: StreamHub) -> Callable[[], None]:
    def drop() -> None:
        hub.disconnect_all()

    return drop
