"""The Store port's contract, run against InMemoryStore, SQLite and PostgreSQL alike
(docs/architecture.md §10).

Whatever passes here for the SQL stores must pass for the fake, so unit tests built on InMemoryStore
stay honest.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from ordersync.domain.errors import ConcurrencyConflict, InvalidOrder, InvalidProtectionPlan
from ordersync.domain.ids import BrokerOrderId, ClientOrderId, ExecutionId
from ordersync.domain.kinds import AlertKind, JournalKind
from ordersync.domain.order import Order, OrderRole, OrderSide, OrderStatus, TimeInForce, new_order
from ordersync.domain.protection import PartialFillPolicy, PriceRule, ProtectionPlan, TrailRule, validate_plan
from ordersync.ports import Alert, JournalEntry, PlanState, Store, Transaction
from ordersync.testing import make_order

if TYPE_CHECKING:
    from conftest import Backend  # a fixture's type only: never import conftest at run time

D = Decimal
S = OrderStatus
T = datetime(2026, 3, 2, 15, 4, 5, 123456, tzinfo=UTC)
PARIS = timezone(timedelta(hours=1))
NEW_YORK = timezone(timedelta(hours=-5))
PARENT = ClientOrderId("entry-1")


def parent_order() -> Order:
    order = make_order(
        PARENT,
        symbol="BRK.B",
        qty="12.50",
        limit_price="412.123456789",
        created_at=T.astimezone(PARIS),  # stored as UTC, read back as the same instant
        status=S.PARTIALLY_FILLED,
        filled_qty="0.000000001",
        filled_avg_price="412.000000001",
        broker_order_id="6b6b5e2a-1f0e-4a63-9d2b-5d7b2f7c9a11",
        broker_updated_at=(T + timedelta(seconds=3)).astimezone(NEW_YORK),
    )
    return replace(order, leg_ids=(BrokerOrderId("leg-a"), BrokerOrderId("leg-b")))


def oco_child(n: int = 1, minutes: int = 1) -> Order:
    order = make_order(
        f"{PARENT}~oco{n}",
        side=OrderSide.SELL,
        qty="0.000000001",
        limit_price="450.10",
        stop_price="380.0000",
        time_in_force=TimeInForce.GTC,
        role=OrderRole.OCO,
        parent_id=PARENT,
        created_at=T + timedelta(minutes=minutes),
    )
    return replace(order, stop_limit_price=D("379.99"))


def plan_state() -> PlanState:
    plan = ProtectionPlan(
        take_profit=PriceRule(price=D("450.10")),
        stop_loss=PriceRule(offset=D("0.0525")),
        policy=PartialFillPolicy.FULL_FILL,
    )
    return PlanState(
        PARENT, plan, release_failures=2, next_release_at=(T + timedelta(seconds=30)).astimezone(PARIS)
    )


def entry(kind: str, payload: dict[str, object] | None = None, coid: str | None = PARENT) -> JournalEntry:
    return JournalEntry(T, kind, coid, dict(payload or {}))


def write_parent(tx: Transaction) -> None:
    tx.add_order(parent_order())
    tx.add_plan(plan_state())
    tx.journal(entry("parent_created", {"qty": D("12.50"), "at": T}))


def snapshot(store: Store) -> dict[str, Any]:
    with store.transaction() as tx:
        return {
            "orders": tx.all_orders(),
            "open": tx.open_orders(),
            "children": tx.children_of(PARENT),
            "plans": tx.active_plans(),
            "plan": tx.get_plan(PARENT),
            "alerts": tx.open_alerts(),
            "cursor": tx.get_cursor("stream"),
            "journal": store.read_journal(),
        }


def assert_empty(store: Store) -> None:
    assert snapshot(store) == {
        "orders": [],
        "open": [],
        "children": [],
        "plans": [],
        "plan": None,
        "alerts": [],
        "cursor": None,
        "journal": [],
    }


def assert_exact(stored: Decimal | None, written: str) -> None:
    """Equal *and* the same digits and exponent: 12.50 stays 12.50, 1E-9 stays 1E-9."""
    assert stored is not None
    assert stored.as_tuple() == D(written).as_tuple()


# -- unit of work ---------------------------------------------------------------------------------


def test_parent_plan_and_journal_entry_commit_together(store: Store) -> None:
    with store.transaction() as tx:
        write_parent(tx)
    with store.transaction() as tx:
        assert tx.get_order(PARENT) == parent_order()
        assert tx.get_plan(PARENT) == plan_state()
    [journaled] = store.read_journal()
    assert (journaled.kind, journaled.client_order_id) == ("parent_created", PARENT)


def test_exception_inside_a_transaction_leaves_nothing_written(store: Store) -> None:
    def attempt() -> None:
        with store.transaction() as tx:
            write_parent(tx)
            tx.add_order(oco_child())
            tx.record_fill(ExecutionId("x-1"), PARENT, D("0.000000001"), D("412"), T)
            tx.raise_alert(Alert("unprotected", PARENT, "fill not covered", T))
            tx.set_cursor("stream", "2026-03-02T15:04:05Z")
            raise RuntimeError("crash mid-transaction")

    with pytest.raises(RuntimeError, match="crash"):
        attempt()
    assert_empty(store)
    with store.transaction() as tx:
        assert tx.record_fill(ExecutionId("x-1"), PARENT, D("1"), D("412"), T), "the fill was not rolled back"


def test_a_rejected_plan_writes_nothing(store: Store) -> None:
    """Bad input is refused before anything is committed: the parent is not created without its plan."""
    parent = new_order(
        client_order_id=PARENT,
        symbol="AAPL",
        side="buy",
        type="limit",
        qty=5,
        limit_price="100",
        created_at=T,
    )

    def attempt() -> None:
        with store.transaction() as tx:
            tx.add_order(parent)
            tx.journal(entry("parent_created"))
            plan = validate_plan(ProtectionPlan(take_profit=PriceRule(price=D("99"))), parent)
            tx.add_plan(PlanState(PARENT, plan))

    with pytest.raises(InvalidProtectionPlan, match="take-profit 99 is not beyond the long entry"):
        attempt()
    assert_empty(store)


def test_a_rejected_order_request_writes_nothing(store: Store) -> None:
    def attempt() -> None:
        with store.transaction() as tx:
            tx.journal(entry("request_received"))
            tx.add_order(
                new_order(
                    client_order_id="bad", symbol="AAPL", side="buy", type="market", qty=0, created_at=T
                )
            )

    with pytest.raises(InvalidOrder, match="qty must be positive"):
        attempt()
    assert_empty(store)


# -- restart ------------------------------------------------------------------------------------


def test_kinds_are_stored_as_their_text_and_read_back_equal_to_their_member(backend: Backend) -> None:
    store = backend.open()
    with store.transaction() as tx:
        tx.journal(JournalEntry(T, JournalKind.ALERT, None, {"alert": AlertKind.STREAM_DOWN}))
        assert tx.raise_alert(Alert(AlertKind.STREAM_DOWN, "trade_updates", "stream down for 30s", T))
    restarted = backend.open()
    [journaled] = restarted.read_journal()
    # the text the engine wrote before the kinds were enums: a SQL row reads back as that plain str
    assert (journaled.kind, str(journaled.kind), journaled.payload) == (
        JournalKind.ALERT,
        "alert",
        {"alert": "stream_down"},
    )
    with restarted.transaction() as tx:
        [alert] = tx.open_alerts()
        assert (alert.kind, str(alert.kind)) == (AlertKind.STREAM_DOWN, "stream_down")
        assert tx.resolve_alert(AlertKind.STREAM_DOWN, "trade_updates", T + timedelta(minutes=1))
        assert tx.open_alerts() == []


def test_restart_gives_identical_state(backend: Backend) -> None:
    first = backend.open()
    with first.transaction() as tx:
        write_parent(tx)
        tx.add_order(oco_child(1, minutes=1))
        tx.add_order(
            replace(oco_child(2, minutes=2), status=S.CANCELED, broker_order_id=BrokerOrderId("b-2"))
        )
        tx.add_plan(PlanState(ClientOrderId("entry-0"), plan_state().plan, done=True))
        tx.record_fill(ExecutionId("x-1"), PARENT, D("0.000000001"), D("412.000000001"), T)
        tx.raise_alert(Alert("unprotected", PARENT, "fill not covered", T.astimezone(PARIS)))
        tx.raise_alert(Alert("drift", "AAPL", "position differs", T))
        tx.set_cursor("stream", "2026-03-02T15:04:05.123456Z")
        tx.journal(entry("fill", {"qty": D("0.000000001"), "price": D("412.000000001"), "ts": T}))
    with first.transaction() as tx:
        tx.resolve_alert("drift", "AAPL", T + timedelta(minutes=5))
    before = snapshot(first)
    first.close()

    second = backend.open()
    after = snapshot(second)
    assert after == before

    orders = {o.client_order_id: o for o in after["orders"]}
    parent = orders[PARENT]
    assert parent == replace(parent_order(), execution_ids=frozenset({ExecutionId("x-1")}))
    assert_exact(parent.qty, "12.50")
    assert_exact(parent.filled_qty, "0.000000001")
    assert_exact(parent.limit_price, "412.123456789")
    assert_exact(parent.filled_avg_price, "412.000000001")
    assert parent.created_at == T
    assert parent.created_at.utcoffset() == timedelta(0)
    assert parent.broker_updated_at == T + timedelta(seconds=3)
    assert parent.leg_ids == ("leg-a", "leg-b")
    child = orders[ClientOrderId(f"{PARENT}~oco1")]
    assert child == oco_child(1)
    assert_exact(child.stop_price, "380.0000")
    assert_exact(child.stop_limit_price, "379.99")
    assert [o.client_order_id for o in after["open"]] == [PARENT, f"{PARENT}~oco1"]
    assert after["plan"] == plan_state()
    assert after["plans"] == [plan_state()]  # the done plan is not active
    assert after["alerts"] == [Alert("unprotected", PARENT, "fill not covered", T)]
    assert after["cursor"] == "2026-03-02T15:04:05.123456Z"
    created, journaled = after["journal"]
    assert created.payload == {"qty": "12.50", "at": T.isoformat()}
    assert journaled.payload == {"qty": "1E-9", "price": "412.000000001", "ts": T.isoformat()}
    assert journaled.ts == T
    with second.transaction() as tx:
        assert not tx.record_fill(ExecutionId("x-1"), PARENT, D(1), D(1), T), "fills must survive a restart"
        assert not tx.resolve_alert("drift", "AAPL", T), "a resolved alert must stay resolved"
        assert not tx.raise_alert(Alert("unprotected", PARENT, "again", T)), "an open alert must stay open"


# -- versions and concurrency ---------------------------------------------------------------------


def test_save_increments_the_version_and_a_stale_save_conflicts(store: Store) -> None:
    with store.transaction() as tx:
        write_parent(tx)
    with store.transaction() as tx:
        read = tx.get_order(PARENT)
        assert read is not None
        tx.save_order(replace(read, status=S.FILLED, filled_qty=D("12.50")))
    with store.transaction() as tx:
        saved = tx.get_order(PARENT)
        assert saved is not None
        assert (saved.version, saved.status) == (1, S.FILLED)
        assert tx.open_orders() == []

    def attempt() -> None:
        with store.transaction() as tx:
            tx.journal(entry("stale_write"))
            tx.save_order(replace(read, status=S.CANCELED))

    with pytest.raises(ConcurrencyConflict, match=f"{PARENT} changed since version 0"):
        attempt()
    with store.transaction() as tx:
        assert tx.get_order(PARENT) == saved
    assert [e.kind for e in store.read_journal()] == ["parent_created"]


def test_a_second_concurrent_writer_gets_a_conflict_not_a_lost_update(store: Store) -> None:
    with store.transaction() as tx:
        write_parent(tx)

    def attempt() -> None:
        with store.transaction() as slow:
            mine = slow.get_order(PARENT)
            assert mine is not None
            with store.transaction() as fast:
                theirs = fast.get_order(PARENT)
                assert theirs is not None
                fast.save_order(replace(theirs, status=S.FILLED, filled_qty=D("12.50")))
            slow.save_order(replace(mine, status=S.CANCELED))

    with pytest.raises(ConcurrencyConflict):
        attempt()
    with store.transaction() as tx:
        final = tx.get_order(PARENT)
        assert final is not None
        assert (final.status, final.version) == (S.FILLED, 1)


def test_saving_an_order_that_was_never_added_conflicts(store: Store) -> None:
    def attempt() -> None:
        with store.transaction() as tx:
            tx.save_order(parent_order())

    with pytest.raises(ConcurrencyConflict):
        attempt()
    assert_empty(store)


def test_adding_the_same_order_twice_conflicts_and_writes_nothing(store: Store) -> None:
    with store.transaction() as tx:
        tx.add_order(parent_order())

    def attempt() -> None:
        with store.transaction() as tx:
            tx.journal(entry("again"))
            tx.add_order(parent_order())

    with pytest.raises(ConcurrencyConflict):
        attempt()
    assert store.read_journal() == []


def test_a_broker_order_id_belongs_to_one_order(store: Store) -> None:
    with store.transaction() as tx:
        tx.add_order(parent_order())

    def attempt() -> None:
        with store.transaction() as tx:
            tx.add_order(replace(oco_child(), broker_order_id=parent_order().broker_order_id))

    with pytest.raises(ConcurrencyConflict):
        attempt()


# -- fills -----------------------------------------------------------------------------------------


def test_a_duplicated_execution_id_is_recorded_once(store: Store) -> None:
    with store.transaction() as tx:
        tx.add_order(parent_order())
        assert tx.record_fill(ExecutionId("x-1"), PARENT, D("0.5"), D("412"), T)
        assert not tx.record_fill(ExecutionId("x-1"), PARENT, D("0.5"), D("412"), T)
    with store.transaction() as tx:
        assert not tx.record_fill(ExecutionId("x-1"), PARENT, D("0.5"), D("412"), T + timedelta(seconds=1))
        assert tx.record_fill(ExecutionId("x-2"), PARENT, D("0.5"), D("413"), T + timedelta(seconds=1))
    with store.transaction() as tx:
        parent = tx.get_order(PARENT)
        assert parent is not None
        assert parent.execution_ids == {"x-1", "x-2"}


def test_a_batch_read_answers_later_reads_and_its_fills_are_recorded_once_across_batches_and_restarts(
    backend: Backend,
) -> None:
    # the writer's shape: one read for the batch's ids, then get/save/record per event, all at commit
    store = backend.open()
    with store.transaction() as tx:
        tx.add_order(parent_order())
    other = ClientOrderId("not-there-yet")
    with store.transaction() as tx:
        found = tx.orders_by_id([PARENT, other])
        assert set(found) == {PARENT}
        assert tx.get_order(other) is None
        tx.add_order(replace(oco_child(), client_order_id=other, broker_order_id=None))
        assert tx.get_order(other) is not None, "an order added after the batch read is found"
        parent = tx.get_order(PARENT)
        assert parent is not None
        assert tx.record_fill(ExecutionId("b-1"), PARENT, D("0.5"), D("412"), T)
        assert tx.record_fill(ExecutionId("b-2"), PARENT, D("0.5"), D("412"), T)
        assert not tx.record_fill(ExecutionId("b-1"), PARENT, D("0.5"), D("412"), T)
        tx.save_order(replace(parent, filled_qty=D("1.000000001")))
    store = backend.open()  # a restart
    with store.transaction() as tx:
        parent = tx.orders_by_id([PARENT])[PARENT]
        assert parent.execution_ids == {"b-1", "b-2"}
        assert not tx.record_fill(ExecutionId("b-2"), PARENT, D("0.5"), D("412"), T)
        assert tx.record_fill(ExecutionId("b-3"), PARENT, D("0.5"), D("413"), T)
        tx.save_order(replace(parent, filled_qty=D("1.500000001")))
    with store.transaction() as tx:
        parent = tx.get_order(PARENT)
        assert parent is not None
        assert parent.execution_ids == {"b-1", "b-2", "b-3"}
        assert (parent.filled_qty, parent.version) == (D("1.500000001"), 2)


def test_a_batch_that_fails_at_commit_writes_no_fill_and_no_journal_row(store: Store) -> None:
    with store.transaction() as tx:
        tx.add_order(parent_order())

    def attempt() -> None:
        with store.transaction() as slow:
            mine = slow.orders_by_id([PARENT])[PARENT]
            slow.record_fill(ExecutionId("c-1"), PARENT, D("0.5"), D("412"), T)
            slow.journal(entry("observed"))
            slow.save_order(replace(mine, status=S.FILLED))
            with store.transaction() as fast:
                theirs = fast.get_order(PARENT)
                assert theirs is not None
                fast.save_order(replace(theirs, status=S.CANCELED))

    with pytest.raises(ConcurrencyConflict):
        attempt()
    assert store.read_journal() == []
    with store.transaction() as tx:
        final = tx.get_order(PARENT)
        assert final is not None
        assert (final.status, final.execution_ids) == (S.CANCELED, frozenset())


# -- alerts ----------------------------------------------------------------------------------------


def test_an_alert_is_unique_while_open_and_can_be_raised_again_once_resolved(store: Store) -> None:
    with store.transaction() as tx:
        assert tx.raise_alert(Alert("unprotected", PARENT, "first", T))
        assert not tx.raise_alert(Alert("unprotected", PARENT, "second", T + timedelta(seconds=1)))
        assert tx.raise_alert(Alert("unprotected", "other", "another key", T))
    with store.transaction() as tx:
        assert [a.message for a in tx.open_alerts()] == ["first", "another key"]
        assert tx.resolve_alert("unprotected", PARENT, T + timedelta(minutes=1))
        assert not tx.resolve_alert("unprotected", PARENT, T + timedelta(minutes=2))
        assert not tx.resolve_alert("never", "raised", T)
    with store.transaction() as tx:
        assert [a.key for a in tx.open_alerts()] == ["other"]
        assert tx.raise_alert(Alert("unprotected", PARENT, "third", T + timedelta(minutes=3)))
    with store.transaction() as tx:
        assert [(a.key, a.message, a.resolved_at) for a in tx.open_alerts()] == [
            ("other", "another key", None),
            (PARENT, "third", None),
        ]


# -- journal ---------------------------------------------------------------------------------------


def test_the_journal_is_append_only_and_ordered(store: Store) -> None:
    for batch in range(3):
        with store.transaction() as tx:
            for i in range(3):
                tx.journal(entry(f"k{batch}.{i}", {"n": batch * 3 + i}))

    def attempt() -> None:
        with store.transaction() as tx:
            tx.journal(entry("rolled_back"))
            raise RuntimeError

    with pytest.raises(RuntimeError):
        attempt()
    with store.transaction() as tx:
        tx.journal(entry("last", coid=None))
    journal = store.read_journal()
    assert [e.kind for e in journal] == [f"k{b}.{i}" for b in range(3) for i in range(3)] + ["last"]
    assert all(isinstance(e.seq, int) for e in journal)
    seqs = [e.seq or 0 for e in journal]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)
    assert journal[-1].client_order_id is None
    assert [e.payload for e in journal[:9]] == [{"n": n} for n in range(9)]
    assert store.read_journal(after_seq=seqs[4], limit=3) == journal[5:8]
    assert store.read_journal(after_seq=seqs[-1]) == []


# -- queries ---------------------------------------------------------------------------------------


def test_queries_find_children_open_orders_and_broker_ids(store: Store) -> None:
    done = replace(oco_child(2, minutes=2), status=S.FILLED, broker_order_id=BrokerOrderId("b-2"))
    with store.transaction() as tx:
        tx.add_order(oco_child(3, minutes=3))
        tx.add_order(done)
        write_parent(tx)
        tx.add_order(make_order("other", created_at=T - timedelta(days=1)))
    with store.transaction() as tx:
        assert [o.client_order_id for o in tx.all_orders()] == [
            "other",
            PARENT,
            done.client_order_id,
            f"{PARENT}~oco3",
        ]
        assert [o.client_order_id for o in tx.children_of(PARENT)] == [done.client_order_id, f"{PARENT}~oco3"]
        assert [o.client_order_id for o in tx.open_orders()] == ["other", PARENT, f"{PARENT}~oco3"]
        assert tx.find_by_broker_id(BrokerOrderId("b-2")) == done
        assert tx.find_by_broker_id(BrokerOrderId("nope")) is None
        assert tx.get_order(ClientOrderId("nope")) is None


def test_plans_are_updated_and_leave_the_active_list_when_done(store: Store) -> None:
    with store.transaction() as tx:
        tx.add_plan(plan_state())
        tx.add_plan(PlanState(ClientOrderId("a-first"), plan_state().plan))
    with store.transaction() as tx:
        assert [p.parent_id for p in tx.active_plans()] == ["a-first", PARENT]
        tx.save_plan(replace(plan_state(), release_failures=3, next_release_at=None, done=True))
    with store.transaction() as tx:
        assert [p.parent_id for p in tx.active_plans()] == ["a-first"]
        assert tx.get_plan(PARENT) == replace(
            plan_state(), release_failures=3, next_release_at=None, done=True
        )


def test_cursors_are_overwritten(store: Store) -> None:
    with store.transaction() as tx:
        tx.set_cursor("stream", "a")
        tx.set_cursor("stream", "b")
        tx.set_cursor("poll", "c")
    with store.transaction() as tx:
        assert (tx.get_cursor("stream"), tx.get_cursor("poll"), tx.get_cursor("none")) == ("b", "c", None)


@pytest.mark.parametrize(
    "exits",
    [
        {"stop_loss": PriceRule(price=D("440.00")), "stop_limit": PriceRule(offset=D("0.0333"))},
        {"take_profit": PriceRule(offset=D("0.04")), "trailing": TrailRule(trail_percent=D("2.5"))},
        {"trailing": TrailRule(trail_price=D("1.2500"))},
    ],
    ids=["stop-limit", "tp-and-trailing-percent", "trailing-price"],
)
def test_every_exit_kind_and_a_trailing_child_round_trip_exactly(store: Store, exits: dict[str, Any]) -> None:
    plan = ProtectionPlan(policy=PartialFillPolicy.EACH_FILL, **exits)
    child = new_order(
        client_order_id=f"{PARENT}~sl1",
        symbol="AAPL",
        side="sell",
        type="trailing_stop",
        qty="12.5",
        trail_percent="2.5",
        created_at=T,
        time_in_force=TimeInForce.GTC,
        role=OrderRole.STOP_LOSS,
        parent_id=ClientOrderId(PARENT),
    )
    with store.transaction() as tx:
        tx.add_order(parent_order())
        tx.add_plan(PlanState(ClientOrderId(PARENT), plan))
        tx.add_order(child)

    with store.transaction() as tx:
        state = tx.get_plan(ClientOrderId(PARENT))
        stored = tx.get_order(child.client_order_id)

    assert state is not None
    assert state.plan == plan
    assert stored is not None
    assert (stored.type, stored.trail_percent, stored.trail_price) == (child.type, D("2.5"), None)
