"""A person at the account: the scenario's `actions`, run by the simulator at their virtual times.

Each action goes through the same `Exchange` methods as the REST API (cancel, replace, close a position,
cancel all, submit), so it emits the same stream events and meets the same refusals as if a person had used
Alpaca's dashboard. A target is either a client_order_id or a role in a scenario parent's protection
(docs/scenarios.md, "actions"), resolved when the action runs, because the order it names (ordersync's
`p03~tp2`, the naive baseline's `naive-p03-tp-1`, a replacement of the entry) only exists by then. A target
that resolves to nothing, or an action the broker refuses, is logged and counted, never raised: the scenario
describes what a person tries, not what must succeed."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .exchange import Exchange
from .model import SimOrder
from .order_request import ReplaceSpec
from .scenarios import (
    Action,
    CancelAction,
    CancelAllAction,
    ClientOrderTarget,
    ClosePositionAction,
    ParentModel,
    ReplaceAction,
    SubmitAction,
    Target,
)
from .wire import ApiError, JsonDict, fmt_time

__all__ = ["ActionRunner", "exit_parent_id", "resolve_target"]

log = logging.getLogger(__name__)

STOP_TYPES = frozenset({"stop", "stop_limit", "trailing_stop"})


@dataclass(frozen=True)
class _Outcome:
    outcome: str  # done | unresolved | refused
    order_id: str | None = None
    detail: str = ""


class ActionRunner:
    """Schedules the scenario's actions on the exchange and keeps a log of what each one did."""

    def __init__(self, exchange: Exchange, parents: Sequence[ParentModel], actions: Sequence[Action]) -> None:
        self.exchange = exchange
        self.parents = {p.id: p for p in parents}
        self._lock = threading.Lock()
        self._log: list[JsonDict] = []
        for index, action in enumerate(actions):
            exchange.schedule_at(action.at_s, f"action {index} {action.action}", self._runner(action))

    def log(self) -> list[JsonDict]:
        """What every action that has run so far did, in order."""
        with self._lock:
            return list(self._log)

    def counts(self) -> dict[str, int]:
        with self._lock:
            counts: dict[str, int] = {}
            for entry in self._log:
                counts[entry["outcome"]] = counts.get(entry["outcome"], 0) + 1
            return counts

    def _runner(self, action: Action) -> Callable[[], None]:
        return lambda: self.run(action)

    def run(self, action: Action) -> None:
        """Carry out one action now (under the books lock) and log its outcome."""
        with self.exchange.lock:
            try:
                outcome = self._perform(action)
            except ApiError as e:
                outcome = _Outcome("refused", detail=f"{e.status} {e.body.get('message', '')}")
        entry: JsonDict = {
            "at": fmt_time(self.exchange.clock.now()),
            "action": action.action,
            "target": _describe(action),
            "order_id": outcome.order_id,
            "outcome": outcome.outcome,
            "detail": outcome.detail,
            "note": action.note,
        }
        log.info(
            "scenario action %s %s: %s %s", action.action, entry["target"], outcome.outcome, outcome.detail
        )
        with self._lock:
            self._log.append(entry)

    def _perform(self, action: Action) -> _Outcome:
        exchange = self.exchange
        if isinstance(action, CancelAllAction):
            canceled = exchange.cancel_all()
            return _Outcome("done", detail=f"{len(canceled)} orders")
        if isinstance(action, SubmitAction):
            order = exchange.submit(action.order.spec())
            return _Outcome("done", order["id"])
        if isinstance(action, ClosePositionAction):
            return self._close(action)
        target = self._resolve(action.target)
        if target is None:
            return _Outcome("unresolved", detail="no open order matches the target")
        try:
            if isinstance(action, CancelAction):
                exchange.cancel(target.id)
                return _Outcome("done", target.id)
            return self._replace(action, target)
        except ApiError as e:
            return _Outcome("refused", target.id, f"{e.status} {e.body.get('message', '')}")

    def _replace(self, action: ReplaceAction, target: SimOrder) -> _Outcome:
        spec = ReplaceSpec(
            qty=action.qty,
            time_in_force=action.time_in_force,
            limit_price=action.limit_price,
            stop_price=action.stop_price,
            trail=action.trail,
        )
        new = self.exchange.replace(target.id, spec)
        return _Outcome("done", target.id, detail=f"replaced by {new['id']}")

    def _close(self, action: ClosePositionAction) -> _Outcome:
        exchange = self.exchange
        if not action.cancel_orders:
            closing = exchange.close_position(action.symbol, action.qty, action.percentage)
            return _Outcome("done", closing["id"])
        open_orders = [o for o in exchange.book.open_orders(action.symbol) if not o.cancel_requested]
        for order in open_orders:
            with contextlib.suppress(ApiError):  # already ending (a group member, a pending replace)
                exchange.cancel(order.id)
        # The close goes once the cancels are confirmed, as a person (or Alpaca's dashboard) would send it.
        delay = exchange.config.latency.cancel_s if open_orders else 0.0
        exchange.venue.later(delay, f"close {action.symbol}", lambda: self._close_after_cancels(action))
        return _Outcome("done", detail=f"{len(open_orders)} orders canceled first")

    def _close_after_cancels(self, action: ClosePositionAction) -> None:
        self.run(action.model_copy(update={"cancel_orders": False}))

    def _resolve(self, target: Target) -> SimOrder | None:
        return resolve_target(self.exchange, self.parents, target)


def resolve_target(exchange: Exchange, parents: dict[str, ParentModel], target: Target) -> SimOrder | None:
    """The order a target names now, or None (docs/scenarios.md, "Targets")."""
    book = exchange.book
    if isinstance(target, ClientOrderTarget):
        order_id = book.by_client_id.get(target.client_order_id)
        return None if order_id is None else exchange.live_successor(book.orders[order_id])
    parent = parents[target.parent]
    if target.role == "entry":
        order_id = book.by_client_id.get(parent.id)
        return None if order_id is None else exchange.live_successor(book.orders[order_id])
    exit_side = "sell" if parent.side == "buy" else "buy"
    candidates = [
        o
        for o in book.open_orders(parent.symbol)
        if o.side == exit_side and exit_parent_id(exchange, o) == parent.id and _has_role(o, target.role)
    ]
    return max(candidates, key=lambda o: o.created_at, default=None)


def _has_role(order: SimOrder, role: str) -> bool:
    return order.type == "limit" if role == "take_profit" else order.type in STOP_TYPES


def exit_parent_id(exchange: Exchange, order: SimOrder) -> str | None:
    """The scenario parent an exit order protects, from its (or its group root's) client_order_id:
    `<parent>~<role><n>` (ordersync), `naive-<parent>-<kind>-<n>` (the naive baseline), or the legs of a
    bracket whose entry is the parent itself."""
    root = exchange.book.root(order)
    if root is not order and root.role == "entry":
        return root.client_order_id
    coid = root.client_order_id
    if "~" in coid:
        return coid.split("~", 1)[0]
    if coid.startswith("naive-"):
        parts = coid[len("naive-") :].rsplit("-", 2)
        return parts[0] if len(parts) == 3 else None
    return None


def _describe(action: Action) -> str:
    if isinstance(action, ClosePositionAction):
        return action.symbol
    if isinstance(action, SubmitAction):
        order = action.order
        return f"{order.side} {order.qty} {order.symbol} {order.type}"
    if isinstance(action, CancelAllAction):
        return "all"
    target = action.target
    if isinstance(target, ClientOrderTarget):
        return target.client_order_id
    return f"{target.parent}/{target.role}"
