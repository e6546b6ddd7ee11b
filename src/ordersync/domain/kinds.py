"""The names the engine writes and tells: journal kinds, alert kinds, notification kinds, hold reasons.

Each is a ``StrEnum`` whose values are the strings stored in the journal and alerts tables and shown in the
public JSON, so a member is written and compared exactly as the string was (a row read back is a plain
``str`` and equals its member). Code that decides on one (which alerts a reconciliation clears, which holds
back a plan off) tests the member, never a substring of a message. The tables of what each means are in
docs/architecture.md §7 (journal) and docs/operations.md §5 (alerts).
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["HOLD_TEXT", "AlertKind", "HoldReason", "JournalKind", "NotificationKind"]


class JournalKind(StrEnum):
    """One journal entry's ``kind`` (docs/architecture.md §7)."""

    PARENT_CREATED = "parent_created"
    OBSERVED = "observed"  # a stream event, submit answer or lookup; a poll or read that changed something
    LEG_ADOPTED = "leg_adopted"
    REPLACEMENT_ADOPTED = "replacement_adopted"
    FILL_MISSED = "fill_missed"  # the activities poll found a fill the stream never delivered
    CHILD_RELEASED = "child_released"
    CHILD_CANCEL = "child_cancel"
    RELEASE_HELD = "release_held"
    RELEASE_BACKOFF = "release_backoff"
    NATIVE_BESIDE_OUR_EXIT = "native_beside_our_exit"
    SUBMIT_SENT = "submit_sent"
    SUBMIT_ACCEPTED = "submit_accepted"
    SUBMIT_REFUSED = "submit_refused"
    SUBMIT_RATE_LIMITED = "submit_rate_limited"
    SUBMIT_UNKNOWN = "submit_unknown"
    SUBMIT_SETTLED = "submit_settled"
    INTENT_CANCELED = "intent_canceled"
    CANCEL_REQUESTED = "cancel_requested"
    CLOSE_REQUESTED = "close_requested"
    PLAN_REPLACED = "plan_replaced"
    STREAM_CONNECTED = "stream_connected"
    STREAM_DISCONNECTED = "stream_disconnected"
    STARTUP_READ_DEFERRED = "startup_read_deferred"
    RECONCILED = "reconciled"
    LEASE_ACQUIRED = "lease_acquired"
    ALERT = "alert"
    ALERT_RESOLVED = "alert_resolved"
    ALERT_ACKNOWLEDGED = "alert_acknowledged"  # `ordersync alerts ack`
    OPERATOR_HOLD = "operator_hold"
    OPERATOR_PROTECT = "operator_protect"  # `ordersync protect`


class AlertKind(StrEnum):
    """An alert's ``kind`` (docs/operations.md §5): at most one open alert per kind and key."""

    UNPROTECTED_POSITION = "unprotected_position"
    STUCK_UNKNOWN = "stuck_unknown"
    STREAM_DOWN = "stream_down"
    ORDER_REFUSED = "order_refused"
    FOREIGN_ORDER_HOLDS_SHARES = "foreign_order_holds_shares"
    MISSING_AT_BROKER = "missing_at_broker"
    PROTECTION_CANCELLED_BY_OPERATOR = "protection_cancelled_by_operator"
    POSITION_DRIFT = "position_drift"  # no longer raised; one left open by an older version is resolved
    FOREIGN_ORDER = "foreign_order"  # no longer raised; likewise


class NotificationKind(StrEnum):
    """What an embedding platform hears about (``Engine.subscribe``)."""

    FILL = "fill"
    CHILD_RELEASED = "child_released"
    ACCEPTED = "accepted"
    REFUSED = "refused"
    ALERT = "alert"


class HoldReason(StrEnum):
    """Why protection that is owed is not released yet. The journal keeps the reason's text
    (``release_held``, ``HOLD_TEXT``); the member is what code decides on."""

    SUBMIT_UNKNOWN = "submit_unknown"
    FILL_PRICE_UNKNOWN = "fill_price_unknown"
    AVAILABLE_UNKNOWN = "qty_available_unknown"
    AVAILABLE_ZERO = "qty_available_zero"
    AVAILABLE_SHORT = "qty_available_short"
    WASH_TRADE = "wash_trade"
    WASH_TRADE_CUT = "wash_trade_cut"
    FRACTION_TRAILING = "fraction_trailing"
    FRACTION_REFUSED = "fraction_refused"
    NO_EXIT_PRICE = "no_exit_price"
    NATIVE_PARTIAL = "native_partial"
    NATIVE_LEGS_LEFT = "native_legs_left"
    NATIVE_UNREAD = "native_unread"
    CLOSING_CANCELS = "closing_cancels"
    CLOSING_AVAILABLE_ZERO = "closing_qty_available_zero"

    @property
    def waits_for_shares(self) -> bool:
        """The broker's ``qty_available`` is what holds it: the plan backs off before the next read."""
        return self in _WAITS_FOR_SHARES

    @property
    def is_native(self) -> bool:
        """A native (bracket/OTO) parent's legs hold it (docs/comparison.md §8)."""
        return self in _NATIVE


_WAITS_FOR_SHARES = frozenset(
    {
        HoldReason.AVAILABLE_UNKNOWN,
        HoldReason.AVAILABLE_ZERO,
        HoldReason.AVAILABLE_SHORT,
        HoldReason.CLOSING_AVAILABLE_ZERO,
    }
)
_NATIVE = frozenset({HoldReason.NATIVE_PARTIAL, HoldReason.NATIVE_LEGS_LEFT, HoldReason.NATIVE_UNREAD})

# the journaled text of each reason (``release_held``'s ``reason``); two carry a detail of their own
# (FRACTION_REFUSED: how many refusals; NO_EXIT_PRICE: the invalid price), made where they are decided
HOLD_TEXT: dict[HoldReason, str] = {
    HoldReason.SUBMIT_UNKNOWN: "a child's submit outcome is unknown: it may already be live",
    HoldReason.FILL_PRICE_UNKNOWN: "the broker has not reported the fill price",
    HoldReason.AVAILABLE_UNKNOWN: "the broker's qty_available is unknown",
    HoldReason.AVAILABLE_ZERO: "qty_available is 0: shares held by other orders",
    HoldReason.AVAILABLE_SHORT: "qty_available short: shares held by other orders",
    HoldReason.WASH_TRADE: "a lone exit waits for our opposite orders to finish (wash-trade rule)",
    HoldReason.WASH_TRADE_CUT: "a lone exit waits for our opposite orders to finish (wash-trade rule); "
    "wash-trade bound reached: cancel our working orders that block the stop",
    HoldReason.FRACTION_TRAILING: "fractional shares cannot carry a trailing stop at Alpaca "
    "(DAY stop/limit only)",
    HoldReason.FRACTION_REFUSED: "the broker refused the fractional exit N times: not retried (alert)",
    HoldReason.NO_EXIT_PRICE: "no valid exit price",
    HoldReason.NATIVE_PARTIAL: "native legs arm only once the entry completely fills: its filled shares wait "
    "(bounded)",
    HoldReason.NATIVE_LEGS_LEFT: "the entry ended part-filled: waiting for its held legs to end with it",
    HoldReason.NATIVE_UNREAD: "sent as a bracket/OTO: waiting to read its legs before protecting anything "
    "beside them",
    HoldReason.CLOSING_CANCELS: "closing: waiting for the broker to confirm the cancels",
    HoldReason.CLOSING_AVAILABLE_ZERO: "closing: qty_available is 0",
}
