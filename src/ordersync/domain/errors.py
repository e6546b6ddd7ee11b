"""The one exception tree of ordersync, declared on the core side (a leaf module: imports nothing).

    OrderSyncError
    ├── DomainError
    │   ├── InvalidOrder            bad input: rejected before anything is written
    │   ├── InvalidProtectionPlan   a plan that cannot protect its parent (take-profit below a long entry)
    │   ├── InvalidTransition       an observation the state machine refuses (reported, state kept)
    │   ├── Overfill                the broker reports more filled than ordered
    │   ├── MalformedObservation    a broker payload that cannot be turned into an observation
    │   └── UnknownOrder            an id we do not know
    ├── BrokerError                 carries a Classification (docs/architecture.md §2, invariant 6)
    │   ├── InsufficientQty         40310000: shares missing or held by another order -> reconcile
    │   ├── DuplicateClientOrderId  40010001 "must be unique": the order may exist -> look it up
    │   ├── RateLimited             429 -> back off per the broker's reset
    │   ├── BrokerUnavailable       5xx, timeouts, lost responses -> retry (lookup first for submits)
    │   └── OrderRefused            any other business refusal -> fatal for that request
    ├── ConcurrencyConflict         the store saw a concurrent writer (optimistic version check)
    └── ConfigError                 a configuration or scenario file that cannot be used

Expected business outcomes (the broker refused a child) are recorded as journal events; exceptions are
for what the caller must handle. Messages carry ids and the state that was observed.
"""

from __future__ import annotations

from enum import StrEnum


class OrderSyncError(Exception):
    """Root of every error ordersync raises on purpose."""


class DomainError(OrderSyncError):
    """A rule of the order core was broken by the input."""


class InvalidOrder(DomainError):
    """An order request that must not reach the broker (bad quantity, side, type or prices)."""


class InvalidProtectionPlan(DomainError):
    """A protection plan that would not protect its parent."""


class InvalidTransition(DomainError):
    """An observation the lifecycle refuses, e.g. ``filled -> canceled``."""

    def __init__(self, client_order_id: str, current: str, observed: str, reason: str) -> None:
        super().__init__(f"{current} -> {observed} refused for {client_order_id}: {reason}")
        self.client_order_id = client_order_id
        self.current = current
        self.observed = observed
        self.reason = reason


class Overfill(DomainError):
    """The broker reports a filled quantity above the order quantity."""


class MalformedObservation(DomainError):
    """A broker payload (event or snapshot) that cannot be interpreted."""


class UnknownOrder(DomainError):
    """No order with that id is known locally."""


class Classification(StrEnum):
    """How the engine must react to a broker error (docs/architecture.md §2, invariant 6)."""

    RETRYABLE = "retryable"
    NEEDS_RECONCILE = "needs_reconcile"
    RATE_LIMITED = "rate_limited"
    FATAL = "fatal"


class BrokerError(OrderSyncError):
    """A broker call failed; ``classification`` says what to do next."""

    classification: Classification = Classification.FATAL

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: int | None = None,
        body: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.body = body or {}


class InsufficientQty(BrokerError):
    """403 40310000: the sell exceeds the position's available quantity (or no position yet)."""

    classification = Classification.NEEDS_RECONCILE

    @property
    def related_orders(self) -> list[str]:
        """Return the broker order ids that hold the shares, as Alpaca lists them."""
        related = self.body.get("related_orders")
        return [str(r) for r in related] if isinstance(related, list) else []


class DuplicateClientOrderId(BrokerError):
    """422 40010001 "client_order_id must be unique": an earlier attempt may have been accepted."""

    classification = Classification.NEEDS_RECONCILE


class RateLimited(BrokerError):
    """429: over the per-key request budget."""

    classification = Classification.RATE_LIMITED

    def __init__(self, message: str, *, retry_after_s: float | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after_s = retry_after_s


class BrokerUnavailable(BrokerError):
    """5xx, timeout or a lost response: the outcome of the request is unknown."""

    classification = Classification.RETRYABLE


class OrderRefused(BrokerError):
    """A refusal that retrying will not fix (bad parameters, account blocked, not found)."""

    classification = Classification.FATAL


class ConcurrencyConflict(OrderSyncError):
    """Another writer changed the same row first."""


class ConfigError(OrderSyncError):
    """A configuration or scenario that cannot be used; the message names the field."""
