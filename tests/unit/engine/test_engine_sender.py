"""Sending on a FakeBroker: exactly one order per client_order_id whatever the answer, and a 40310000 retried
through a capped backoff, never a hot loop."""

from __future__ import annotations

import itertools
from contextlib import AbstractContextManager
from decimal import Decimal

from engine_harness import EngineHarness

from ordersync.domain.errors import BrokerUnavailable
from ordersync.domain.ids import ClientOrderId
from ordersync.domain.order import OrderSide, OrderStatus
from ordersync.engine import EngineOptions
from ordersync.engine.sender import start_settle
from ordersync.ports import Transaction
from ordersync.store.lease import LeaseLost


def methods(h: EngineHarness, coid: str) -> list[str]:
    """The requests about ``coid``, in the order they were made."""
    return [m for m, arg, _ in h.broker.log if arg == coid and m in ("submit", "get_by_client_id")]


async def test_a_lost_submit_response_is_settled_by_a_lookup_and_never_resent() -> None:
    h = EngineHarness()
    await h.start()
    h.broker.lose_next_submit_response()

    await h.buy("p1")

    assert methods(h, "p1") == ["submit", "get_by_client_id"], "looked up by client_order_id, not resent"
    assert len(h.broker.orders_of("p1")) == 1
    parent = h.order("p1")
    assert parent.status is OrderStatus.ACCEPTED
    assert parent.broker_order_id == h.broker.by_coid("p1").broker_order_id
    await h.stop()


async def test_a_submit_that_never_arrived_is_looked_up_before_the_one_resend_with_the_same_id() -> None:
    h = EngineHarness()
    await h.start()
    h.broker.fail("submit", BrokerUnavailable("503 service unavailable", status_code=503))
    h.broker.fail("get_by_client_id", BrokerUnavailable("503 service unavailable", status_code=503))

    await h.buy("p1")

    # the failed lookup settles nothing; two lookups that find nothing prove the POST never landed
    lookups = ["get_by_client_id"] * (1 + EngineOptions().lookups_before_not_found)
    assert methods(h, "p1") == ["submit", *lookups, "submit"]
    assert len(h.broker.orders_of("p1")) == 1, "exactly one order at the broker"
    assert h.order("p1").status is OrderStatus.ACCEPTED
    await h.stop()


async def test_a_protective_submit_whose_answer_is_lost_is_settled_not_doubled() -> None:
    h = EngineHarness()
    await h.start()
    await h.buy("p1")
    h.broker.lose_next_submit_response()

    h.broker.fill("p1", 10, 100)
    await h.deliver()
    await h.tick()

    [child] = h.children("p1")
    assert methods(h, child.client_order_id) == ["submit", "get_by_client_id"]
    assert len(h.broker.orders_of(child.client_order_id)) == 1
    assert child.status is OrderStatus.ACCEPTED
    assert h.broker.calls["submit"] == 2
    await h.stop()


async def test_an_insufficient_qty_refusal_is_retried_with_backoff_at_most_five_times_a_minute() -> None:
    h = EngineHarness(EngineOptions(release_backoff_base_s=2.0, release_backoff_cap_s=300.0))
    await h.start()
    await h.buy("p1")
    h.broker.fill("p1", 10, 100)
    h.broker.freeze_positions()  # the position read keeps saying 10 available ...
    h.broker.place_foreign("manual-1", "AAPL", OrderSide.SELL, 10, 120)  # ... while a manual sell holds 10
    await h.deliver()

    for _ in range(60):  # one minute of fake time, the ticker's pace
        h.clock.advance(1)
        await h.tick()

    refusals = h.journal("submit_refused")
    assert refusals, "the broker refused the protective sell"
    assert refusals[0].payload["body"]["code"] == 40310000
    children = [t for m, coid, t in h.broker.log if m == "submit" and coid != "p1"]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(children)]
    assert 2 <= len(children) <= 5, children  # at 0, 2, 6, 14, 30 s: base 2 s, doubling
    assert all(gap >= 2 * 2**i for i, gap in enumerate(gaps)), gaps
    assert h.alerts("foreign_order_holds_shares"), "the holder named by related_orders is reported"
    reads = h.broker.calls["position"]
    assert reads <= 2 * len(children), (
        f"{reads} position reads for {len(children)} submits: read while backing off"
    )
    await h.stop()


async def test_refused_protection_is_released_once_the_shares_are_free() -> None:
    h = EngineHarness(EngineOptions(release_backoff_base_s=2.0))
    await h.start()
    await h.buy("p1")
    h.broker.fill("p1", 10, 100)
    h.broker.freeze_positions()
    foreign = h.broker.place_foreign("manual-1", "AAPL", OrderSide.SELL, 10, 120)
    await h.deliver()
    assert h.journal("submit_refused")

    await h.broker.cancel(foreign.broker_order_id)
    h.broker.thaw_positions()
    for _ in range(10):
        h.clock.advance(1)
        await h.tick()

    open_ocos = [o for o in h.broker.open_sells("AAPL") if o.order_class == "oco"]
    assert [o.qty for o in open_ocos] == [Decimal(10)]
    await h.stop()


async def test_a_settle_whose_first_read_is_fenced_can_be_started_again() -> None:
    # a fenced read (the lease unconfirmed for a moment) once left the order marked as settling forever:
    # the tick's orphan sweep skipped it and it stayed `submitting` with a stuck_unknown alert (chaos, CI)
    h = EngineHarness()
    await h.start()
    ctx = h.engine._ctx
    real = h.store.transaction
    failures = iter([LeaseLost("token 6 is stale or expired: write refused")])

    def fenced_once() -> AbstractContextManager[Transaction]:
        error = next(failures, None)
        if error is not None:
            raise error
        return real()

    h.store.transaction = fenced_once  # type: ignore[method-assign]
    start_settle(ctx, ClientOrderId("p1"))
    await h.idle()

    assert ClientOrderId("p1") not in ctx.settling, "the failed settle left its mark: never settled again"
    await h.stop()
