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
sessions of `sessions.py`."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from .book import Book
from .checks import Policy, check_new_order
from .clock import SimClock, SteppedClock
from .groups import create_group, new_order, replacement_spec, swap_into_group
from .model import Position, SimOrder, SymbolInfo
from .order_request import OrderSpec, ReplaceSpec, is_fractional
from .queries import OrderQuery, select_orders
from .scheduler import Scheduler
from .serialize import account_json, order_json, position_json
from .sessions import MarketSessions
from .venue import EventSink, Latency, Venue, notional_qty, order_with_legs
from .wire import CODE_UNPROCESSABLE, ApiError, JsonDict, asset_id_for, fmt_decimal, fmt_time, new_id

__all__ = ["Exchange", "ExchangeConfig", "FillPlan", "FillStep", "PricePoint"]


@dataclass(frozen=True)
class FillStep:
    after_s: float
    qty: Decimal
    price: Decimal | None = None


@dataclass(frozen=True)
class FillPlan:
    steps: tuple[FillStep, ...] = ()
    cancel_after_s: float | None = None
    expire_after_s: float | None = None
    reject_after_s: float | None = None


@dataclass(frozen=True)
class PricePoint:
    at_s: float
    symbol: str
    price: Decimal


@dataclass(frozen=True)
class ExchangeConfig:
    """Everything a scenario sets on the broker model."""

    symbols: Sequence[SymbolInfo]
    cash: Decimal = Decimal(1_000_000)
    policy: Policy = field(default_factory=Policy)
    latency: Latency = field(default_factory=Latency)
    plans: Mapping[str, FillPlan] = field(default_factory=dict)
    prices: Sequence[PricePoint] = ()
    positions: Sequence[tuple[str, Decimal, Decimal]] = ()  # (symbol, signed qty, avg entry price)
    margin_multiplier: int = 1
    foreign_orders: Sequence[OrderSpec] = ()  # other applications' open orders at the start
    calendar: bool = False  # market sessions on the NYSE calendar (False: always open)
    done_for_day: bool = False  # partially filled GTC orders go `done_for_day` at the close


class Exchange:
    """One simulated Alpaca account with its venue; thread-safe."""

    def __init__(self, config: ExchangeConfig, clock: SimClock, sink: EventSink) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.config = config
        self.scheduler = Scheduler()
        self.book = Book(
            config.cash,
            config.symbols,
            [Position(symbol, qty, avg) for symbol, qty, avg in config.positions],
            config.margin_multiplier,
        )
        self.venue = Venue(self.book, clock, self.scheduler, sink, config.latency)
        self.started_at = clock.now()
        for point in config.prices:
            self.schedule_at(
                point.at_s, f"price {point.symbol}", self._price_setter(point.symbol, point.price)
            )
        self.sessions: MarketSessions | None = None
        if config.calendar:
            self.sessions = MarketSessions(self, config.done_for_day)
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
            check_new_order(self.book, self.config.policy, spec, spec.qty)
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
            info = self.book.symbol(spec.symbol)
            if is_fractional(spec) and not info.fractionable:
                raise ApiError.unprocessable(
                    f"asset {spec.symbol} is not fractionable", code=CODE_UNPROCESSABLE
                )
            qty = spec.qty if spec.qty is not None else notional_qty(spec.notional, info.price)
            coid = self._unique_client_order_id(spec.client_order_id)
            check_new_order(self.book, self.config.policy, spec, qty)
            root = create_group(self.book, self.clock.now(), spec, qty, coid)
            root.notional = spec.notional
            self._start(root)
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
            if not self._replaceable(old):
                raise ApiError.unprocessable(
                    "unable to replace order in current state", code=CODE_UNPROCESSABLE
                )
            new_spec = replacement_spec(old, spec)
            qty = spec.qty if spec.qty is not None else old.remaining
            coid = self._unique_client_order_id(spec.client_order_id)
            if old.order_class == "simple":
                check_new_order(self.book, self.config.policy, new_spec, qty, exclude=[old.id])
            new = new_order(self.book, self.clock.now(), new_spec, qty, coid, role=old.role)
            new.replaces, new.order_class, new.replacing = old.id, old.order_class, True
            self.book.add(new)
            old.status_before_replace = old.status
            self.venue.touch(old, "pending_replace")
            self.venue.emit("pending_replace", old)
            self.venue.later(
                self.config.latency.replace_s,
                f"replace {old.id}",
                lambda: self._confirm_replace(old, new, derive_qty=spec.qty is None),
            )
            return order_json(new)

    def _replaceable(self, order: SimOrder) -> bool:
        if not order.is_open or order.cancel_requested or order.replacing:
            return False
        if order.status in ("pending_replace", "accepted", "pending_new", "pending_cancel"):
            return False
        return not (order.role == "entry" and order.leg_ids)  # a bracket/OTO entry: only its legs

    def _confirm_replace(self, old: SimOrder, new: SimOrder, derive_qty: bool) -> None:
        """The venue's answer to a PATCH: replaced, or rejected because the old order ended first."""
        new.replacing = False
        if old.status != "pending_replace":
            self.venue.emit("order_replace_rejected", old)
            self.venue.end(new, "rejected", emit=False)
            return
        was = old.status_before_replace or "new"
        old.status = was
        if derive_qty:
            new.qty = old.remaining
        swap_into_group(self.book, old, new)
        old.replaced_by, old.replaced_at = new.id, self.clock.now()
        self.venue.touch(old, "replaced")
        self.venue.emit("replaced", old)
        new.planned = old.planned
        if was == "held":
            self.venue.touch(new, "held")  # a held leg stays held; its group activates it as before
            self.venue.match(new)
        else:
            self._start(new)

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
            return [self._position_json(symbol) for symbol in sorted(self.book.positions)]

    def position(self, symbol: str) -> JsonDict:
        with self.lock:
            if symbol not in self.book.positions:
                raise ApiError.not_found("position does not exist")
            return self._position_json(symbol)

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
        close = now.replace(hour=20, minute=0, second=0, microsecond=0)
        if close <= now:
            close += timedelta(days=1)
        return {
            "timestamp": fmt_time(now),
            "is_open": True,
            "next_open": fmt_time(close + timedelta(hours=17, minutes=30)),
            "next_close": fmt_time(close),
        }

    def account(self) -> JsonDict:
        with self.lock:
            values = [p.qty * self.book.price(p.symbol) for p in self.book.positions.values()]
            body = account_json(
                self.book.cash,
                self.book.buying_power(),
                sum((v for v in values if v > 0), Decimal(0)),
                sum((v for v in values if v < 0), Decimal(0)),
                self.started_at,
                self.book.margin_multiplier,
            )
            body["shorting_enabled"] = self.config.policy.shorting_enabled
            return body

    def snapshot(self) -> JsonDict:
        """Everything the control API's /sim/state shows about the books."""
        with self.lock:
            return {
                "now": fmt_time(self.clock.now()),
                "started_at": fmt_time(self.started_at),
                "orders": [self._order_detail(o) for o in self.book.orders.values()],
                "positions": [
                    self._position_json(s) | {"held_for_orders": self._held(s)}
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

    def _start(self, root: SimOrder) -> None:
        plan = self.config.plans.get(root.client_order_id)
        root.planned = root.planned or plan is not None
        self.venue.later(self.config.latency.ack_s, f"ack {root.id}", lambda: self.venue.ack(root))
        if plan is not None:
            self._schedule_plan(root, plan)

    def _schedule_plan(self, order: SimOrder, plan: FillPlan) -> None:
        for step in plan.steps:
            self.venue.later(step.after_s, f"plan fill {order.client_order_id}", self._plan_fill(order, step))
        endings = (
            (plan.cancel_after_s, "canceled"),
            (plan.expire_after_s, "expired"),
            (plan.reject_after_s, "rejected"),
        )
        for after_s, status in endings:
            if after_s is not None:
                self.venue.later(
                    after_s, f"plan {status} {order.client_order_id}", self._plan_end(order, status)
                )

    def _plan_fill(self, order: SimOrder, step: FillStep) -> Callable[[], None]:
        def fill() -> None:
            live = self.live_successor(order)  # a replaced parent's plan goes on with its replacement
            sessions = self.sessions
            if sessions is not None and live.is_open and not sessions.can_trade(live):
                # the market is closed for it: the planned fill happens when it can trade again
                due = sessions.next_trading_time(live, self.clock.now())
                self.scheduler.schedule(due, f"plan fill {order.client_order_id} (deferred)", fill)
                return
            self.venue.execute(live, step.qty, step.price or self.book.price(live.symbol))

        return fill

    def _plan_end(self, order: SimOrder, status: str) -> Callable[[], None]:
        return lambda: self.venue.terminate(self.live_successor(order), status)

    def live_successor(self, order: SimOrder) -> SimOrder:
        """`order`, or the order that replaced it (through the whole `replaced_by` chain)."""
        seen = {order.id}
        while order.replaced_by is not None and order.replaced_by not in seen:
            order = self.book.orders[order.replaced_by]
            seen.add(order.id)
        return order

    def _price_setter(self, symbol: str, price: Decimal) -> Callable[[], None]:
        return lambda: self.set_price(symbol, price)

    def _held(self, symbol: str) -> str:
        return fmt_decimal(self.book.reservation(symbol).held)

    def _position_json(self, symbol: str) -> JsonDict:
        return position_json(
            self.book.positions[symbol], self.book.symbol(symbol), self.book.reservation(symbol).held
        )

    def _order_detail(self, order: SimOrder) -> JsonDict:
        detail = order_json(order)
        detail["sim"] = {
            "group_id": order.group_id,
            "role": order.role,
            "leg_ids": order.leg_ids,
            "planned": order.planned,
            "cancel_requested": order.cancel_requested,
            "triggered": order.triggered,
            "replacing": order.replacing,
            "reserves_shares": self.book.reserves_shares(order),
            # every execution with its venue time: the demo measures fill-to-protect latency from these
            "executions": [
                {"at": fmt_time(at), "qty": str(q), "price": str(p)} for at, q, p in order.executions
            ],
        }
        return detail
