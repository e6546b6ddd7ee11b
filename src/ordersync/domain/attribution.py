"""Attribution of an account's shares: which are ours, which are others' (docs/architecture.md §2, inv. 8).

The account is shared: positions that existed before ordersync started, other applications' orders and a
person's trades in the dashboard all change the broker's position of a symbol. ordersync owns only what its
own orders traded, so per symbol it keeps a ledger:

* **ours (book)**: our parents' fills minus our exits' fills (signed: a short entry makes it negative);
* **ours (held)**: what of it the account still holds. Someone else can only sell shares our exits do not
  reserve, and we cannot tell whose shares a person meant, so a sale by someone else is taken from others'
  shares first: ours shrink only when the position falls below our book (``min(ours, position)`` for a
  long). The difference is **gone**: shares of ours someone else sold or closed, never a discrepancy;
* **others**: the position minus ours (held): pre-existing positions, other applications, a person's buys.

Protection is owed for ours (held) only: the release gate spends at most ``unprotected`` (ours held minus
what our live exits reserve), and never more than the broker's ``qty_available`` (which already subtracts
other applications' reservations). Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from ordersync.domain.ids import ClientOrderId, Symbol
from ordersync.domain.order import Order, OrderSide, OrderStatus

ZERO = Decimal(0)


def held_of(ours: Decimal, position: Decimal) -> Decimal:
    """Return how many of our ``ours`` shares (signed) the account still holds given its ``position``."""
    if ours > 0:
        return min(ours, max(position, ZERO))
    if ours < 0:
        return max(ours, min(position, ZERO))
    return ZERO


@dataclass(frozen=True, slots=True)
class Attribution:
    """One symbol's ledger: our book, the broker's position, and who holds what."""

    symbol: Symbol
    ours: Decimal  # our parents' fills minus our exits' fills (signed)
    position: Decimal  # the broker's position (signed)

    @property
    def held(self) -> Decimal:
        """Our shares the account still holds (signed)."""
        return held_of(self.ours, self.position)

    @property
    def gone(self) -> Decimal:
        """Shares of ours someone else sold or closed (never negative)."""
        return abs(self.ours - self.held)

    @property
    def others(self) -> Decimal:
        """The position that is not ours (signed): pre-existing shares, other applications, a person."""
        return self.position - self.held

    def describe(self) -> str:
        """One line for a log or a report."""
        text = f"{self.symbol}: broker {self.position}, ours {self.held}, others {self.others}"
        return f"{text}; {self.gone} of ours sold by someone else" if self.gone else text


def attribute(
    ours: Mapping[Symbol, Decimal], positions: Mapping[Symbol, Decimal]
) -> dict[Symbol, Attribution]:
    """Return the ledger of every symbol that is ours or held by the account."""
    return {s: Attribution(s, ours.get(s, ZERO), positions.get(s, ZERO)) for s in sorted({*ours, *positions})}


def our_shares(orders: Iterable[Order]) -> dict[Symbol, Decimal]:
    """Our book per symbol from stored orders: every fill of ours, buys up and sells down (parents, exits,
    OCO legs and replacements alike: each is stored once under its own id)."""
    book: dict[Symbol, Decimal] = {}
    for order in orders:
        if order.filled_qty:
            sign = 1 if order.side is OrderSide.BUY else -1
            book[order.symbol] = book.get(order.symbol, ZERO) + sign * order.filled_qty
    return book


def reserved(open_orders: Iterable[Order]) -> Decimal:
    """Shares our open exits reserve, from our open orders on one symbol: each open exit its quantity
    less what it sold, an OCO once (its open primary, or its open leg once the primary has ended).
    Unsent and unknown children count too (they may be live)."""
    # a held leg of a native bracket reserves nothing: before the entry completes it cannot trade, and
    # after, the stop leg stays held beside the working take-profit that holds the shares (alpaca.md §6.2)
    children = [o for o in open_orders if o.is_child and o.is_open and not _held_native_leg(o)]
    primaries = {o.client_order_id for o in children if o.group_id is None}
    return sum((o.leaves_qty for o in children if o.group_id is None or o.group_id not in primaries), ZERO)


def _held_native_leg(order: Order) -> bool:
    return (
        order.group_id is not None and order.group_id == order.parent_id and order.status is OrderStatus.HELD
    )


def unprotected(ledger: Attribution, our_reserved: Decimal) -> Decimal:
    """Shares of ours (held) that no live exit of ours reserves: the most new protection may cover."""
    return max(ZERO, abs(ledger.held) - our_reserved)


def operator_canceled(group: Sequence[Order], requested: Iterable[ClientOrderId]) -> bool:
    """True when a protective group of ours ended canceled although we never asked (a person's cancel).

    ``group`` is one exit (a simple child, or an OCO primary and its legs); ``requested`` the client ids we
    sent a cancel for. Only a group that has wholly ended counts, so an OCO whose take-profit is canceled by
    the broker because its stop triggered (and then filled) is not a person's act; a group that sold every
    share ended by its fills, whatever its last event.
    """
    if not group or any(m.is_open for m in group):
        return False
    if any(m.status is OrderStatus.REPLACED for m in group):
        return False  # edited (PATCH), by us or a person: the replacement inherits the role and the shares
    if not any(m.status is OrderStatus.CANCELED for m in group):
        return False
    asked = set(requested)
    if any(m.client_order_id in asked for m in group):
        return False
    qty = max(m.qty for m in group)
    return sum((m.filled_qty for m in group), ZERO) < qty
