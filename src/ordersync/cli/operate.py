"""An operator's one-shot commands against the store: submit a parent, show status, list and acknowledge
alerts, re-arm a parent a person unprotected, reconcile with the broker.

Each opens the store, does one thing in a transaction and closes it; the running engine (``ordersync run``)
does the sending. Input Alpaca would refuse anyway is refused before anything is written.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Annotated

import typer
from rich.live import Live

from ordersync.cli.common import check_store, fail, open_store, out, settings_and_keys, store_url


def submit(
    symbol: Annotated[str, typer.Option(help="ticker, e.g. AAPL")],
    qty: Annotated[str, typer.Option(help="quantity (decimal)")],
    side: Annotated[str, typer.Option(help="buy or sell")] = "buy",
    order_type: Annotated[str, typer.Option("--type", help="market | limit | stop | stop_limit")] = "market",
    limit_price: Annotated[str | None, typer.Option(help="limit price")] = None,
    stop_price: Annotated[str | None, typer.Option(help="stop price")] = None,
    tif: Annotated[str, typer.Option(help="day | gtc | ...")] = "day",
    client_order_id: Annotated[
        str | None, typer.Option(help="your idempotency key (default: generated)")
    ] = None,
    take_profit: Annotated[str | None, typer.Option(help="take-profit price")] = None,
    stop_loss: Annotated[str | None, typer.Option(help="stop-loss price")] = None,
    tp_offset: Annotated[str | None, typer.Option(help="take-profit as a fraction beyond the fill")] = None,
    sl_offset: Annotated[str | None, typer.Option(help="stop-loss as a fraction beyond the fill")] = None,
    policy: Annotated[str, typer.Option(help="each_fill | full_fill")] = "each_fill",
    db: Annotated[str | None, typer.Option(help="store URL")] = None,
    config: Annotated[Path | None, typer.Option(help="config file naming the store")] = None,
) -> None:
    """Record a parent order and its protection plan; the running engine (``ordersync run``) sends it."""
    import uuid
    from decimal import Decimal

    from ordersync.clocks import SystemClock
    from ordersync.domain.errors import OrderSyncError
    from ordersync.domain.order import new_order, to_decimal
    from ordersync.domain.protection import PartialFillPolicy, PriceRule, ProtectionPlan, validate_plan
    from ordersync.engine import record_parent

    def rule(price: str | None, offset: str | None) -> PriceRule | None:
        if price is None and offset is None:
            return None
        return PriceRule(
            price=None if price is None else to_decimal(price, "price"),
            offset=None if offset is None else Decimal(offset),
        )

    url = store_url(db, config)
    _check_submit_input(symbol, qty, client_order_id)
    try:
        order = new_order(
            client_order_id=client_order_id or f"os-{uuid.uuid4().hex[:20]}",
            symbol=symbol,
            side=side,
            type=order_type,
            qty=qty,
            created_at=SystemClock().now(),
            time_in_force=tif,
            limit_price=limit_price,
            stop_price=stop_price,
        )
        tp, sl = rule(take_profit, tp_offset), rule(stop_loss, sl_offset)
        plan = ProtectionPlan(tp, sl, PartialFillPolicy(policy)) if tp or sl else None
        if plan is not None:
            validate_plan(plan, order)  # before the store is opened: a refused submit writes nothing
        store = open_store(url)
        try:
            record_parent(store, order, plan, SystemClock().now())
        finally:
            store.close()
    except (OrderSyncError, ValueError, ArithmeticError) as e:
        fail(e)
    out.print(order.client_order_id)


def status(
    db: Annotated[str | None, typer.Option(help="store URL")] = None,
    config: Annotated[Path | None, typer.Option(help="config file naming the store")] = None,
    watch: Annotated[
        bool, typer.Option("--watch", help="redraw every --interval seconds until Ctrl-C")
    ] = False,
    interval: Annotated[float, typer.Option(help="seconds between redraws with --watch")] = 2.0,
) -> None:
    """Show orders, their children and protection, and open alerts (exit 1 while any alert is open)."""
    import math
    import time

    from rich.console import Group

    from ordersync.reports import status_tables

    if not math.isfinite(interval) or not 0.1 <= interval <= 3600:
        fail(f"--interval must be between 0.1 and 3600 seconds, was {interval}")
    store = open_store(store_url(db, config), must_exist=True)

    def snapshot() -> tuple[Group, bool]:
        with store.transaction() as tx:
            alerts = tx.open_alerts()
            tables = status_tables(tx.all_orders(), tx.active_plans(), alerts)
        return Group(*tables), bool(alerts)

    try:
        view, alerting = snapshot()
        if not watch:
            out.print(view)
            raise typer.Exit(1 if alerting else 0)
        with Live(view, console=out, refresh_per_second=1) as live, contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(interval)
                view, alerting = snapshot()
                live.update(view)
    finally:
        store.close()
    raise typer.Exit(1 if alerting else 0)


def alerts_list(
    ctx: typer.Context,
    db: Annotated[str | None, typer.Option(help="store URL")] = None,
    config: Annotated[Path | None, typer.Option(help="config file naming the store")] = None,
) -> None:
    """List the open alerts with their ids (exit 1 while any is open)."""
    if ctx.invoked_subcommand is not None:
        return
    from rich.table import Table
    from rich.text import Text

    store = open_store(store_url(db, config), must_exist=True)
    try:
        with store.transaction() as tx:
            alerts = tx.open_alerts()
    finally:
        store.close()
    table = Table(title=f"Open alerts: {len(alerts)}")
    for column in ("id", "since", "message"):
        table.add_column(column)
    for alert in alerts:
        since = alert.raised_at.isoformat(timespec="seconds")
        table.add_row(Text(f"{alert.kind}:{alert.key}"), Text(since), Text(alert.message))
    out.print(table)
    raise typer.Exit(1 if alerts else 0)


def alerts_ack(
    alert_id: Annotated[str, typer.Argument(help="KIND:KEY as `ordersync alerts` lists it")],
    note: Annotated[str, typer.Option(help="why it is acknowledged (journaled)")] = "",
    db: Annotated[str | None, typer.Option(help="store URL")] = None,
    config: Annotated[Path | None, typer.Option(help="config file naming the store")] = None,
) -> None:
    """Acknowledge (close) an open alert; the engine raises it again if its condition still holds."""
    from ordersync.clocks import SystemClock
    from ordersync.domain.kinds import JournalKind
    from ordersync.ports import JournalEntry

    kind, sep, key = alert_id.partition(":")
    if not sep or not kind or not key:
        fail(f"an alert id is KIND:KEY as `ordersync alerts` lists it, was {alert_id!r}")
    store = open_store(store_url(db, config), must_exist=True)
    try:
        now = SystemClock().now()
        with store.transaction() as tx:
            if not tx.resolve_alert(kind, key, now):
                fail(f"no open alert {alert_id}")
            payload = {"alert": kind, "key": key, "note": note[:500]}
            tx.journal(JournalEntry(now, JournalKind.ALERT_ACKNOWLEDGED, None, payload))
    finally:
        store.close()
    out.print(f"acknowledged {alert_id}")


def protect(
    parent_id: Annotated[str, typer.Argument(help="the parent whose protection a person canceled")],
    config: Annotated[Path | None, typer.Option(help="config file naming the store")] = None,
    db: Annotated[str | None, typer.Option(help="store URL (overrides the config's)")] = None,
) -> None:
    """Re-arm a parent a person unprotected: lift its operator hold; the engine protects it again.

    A cancel of our take-profit/stop-loss that ordersync did not ask for is a person's decision, so the
    engine holds the parent (alert `protection_cancelled_by_operator`) instead of re-arming it."""
    from ordersync.clocks import SystemClock
    from ordersync.domain.ids import ClientOrderId
    from ordersync.engine.context import UnknownParent, lift_hold

    store = open_store(store_url(db, config), must_exist=True)
    try:
        child = lift_hold(store, ClientOrderId(parent_id), SystemClock().now())
    except UnknownParent as e:
        fail(e)
    finally:
        store.close()
    if child is None:
        out.print(f"{parent_id} is not on operator hold: nothing to do", markup=False)
    else:
        lifted = f"{parent_id}: hold lifted ({child} was canceled by hand); the engine re-arms it"
        out.print(lifted, markup=False)


def reconcile(
    config: Annotated[Path, typer.Option(help="YAML config naming the broker and the store")],
    db: Annotated[str | None, typer.Option(help="store URL (overrides the config's)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="report only; change nothing")] = False,
) -> None:
    """Compare local orders and positions with the broker's; fix what can be fixed.

    The broker is the one the config file names: without a config nothing is read or written."""
    from ordersync.bootstrap import build_engine

    settings, credentials = settings_and_keys(config)
    if db is not None:
        settings = settings.model_copy(update={"store": settings.store.model_copy(update={"url": db})})
    check_store(settings.store.url)
    engine, store, _ = build_engine(settings, credentials, with_lease=False)
    try:
        report = asyncio.run(engine.watch.reconcile(dry_run=dry_run))
    finally:
        store.close()
    counts = f"corrections: {report.corrections}  lookups: {report.lookups}"
    out.print(f"{counts}  discrepancies: {len(report.discrepancies)}")
    for d in report.discrepancies:
        out.print(f"  {d.kind} {d.key}: {d.detail}", markup=False)
    if report.notes:  # others' orders and shares: reported, not discrepancies of ours
        out.print(f"others (not ours, left alone): {len(report.notes)}")
    for n in report.notes:
        out.print(f"  {n.kind} {n.key}: {n.detail}", markup=False)
    raise typer.Exit(1 if report.discrepancies else 0)


def _check_submit_input(symbol: str, qty: str, client_order_id: str | None) -> None:
    # what Alpaca would refuse anyway, refused here before anything is written (docs/operations.md)
    import re
    from decimal import Decimal, InvalidOperation

    if not re.fullmatch(r"[A-Z][A-Z0-9.]{0,15}(/[A-Z]{2,6})?", symbol):
        fail(f"--symbol must be an upper-case ticker such as AAPL or BRK.B, was {symbol[:40]!r}")
    try:
        amount = Decimal(qty)
    except InvalidOperation:
        fail(f"--qty must be a number, was {qty[:40]!r}")
    if not amount.is_finite() or amount <= 0 or amount > Decimal(10) ** 9:
        fail(f"--qty must be positive and at most 1000000000, was {qty[:40]}")
    if -amount.as_tuple().exponent > 9:  # type: ignore[operator]
        fail(f"--qty has more than 9 decimals: {qty[:40]}")
    if client_order_id is not None and (
        "~" in client_order_id or not client_order_id.isascii() or not client_order_id.isprintable()
    ):
        fail("--client-order-id must be printable ASCII without '~' (reserved for protective children)")
