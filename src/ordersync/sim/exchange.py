"""The simulated broker behind one lock: the operations the REST API, the control API and in-process callers
use.

`Exchange` owns the books (`Book`), the venue lifecycle (`Venue`), the scheduler of timed events and the
scenario's fill plans. Every public method takes the one `threading.RLock`, so the REST handlers on uvicorn's
loop, the background ticker and a test thread advancing the stepped clock all see consistent books. Methods
return JSON-ready dicts (Alpaca's shapes) rather than live records, so nothing outside escapes the lock.

Fill plans: a buy (or any order) whose client_order_id names a scenario parent is filled by that parent's
plan (virtual seconds after its submission) instead of by price; a plan that sums below the quantity leaves
the order partially filled; `cancel_after_s` / `expire_after_s` make the venue end the remainder, and
`reject_after_s` rejects the order after its POST was answered 200 (Alpaca rejects asynchronously too); a
plan follows its order through replacements.

Scenario format v2 adds starting positions and a margin multiplier to the books, other applications' orders
already working at the start (`foreign_orders`, no events: they predate every client), asynchronous replaces
(`pending_replace`, then `replaced` or `order_replace_rejected`) and, with `market.calendar`, the market
sessions of `sessions.py`.

Around it, by concept: `exchange_config.py` (what a scenario sets, what accounts share), `fill_plans.py` (a
parent's plan on the venue), `replacement.py` (a PATCH and the venue's later answer) and `books_json.py` (the
books as /sim/state shows them)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal

from .book import Book
from .books_json import always_open_clock, held_json, order_detail, position_detail
from .checks import Policy, check_new_order
from .clock import SimClock, SteppedClock
from .configurations import AccountConfigurations
from .exchange_config import ExchangeConfig, FillPlan, FillStep, Market, PricePoint
from .fill_plans import FillPlans, live_successor
from .groups import create_group, new_order, replacement_spec
from .model import Position, SimOrder, SymbolInfo
from .order_request import OrderSpec, ReplaceSpec, is_fractional
from .queries import OrderQuery, select_orders
from .replacement import confirm_replace, replaceable
from .serialize import account_json, order_json
from .sessions import MarketSessions
from .venue import EventSink, Venue, notional_qty, order_with_legs
from .wire import CODE_UNPROCESSABLE, ApiError, JsonDict, asset_id_for, fmt_decimal, fmt_time, new_id

__all__ = ["Exchange", "ExchangeConfig", "FillPlan", "FillStep", "Market", "PricePoint"]


class Exchange:
    """One simulated Alpaca account with its venue; thread-safe. Several exchanges may share one `Market`
    (many accounts in one simulator); without one, the exchange has a market of its own."""

    def __init__(
        self, config: ExchangeConfig, clock: SimClock, sink: EventSink, market: Market | None = None
    ) -> None:
        self.market = market or Market(clock, config.symbols)
        self.lock = self.market.lock
        self.clock = clock
        self.config = config
        self.scheduler = self.market.scheduler
        self.book = Book(
            config.cash,
            self.market.symbols,
            [Position(symbol, qty, avg) for symbol, qty, avg in config.positions],
            config.margin_multiplier,
        )
        self.venue = Venue(self.book, clock, self.scheduler, sink, config.latency)
        self.plans = FillPlans(
            self.book, self.venue, self.scheduler, clock, config.plans, config.latency.ack_s
        )
        # The account's settings (GET/PATCH /v2/account/configurations), enforced on every new order.
        self.configurations = AccountConfigurations(
            max_margin_multiplier=str(config.margin_multiplier),
            no_shorting=not config.policy.shorting_enabled,
        )
        self.started_at = self.market.started_at
        for point in config.prices:
            self.schedule_at(
                point.at_s, f"price {point.symbol}", self._price_setter(point.symbol, point.price)
            )
        self.sessions: MarketSessions | None = None
        if config.calendar:
            self.sessions = MarketSessions(self, config.done_for_day)
            self.plans.sessions = self.sessions
            self.venue.can_trade = self.sessions.can_trade
            self.sessions.start()
        for index, spec in enumerate(config.foreign_orders):
            self._place_foreign(index, spec)
        if isinstance(clock, SteppedClock):
            clock.bind(self.advance_to)

    def _place_foreign(self, index: int, spec: OrderSpec) -> None:
        """Put another application's order in the books as already working (no events: it predates us).

        Raises:
            ValueError: the account refuses it (one line naming the order).
        """
        assert spec.qty is not None  # scenario foreign orders always give qty
        try:
            coid = self._unique_client_order_id(spec.client_order_id)
            check_new_order(self.book, self.policy(), spec, spec.qty)
        except ApiError as e:
            raise ValueError(f"foreign_orders.{index}: refused by the account: {e.body['message']}") from None
        root = create_group(self.book, self.clock.now(), spec, spec.qty, coid)
        self.venue.touch(root, "new")
        self.venue.later(0, f"match {root.id}", lambda: self.venue.match(root))

    # -- time ------------------------------------------------------------------------------------------

    def schedule_at(self, offset_s: float, label: str, callback: Callable[[], None]) -> None:
        """Run `callback()` at start + offset_s virtual seconds (used for price paths and stream drops)."""
        with self.lock:
            self.scheduler.schedule(self.started_at + timedelta(seconds=offset_s), label, callback)

    def tick(self) -> int:
        """Fire the timed events now due; called by the background ticker."""
        with self.lock:
            return self.scheduler.run_due(self.clock.now())

    def advance_to(self, target: datetime) -> None:
        """Walk a stepped clock to `target`, firing each due event at its own time."""
        clock = self.clock
        if not isinstance(clock, SteppedClock):
            raise ApiError(409, {"code": 40910000, "message": "the simulator clock is not stepped"})
        with self.lock:
            self.scheduler.step_to(target, clock.set_now)

    # -- orders ----------------------------------------------------------------------------------------

    def submit(self, spec: OrderSpec) -> JsonDict:
        """Accept a new order (status `accepted`) or raise Alpaca's refusal.

        Raises:
            ApiError: 403/422 with Alpaca's body.
        """
        with self.lock:
            settings = self.configurations.get()
            if settings["suspend_trade"]:
                # observed body (lumibot#373); docs/simulator.md, "Account configuration"
                raise ApiError.forbidden("new orders are rejected by user request")
            info = self.book.symbol(spec.symbol)
            if is_fractional(spec) and not settings["fractional_trading"]:
                raise ApiError.unprocessable(
                    "fractional trading is not enabled for this account", code=CODE_UNPROCESSABLE
                )
            if is_fractional(spec) and not info.fractionable:
                raise ApiError.unprocessable(
                    f"asset {spec.symbol} is not fractionable", code=CODE_UNPROCESSABLE
                )
            qty = spec.qty if spec.qty is not None else notional_qty(spec.notional, info.price)
            coid = self._unique_client_order_id(spec.client_order_id)
            check_new_order(self.book, self.policy(), spec, qty)
            root = create_group(self.book, self.clock.now(), spec, qty, coid)
            root.notional = spec.notional
            self.plans.start(root)
            return order_with_legs(self.book, root)

    def get_order(self, order_id: str, nested: bool) -> JsonDict:
        with self.lock:
            order = self.book.get(order_id)
            return order_with_legs(self.book, order) if nested else order_json(order)

    def order_symbol(self, order_id: str) -> str | None:
        """The symbol of an order, or None when unknown (for symbol-limited faults)."""
        with self.lock:
            order = self.book.orders.get(order_id)
            return None if order is None else order.symbol

    def get_by_client_id(self, client_order_id: str) -> JsonDict:
        with self.lock:
            return order_json(self.book.get_by_client_id(client_order_id))

    def list_orders(self, query: OrderQuery) -> list[JsonDict]:
        with self.lock:
            chosen = select_orders(self.book, query)
            if query.nested:
                return [order_with_legs(self.book, o) for o in chosen]
            return [order_json(o) for o in chosen]

    def cancel(self, order_id: str) -> None:
        """Request an asynchronous cancel (the REST layer answers 204).

        Raises:
            ApiError: 404 when unknown, 422 when the order can no longer be canceled.
        """
        with self.lock:
            order = self.book.get(order_id)
            if not order.is_open or order.status == "pending_replace":
                raise ApiError.unprocessable(
                    f'order is already in "{order.status}" state', code=CODE_UNPROCESSABLE
                )
            if not order.cancel_requested:
                self.venue.request_cancel(order)

    def cancel_all(self) -> list[JsonDict]:
        """Request a cancel of every open order; return Alpaca's 207 items."""
        with self.lock:
            results: list[JsonDict] = []
            for order in self.book.open_orders():
                if not order.cancel_requested:
                    self.venue.request_cancel(order)
                results.append({"id": order.id, "status": 200})
            return results

    def replace(self, order_id: str, spec: ReplaceSpec) -> JsonDict:
        """Request an asynchronous replace (PATCH): answer with the new order, confirm it later.

        The old order goes `pending_replace` (event `pending_replace`) and keeps working; after the venue's
        replace latency it ends `replaced` (event `replaced`) and the new order goes live. If the old order
        filled (or otherwise ended) first, the replace fails: event `order_replace_rejected` on the old
        order, and the new order, which never lived, ends `rejected` without an event of its own
        (docs/alpaca.md, "Replace is asynchronous"). Held exit legs of a bracket/OTO/OCO can be replaced
        and stay in their group; a bracket's entry cannot.

        Raises:
            ApiError: 404, 422 (state or fields), 403 (unchanged parameters, or the new qty is not available).
        """
        with self.lock:
            old = self.book.get(order_id)
            if not replaceable(old):
                raise ApiError.unprocessable(
                    "unable to replace order in current state", code=CODE_UNPROCESSABLE
                )
            if old.group_id is not None and (spec.qty is not None or spec.time_in_force is not None):
                # Legs take new prices only: a price-only PATCH of an OTO/bracket leg is accepted, a qty one
                # is refused 42210000 (observed on paper; docs/simulator.md, "Brackets and OTO"); the wording
                # is unconfirmed.
                raise ApiError.unprocessable(
                    "only limit_price and stop_price of a leg order can be replaced", code=CODE_UNPROCESSABLE
                )
            new_spec = replacement_spec(old, spec)
            qty = spec.qty if spec.qty is not None else old.remaining
            coid = self._unique_client_order_id(spec.client_order_id)
            if old.order_class == "simple":
                check_new_order(self.book, self.policy(), new_spec, qty, exclude=[old.id])
            new = new_order(self.book, self.clock.now(), new_spec, qty, coid, role=old.role)
            new.replaces, new.order_class, new.replacing = old.id, old.order_class, True
            self.book.add(new)
            old.status_before_replace = old.status
            self.venue.touch(old, "pending_replace")
            self.venue.emit("pending_replace", old)
            self.venue.later(
                self.config.latency.replace_s,
                f"replace {old.id}",
                lambda: confirm_replace(
                    self.book, self.venue, self.plans, old, new, derive_qty=spec.qty is None
                ),
            )
            return order_json(new)

    def manual_fill(
        self, order_id: str | None, client_order_id: str | None, qty: Decimal | None, price: Decimal | None
    ) -> JsonDict:
        """Fill an order now, whatever its plan or the price; by default all of it at the current price.

        Raises:
            ApiError: 404 when unknown, 422 when not open or held.
        """
        with self.lock:
            order = self.book.get(order_id) if order_id else self.book.get_by_client_id(client_order_id or "")
            if not order.is_open or order.status == "held":
                raise ApiError.unprocessable(
                    f"order is {order.status}; it cannot be filled", code=CODE_UNPROCESSABLE
                )
            fill_qty = order.remaining if qty is None else qty
            self.venue.execute(order, fill_qty, price or self.book.price(order.symbol))
            return order_json(order)

    # -- prices, positions, account --------------------------------------------------------------------------

    def set_price(self, symbol: str, price: Decimal, exchange: str = "NYSE") -> None:
        """Move (or list) a symbol's price and let working orders react to it."""
        with self.lock:
            info = self.book.symbols.get(symbol)
            if info is None:
                self.book.symbols[symbol] = SymbolInfo(symbol, price, exchange, asset_id_for(symbol))
            else:
                info.price = price
            self.venue.match_symbol(symbol)

    def positions(self) -> list[JsonDict]:
        with self.lock:
            return [position_detail(self.book, symbol) for symbol in sorted(self.book.positions)]

    def position(self, symbol: str) -> JsonDict:
        with self.lock:
            if symbol not in self.book.positions:
                raise ApiError.not_found("position does not exist")
            return position_detail(self.book, symbol)

    def close_position(self, symbol: str, qty: Decimal | None, percentage: Decimal | None) -> JsonDict:
        """Submit a market order closing all of the position, `qty` shares or `percentage` of it.

        Raises:
            ApiError: 404 "position does not exist", or the refusals of a new order (shares held by orders).
        """
        if qty is not None and qty <= 0:
            raise ApiError.unprocessable("qty must be > 0")
        if percentage is not None and not 0 < percentage <= 100:
            raise ApiError.unprocessable("percentage must be between 0 and 100")
        with self.lock:
            held = self.book.position_qty(symbol)
            if held == 0:
                raise ApiError.not_found("position does not exist")
            size = abs(held) if qty is None else qty
            if percentage is not None:
                size = (abs(held) * percentage / 100).quantize(Decimal("0.000000001"))
            side = "sell" if held > 0 else "buy"
            return self.submit(
                OrderSpec(symbol=symbol, side=side, type="market", time_in_force="day", qty=size)
            )

    def market_clock(self) -> JsonDict:
        """The market clock: the NYSE calendar's with `market.calendar`, else a market that never closes."""
        now = self.clock.now()
        if self.sessions is not None:
            return self.sessions.calendar.clock_json(now)
        return always_open_clock(now)

    def policy(self) -> Policy:
        """The refusal policy in force: shorting as the `no_shorting` configuration says."""
        no_shorting = bool(self.configurations.get()["no_shorting"])
        return Policy(shorting_enabled=not no_shorting, wash_trade_check=self.config.policy.wash_trade_check)

    def get_configurations(self) -> JsonDict:
        return self.configurations.get()

    def patch_configurations(self, body: object) -> JsonDict:
        """Apply a PATCH of the account configuration; the margin cap takes effect at once.

        Raises:
            ApiError: 400 / 422 as `AccountConfigurations.patch`.
        """
        with self.lock:
            settings = self.configurations.patch(body)
            self.book.multiplier_cap = int(str(settings["max_margin_multiplier"]))
            return settings

    def account(self) -> JsonDict:
        with self.lock:
            values = [p.qty * self.book.price(p.symbol) for p in self.book.positions.values()]
            body = account_json(
                self.book.cash,
                self.book.buying_power(),
                sum((v for v in values if v > 0), Decimal(0)),
                sum((v for v in values if v < 0), Decimal(0)),
                self.started_at,
                self.book.multiplier,
                self.config.account_id,
                self.config.account_number,
            )
            settings = self.configurations.get()
            body["shorting_enabled"] = not settings["no_shorting"]
            body["trade_suspended_by_user"] = bool(settings["suspend_trade"])
            return body

    def snapshot(self) -> JsonDict:
        """Everything the control API's /sim/state shows about the books."""
        with self.lock:
            return {
                "now": fmt_time(self.clock.now()),
                "started_at": fmt_time(self.started_at),
                "orders": [order_detail(self.book, o) for o in self.book.orders.values()],
                "positions": [
                    position_detail(self.book, s) | {"held_for_orders": held_json(self.book, s)}
                    for s in sorted(self.book.positions)
                ],
                "account": self.account(),
                "prices": {s: fmt_decimal(i.price) for s, i in sorted(self.book.symbols.items())},
                "pending_timers": [
                    {"due": fmt_time(d), "label": label} for d, label in self.scheduler.pending()
                ],
            }

    # -- internals ------------------------------------------------------------------------------------

    def _unique_client_order_id(self, client_order_id: str | None) -> str:
        if client_order_id is None:
            return new_id()
        if client_order_id in self.book.by_client_id:
            raise ApiError.unprocessable("client_order_id must be unique")
        return client_order_id

    def _price_setter(self, symbol: str, price: Decimal) -> Callable[[], None]:
        return lambda: self.set_price(symbol, price)

    def live_successor(self, order: SimOrder) -> SimOrder:
        """`order`, or the order that replaced it (through the whole `replaced_by` chain)."""
        return live_successor(self.book, order)
