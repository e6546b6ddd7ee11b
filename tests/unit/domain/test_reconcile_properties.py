"""Reconciliation converges: once its corrections are applied (through the lifecycle, as the engine does),
reconciling the same broker reads again asks for nothing more; only what no correction can fix remains.

The broker reads may be older than what we applied from an order (a late page) or impossible (an overfill):
reconcile proposes only what the lifecycle takes, so neither is proposed again on every run. They are
complete for the orders we sent unless a test drops some on purpose. ``run`` is the one call into
``reconcile``: a change of its signature is adapted there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from ordersync.domain import lifecycle
from ordersync.domain.events import BrokerOrderView, OrderObserved, Source
from ordersync.domain.ids import BrokerOrderId, ClientOrderId, Symbol
from ordersync.domain.order import BROKER_STATUSES, Order, OrderSide, OrderStatus
from ordersync.domain.reconcile import Correction, Discrepancy, Lookup, Observe, expected_positions, reconcile
from ordersync.testing import T0, make_order

SYMBOLS = [Symbol("AAPL"), Symbol("MSFT")]
OPEN_LOCAL = [s for s in OrderStatus if not s.is_terminal]
NOW = T0 + timedelta(hours=1)


@dataclass(frozen=True)
class World:
    orders: list[Order]  # everything we hold: open ones and ended ones
    views: list[BrokerOrderView]  # one reconciliation's reads of the broker
    baseline: dict[Symbol, Decimal]
    positions: dict[Symbol, Decimal]


def run(world: World, orders: Sequence[Order]) -> list[Correction]:
    """Reconcile ``orders`` against the world's broker reads, as the engine's reconciler does."""
    local_open = [o for o in orders if not o.is_terminal]
    expected = expected_positions(orders, world.baseline, world.views)
    ours = {o.broker_order_id for o in orders if o.broker_order_id}
    return reconcile(local_open, world.views, expected, world.positions, NOW, ours)


def apply_observes(orders: list[Order], corrections: Sequence[Correction]) -> list[Order]:
    """Apply every Observe to the order it names, through the lifecycle (refusals change nothing)."""
    result = {o.client_order_id: o for o in orders}
    by_broker_id = {o.broker_order_id: o.client_order_id for o in orders if o.broker_order_id}
    for correction in corrections:
        if isinstance(correction, Observe):
            view = correction.observation.order
            coid = (
                view.client_order_id if view.client_order_id in result else by_broker_id[view.broker_order_id]
            )
            result[coid] = lifecycle.apply(result[coid], correction.observation).order
    return list(result.values())


def kinds(corrections: Sequence[Correction], kind: type) -> list[Correction]:
    return [c for c in corrections if isinstance(c, kind)]


@st.composite
def order_and_view(draw: st.DrawFn, n: int, complete: bool) -> tuple[Order, BrokerOrderView | None]:
    status = draw(st.sampled_from([*OPEN_LOCAL, OrderStatus.FILLED, OrderStatus.CANCELED]))
    qty = draw(st.integers(1, 20))
    filled = 0 if status.is_local else draw(st.integers(0, qty))
    if status is OrderStatus.FILLED:
        filled = qty
    applied_at = None if status.is_local else T0 + timedelta(seconds=draw(st.integers(0, 600)))
    order = make_order(
        f"o{n}",
        symbol=draw(st.sampled_from(SYMBOLS)),
        side=draw(st.sampled_from(list(OrderSide))),
        qty=qty,
        status=status,
        filled_qty=filled,
        broker_updated_at=applied_at,
    )
    sent = status is not OrderStatus.INTENT
    if not (sent and complete) and not draw(st.booleans()):
        return order, None  # never sent, or missing from the reads
    seen = draw(st.sampled_from(sorted(BROKER_STATUSES)))
    seen_filled = draw(st.integers(0, qty + 2))  # above qty: an overfill the lifecycle refuses
    newer = (applied_at or T0) + timedelta(
        seconds=draw(st.integers(-600, 600))
    )  # < 0: a read older than ours
    view = BrokerOrderView(
        broker_order_id=order.broker_order_id or BrokerOrderId(f"b-o{n}"),
        client_order_id=ClientOrderId(order.client_order_id),
        symbol=order.symbol,
        status=seen,
        qty=order.qty,
        filled_qty=Decimal(seen_filled),
        filled_avg_price=Decimal(100) if seen_filled else None,
        updated_at=newer,
        submitted_at=T0,
        side=order.side.value,
    )
    return order, view


@st.composite
def foreign_view(draw: st.DrawFn, n: int) -> BrokerOrderView:
    qty = draw(st.integers(1, 20))
    return BrokerOrderView(
        broker_order_id=BrokerOrderId(f"b-f{n}"),
        client_order_id=ClientOrderId(f"manual-{n}"),
        symbol=draw(st.sampled_from(SYMBOLS)),
        status=draw(st.sampled_from(sorted(BROKER_STATUSES))),
        qty=Decimal(qty),
        filled_qty=Decimal(draw(st.integers(0, qty))),
        filled_avg_price=None,
        updated_at=NOW,
        side=draw(st.sampled_from(["buy", "sell"])),
    )


@st.composite
def worlds(draw: st.DrawFn, complete: bool = True) -> World:
    pairs = [draw(order_and_view(n, complete)) for n in range(draw(st.integers(0, 8)))]
    foreign = [draw(foreign_view(n)) for n in range(draw(st.integers(0, 3)))]
    amounts = st.dictionaries(st.sampled_from(SYMBOLS), st.integers(-30, 30).map(Decimal), max_size=2)
    return World(
        orders=[o for o, _ in pairs],
        views=[v for _, v in pairs if v is not None] + foreign,
        baseline=draw(amounts),
        positions=draw(amounts),
    )


@given(worlds())
def test_applying_the_corrections_then_reconciling_again_asks_for_nothing_more(world: World) -> None:
    first = run(world, world.orders)
    second = run(world, apply_observes(world.orders, first))

    assert kinds(second, Observe) == [], "every observation was taken the first time"
    assert kinds(second, Lookup) == [], "every order we sent is in the reads"
    assert kinds(second, Discrepancy) == kinds(first, Discrepancy), "what cannot be fixed stays the same"


@given(worlds())
def test_the_corrections_miss_nothing_the_reads_could_teach(world: World) -> None:
    converged = {o.client_order_id: o for o in apply_observes(world.orders, run(world, world.orders))}

    views = {v.client_order_id: v for v in world.views}
    for before in world.orders:
        view = views.get(before.client_order_id)
        if before.is_terminal or view is None:
            continue  # ended orders are not reconciled; an order with no read has nothing to learn
        order = converged[before.client_order_id]
        direct = lifecycle.apply(order, OrderObserved(view, Source.RECONCILE, view.updated_at, NOW))
        # (a newer view of the same status only moves the staleness watermark: nothing to correct)
        learned = (direct.order.status, direct.order.filled_qty, direct.order.broker_order_id)
        assert learned == (order.status, order.filled_qty, order.broker_order_id), order.client_order_id


@given(worlds(complete=False))
def test_orders_missing_from_the_reads_stay_lookups_and_nothing_else_repeats(world: World) -> None:
    first = run(world, world.orders)
    second = run(world, apply_observes(world.orders, first))

    assert kinds(second, Observe) == []
    assert kinds(second, Lookup) == kinds(first, Lookup), "a lookup is settled by looking up, not by a read"
