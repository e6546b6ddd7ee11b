"""`ordersync protect PARENT_ID`: lifts a parent's operator hold (docs/operations.md §5.1)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from typer.testing import CliRunner

from ordersync.cli import app
from ordersync.domain.ids import ClientOrderId
from ordersync.domain.order import OrderRole, OrderStatus
from ordersync.domain.protection import PriceRule, ProtectionPlan
from ordersync.engine.context import read_holds, write_holds
from ordersync.ports import PlanState
from ordersync.store import open_store
from ordersync.testing import make_order

PLAN = ProtectionPlan(take_profit=PriceRule(price=Decimal("110")))


def _store(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'o.db'}"
    store = open_store(url)
    with store.transaction() as tx:
        tx.add_order(make_order("p1", status=OrderStatus.FILLED, filled_qty=10))
        tx.add_plan(PlanState(ClientOrderId("p1"), PLAN))
        tx.add_order(make_order("p1~tp1", side="sell", role=OrderRole.TAKE_PROFIT, parent_id="p1"))
        write_holds(tx, {ClientOrderId("p1"): "p1~tp1"})
    store.close()
    return url


def test_protect_lifts_the_hold_once_and_journals_it(tmp_path: Path) -> None:
    url = _store(tmp_path)

    lifted = CliRunner().invoke(app, ["protect", "p1", "--db", url])
    again = CliRunner().invoke(app, ["protect", "p1", "--db", url])

    assert lifted.exit_code == 0, lifted.stderr
    assert "p1: hold lifted (p1~tp1 was canceled by hand)" in lifted.stdout
    assert again.exit_code == 0
    assert "p1 is not on operator hold: nothing to do" in again.stdout
    store = open_store(url)
    with store.transaction() as tx:
        assert read_holds(tx) == {}
    kinds = [(e.kind, e.client_order_id, e.payload) for e in store.read_journal()]
    store.close()
    assert kinds == [("operator_protect", "p1", {"child": "p1~tp1"})]


def test_protect_refuses_an_unknown_id_or_a_child_in_one_line(tmp_path: Path) -> None:
    url = _store(tmp_path)

    unknown = CliRunner().invoke(app, ["protect", "nope", "--db", url])
    child = CliRunner().invoke(app, ["protect", "p1~tp1", "--db", url])

    assert (unknown.exit_code, child.exit_code) == (2, 2)
    assert unknown.stderr.strip() == "error: unknown parent id nope: no such order"
    assert child.stderr.strip().startswith("error: unknown parent id p1~tp1: it has no protection plan")
    assert len(child.stderr.strip().splitlines()) == 1
    store = open_store(url)
    with store.transaction() as tx:
        assert read_holds(tx) == {ClientOrderId("p1"): "p1~tp1"}, "a refused command changes nothing"
    store.close()
