"""The books as the control API shows them: each order with the simulator's own detail (its group, role,
every execution and status with its venue time) and each position with the shares open sells hold.

``GET /sim/state`` is the judge of the demo summary, the chaos checks and the end-to-end tests, so these are
the facts they count from; Alpaca's own shapes stay in ``serialize.py``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from .book import Book
from .model import SimOrder
from .serialize import order_json, position_json
from .wire import JsonDict, fmt_decimal, fmt_time


def held_json(book: Book, symbol: str) -> str:
    """The shares of ``symbol`` that open sells (or buys to cover) hold."""
    return fmt_decimal(book.reservation(symbol).held)


def position_detail(book: Book, symbol: str) -> JsonDict:
    """Alpaca's position body for ``symbol``."""
    return position_json(book.positions[symbol], book.symbol(symbol), book.reservation(symbol).held)


def order_detail(book: Book, order: SimOrder) -> JsonDict:
    """Alpaca's order body plus ``sim``: what only the simulator knows about the order."""
    detail = order_json(order)
    detail["sim"] = {
        "group_id": order.group_id,
        "role": order.role,
        "leg_ids": order.leg_ids,
        "planned": order.planned,
        "cancel_requested": order.cancel_requested,
        "triggered": order.triggered,
        "replacing": order.replacing,
        "reserves_shares": book.reserves_shares(order),
        # every execution with its venue time: the demo measures fill-to-protect latency from these
        "executions": [{"at": fmt_time(at), "qty": str(q), "price": str(p)} for at, q, p in order.executions],
        # every status with its venue time (`held` -> `new` is when a bracket's exit was armed)
        "history": [{"at": fmt_time(at), "status": status} for at, status in order.history],
    }
    return detail


def always_open_clock(now: datetime) -> JsonDict:
    """The market clock without ``market.calendar``: open now, closing at the next 20:00 (UTC)."""
    close = now.replace(hour=20, minute=0, second=0, microsecond=0)
    if close <= now:
        close += timedelta(days=1)
    return {
        "timestamp": fmt_time(now),
        "is_open": True,
        "next_open": fmt_time(close + timedelta(hours=17, minutes=30)),
        "next_close": fmt_time(close),
    }
