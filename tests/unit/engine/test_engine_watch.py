"""Reconciliation and catch-up on a FakeBroker: what the stream missed is read, applied and protected; a
difference alerts only when it persists."""

from __future__ import annotations

from decimal import Decimal

from engine_harness import EngineHarness

from ordersync.domain.order import OrderStatus
from ordersync.engine import EngineOptions


def oco_qtys(h: EngineHarness) -> list[Decimal]:
    return sorted(o.qty for o in h.broker.open_sells("AAPL") if o.order_class == "oco")


async def test_a_fill_the_stream_missed_is_applied_by_the_reconcile_read_and_protected() -> None:
    h = EngineHarness()
    await h.start()
    await h.buy("p1")
    h.broker.fill("p1", 6, 100)
    h.drop_events()  # the fill event never arrives

    report = await h.reconcile()

    assert h.order("p1").filled_qty == 6
    assert report.corrections >= 1
    assert oco_qtys(h) == [Decimal(6)]
    assert report.discrepancies == [], "a fill the reads show is no drift"
    await h.stop()


async def test_shares_bought_outside_ordersync_are_others_noted_every_run_and_never_alerted() -> None:
    h = EngineHarness(EngineOptions(drift_alert_runs=2))
    await h.start()
    h.broker.adjust_position("AAPL", 5)  # bought by hand or by another app: not ours, not a drift of ours

    runs = [await h.reconcile() for _ in range(3)]

    assert [r.discrepancies for r in runs] == [[], [], []]
    assert [[(n.kind, n.key) for n in r.notes] for r in runs] == [[("others_position", "AAPL")]] * 3
    assert h.journal("alert") == []
    await h.stop()


async def test_a_reconnect_reads_the_orders_that_changed_during_the_gap_and_protects_their_fills() -> None:
    h = EngineHarness()
    await h.start()
    await h.buy("p1")
    assert h.stream is not None
    h.stream.disconnect(h.clock.now())
    await h.idle()
    h.broker.fill("p1", 10, 100)
    h.drop_events()  # sent while we were away: never replayed
    reads = h.broker.calls["list_orders"]

    h.stream.connect(h.clock.now())
    await h.idle()

    assert h.broker.calls["list_orders"] > reads, "the reconnect read the broker's orders"
    assert h.order("p1").status is OrderStatus.FILLED
    assert oco_qtys(h) == [Decimal(10)]
    await h.stop()


async def test_a_disconnected_stream_is_replaced_by_catch_up_reads_each_poll() -> None:
    h = EngineHarness(EngineOptions(poll_interval_s=2.0))
    await h.start()
    await h.buy("p1")
    assert h.stream is not None
    h.stream.disconnect(h.clock.now())
    await h.idle()
    h.broker.fill("p1", 3, 100)
    h.drop_events()
    h.broker.activities.clear()  # nor do the FILL activities show it: only a read of the orders can

    h.clock.advance(2)
    await h.poll()

    assert h.order("p1").filled_qty == 3
    assert oco_qtys(h) == [Decimal(3)]
    await h.stop()


async def test_a_fill_activity_the_stream_did_not_deliver_reads_its_order() -> None:
    h = EngineHarness()
    await h.start()
    await h.buy("p1")
    h.broker.fill("p1", 4, 100)
    h.drop_events()  # the stream stays connected and trusted, but lost this one
    lists = h.broker.calls["list_orders"]

    h.clock.advance(2)
    await h.poll()

    assert h.order("p1").filled_qty == 4
    assert oco_qtys(h) == [Decimal(4)]
    assert h.broker.calls["list_orders"] == lists, "one order read, not a catch-up of every list"
    await h.stop()


async def test_a_connected_but_silent_stream_is_no_longer_trusted_and_the_orders_are_read() -> None:
    h = EngineHarness(EngineOptions(stream_silence_s=60.0))
    await h.start()
    await h.buy("p1")
    h.broker.fill("p1", 5, 100)
    h.drop_events()
    h.broker.activities.clear()  # only a read of the orders can show the fill
    h.clock.advance(10)
    await h.poll()
    assert h.order("p1").filled_qty == 0, "a stream heard from 10 s ago is trusted: no catch-up read"

    h.clock.advance(60)
    await h.poll()

    assert h.order("p1").filled_qty == 5
    assert oco_qtys(h) == [Decimal(5)]
    await h.stop()
