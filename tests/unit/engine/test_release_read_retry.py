"""A release held because the position read failed (a 5xx) is retried at the lookup backoff: broker weather
must not cost a refusal's pace (invariant 9: fill -> protect within 2x the poll interval, plus the fault)."""

from __future__ import annotations

from decimal import Decimal

from engine_harness import EngineHarness

from ordersync.domain.errors import BrokerUnavailable
from ordersync.domain.order import OrderRole
from ordersync.engine import EngineOptions


async def test_two_failed_position_reads_in_a_row_delay_protection_by_seconds_not_a_refusal_backoff() -> None:
    h = EngineHarness(EngineOptions(lookup_backoff_base_s=1.0, release_backoff_base_s=2.0, tick_s=0.25))
    await h.start()
    await h.buy("p1")
    h.broker.fail("position", BrokerUnavailable("503 service unavailable"), times=2)
    h.broker.fill("p1", 10, 100)
    filled_at = h.clock.now()
    # learned from a poll, not the stream: no fill event's position_qty, so the release reads the position
    h.drop_events()
    await h.poll()
    assert h.children("p1", OrderRole.OCO) == [], "the first read (and its quick retry) failed: held"

    while not h.children("p1", OrderRole.OCO):
        h.clock.advance(0.25)
        await h.tick()
        assert (h.clock.now() - filled_at).total_seconds() <= 3.5, "1 s, then 2 s: at most ~3 s"

    assert sum(c.qty for c in h.children("p1", OrderRole.OCO)) == Decimal(10)
    assert h.broker.calls["position"] == 3
    await h.stop()
