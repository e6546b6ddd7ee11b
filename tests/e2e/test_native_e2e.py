"""Native brackets end to end (docs/comparison.md §8): the engine sends a bracket through alpaca-py to
`ordersync sim serve` in another process, adopts its legs, and respects a person's edit of a leg. Judged
from the simulator's books.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TYPE_CHECKING

from alpaca.trading.requests import ReplaceOrderRequest

from conftest import buy_parent
from ordersync.domain.protection import PriceRule, ProtectionPlan
from ordersync.engine import EngineOptions
from ordersync.testing import wait_until_async

if TYPE_CHECKING:
    from conftest import Running, Sim

MakeEngine = Callable[..., Awaitable["Running"]]
PLAN = ProtectionPlan(
    take_profit=PriceRule(price=Decimal("110.00")), stop_loss=PriceRule(price=Decimal("80.00")), native=True
)
OPTIONS = EngineOptions(
    poll_interval_s=0.2,
    tick_s=0.1,
    reconcile_interval_s=0.5,
    release_backoff_base_s=0.2,
    release_backoff_cap_s=1.0,
    unprotected_alert_s=0.5,
)


async def test_a_person_editing_the_stop_leg_of_our_bracket_keeps_it_ours_and_nothing_is_re_armed(
    sim: Sim, make_engine: MakeEngine
) -> None:
    running = await make_engine(options=OPTIONS)
    await running.engine.submit(buy_parent("n1"), PLAN)
    books = await sim.until(lambda b: b.status("n1") == "new", "n1 working", "n1")
    (entry,) = books.with_coid("n1")
    assert entry["order_class"] == "bracket"
    await sim.fill("n1")
    await wait_until_async(
        lambda: sum(o.group_id == "n1" for o in running.engine.orders()) == 2, 10.0, "both legs adopted"
    )
    books = await sim.books()
    (entry,) = books.with_coid("n1")
    by_id = {o["id"]: o for o in books.orders}
    (stop,) = [by_id[i] for i in entry["sim"]["leg_ids"] if by_id[i]["type"] == "stop"]

    successor = await running.replaced_by_a_person(
        sim.client(), stop["id"], ReplaceOrderRequest(stop_price=85.0)
    )
    assert (successor.parent_id, successor.group_id, successor.stop_price) == ("n1", "n1", Decimal("85.00"))
    kinds = {a.kind for a in running.alerts()}
    assert not kinds & {"protection_cancelled_by_operator", "unprotected_position"}
    books = await sim.books()
    assert [o for o in books.orders if o["client_order_id"].startswith("n1~")] == [], "no exit of ours beside"
    live = [o for o in books.orders if o["id"] == successor.broker_order_id]
    assert live[0]["status"] not in ("canceled", "expired"), "the person's edit is left working"
