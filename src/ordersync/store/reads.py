"""Many-row reads on SQLite that decode only the rows that changed since the store last decoded them.

The engine's tick and release passes read the same open orders and active plans over and over; turning
thousands of rows into domain objects through SQLAlchemy's result machinery cost most of a tick (about
0.3 s at 10,000 open parents, bench/bench_tick.py). Here the SQL SQLAlchemy compiles runs on the same
DBAPI connection (same transaction), and each raw row is looked up, whole, in a cache of what it
decoded to: a row that differs in any column (another version, another fill, another writer's change) is
a different key and is decoded afresh, so nothing here can return a stale order. What it saves is the
decoding of rows that did not change; the query still reads every row it names.

A read repeated while nothing was written anywhere returns the list it returned before. A read repeated
after writes by this store alone (no other connection committed: SQLite's data_version unchanged) is
patched: the rows this store's transactions wrote since (logged by id, before each write, committed or
rolled back) are read again by id under the same condition and merged into the kept list, in its order.
The store's connections are written only through its transactions, so that log names every row that
may differ; a commit by anyone else moves data_version and the read is made whole again.
"""

from __future__ import annotations

import json
from bisect import insort
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, bindparam, false, func, select, true

from ordersync.domain.ids import ExecutionId
from ordersync.domain.order import Order
from ordersync.ports import PlanState
from ordersync.store import tables as t
from ordersync.store.mapping import row_to_order, row_to_plan
from ordersync.store.statements import ORDERED, order_query

_ids_in = select(func.json_each(bindparam("ids")).table_valued("value").c.value).scalar_subquery()
# name -> (where clause, its parameters in order); every read is ordered as the SQLAlchemy path orders it
_ORDER_READS: dict[str, tuple[Any, tuple[str, ...]]] = {
    "all": (true(), ()),
    "open": (t.orders.c.is_open.is_(True), ()),
    "open_symbol": (t.orders.c.is_open.is_(True) & (t.orders.c.symbol == bindparam("symbol")), ("symbol",)),
    "children": (t.orders.c.parent_id == bindparam("parent"), ("parent",)),
    # one parameter however many parents: a JSON array, unpacked by SQLite (no 500-id chunks)
    "children_in": (t.orders.c.parent_id.in_(_ids_in), ("ids",)),
}
_ACTIVE_PLANS = select(t.plans).where(t.plans.c.done.is_(false())).order_by(t.plans.c.parent_id)
# the same reads narrowed to the rows this store wrote since (``Decoded.written``): one JSON parameter
_WRITTEN = select(func.json_each(bindparam("written")).table_valued("value").c.value).scalar_subquery()
_PATCHES: dict[str, Any] = {
    **{
        name: (where & t.orders.c.client_order_id.in_(_WRITTEN), (*names, "written"))
        for name, (where, names) in _ORDER_READS.items()
    },
    "active_plans": (t.plans.c.done.is_(false()) & t.plans.c.parent_id.in_(_WRITTEN), ("written",)),
}
_LOG_LIMIT = 10_000  # ids logged before a patch gives way to a whole read
State = tuple[int, int, int]


@dataclass(frozen=True)
class _Compiled:
    sql: str
    columns: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]


_COMPILED: dict[str, _Compiled] = {}


@dataclass
class Decoded:
    """What raw rows decoded to, shared by a store's transactions; bounded by the reads it serves."""

    orders: dict[tuple[Any, ...], tuple[Order, dict[str, Any]]] = field(default_factory=dict)
    plans: dict[tuple[Any, ...], PlanState] = field(default_factory=dict)
    largest: int = 0
    # (read, parameters) -> (the database's state when it was read, what it returned, ``logged`` then)
    results: dict[tuple[str, tuple[Any, ...]], tuple[State, list[Any], int]] = field(default_factory=dict)
    # ("order" | "plan", id) of each row this store's transactions wrote, logged before the write
    written: list[tuple[str, str]] = field(default_factory=list)
    dropped: int = 0  # entries of ``written`` dropped from its front (``logged`` counts them too)

    @property
    def logged(self) -> int:
        return self.dropped + len(self.written)

    def wrote(self, kind: str, key: str) -> None:
        """Log a row about to be written (an order, its fills, or a plan): later reads patch it in."""
        if len(self.written) >= _LOG_LIMIT:
            self.dropped += len(self.written)
            self.written.clear()
        self.written.append((kind, key))

    def since(self, kind: str, before: State, now: State, mark: int) -> set[str] | None:
        """The ids of ``kind`` this store wrote between two states of one connection, or None when the
        kept result cannot be patched (another connection committed, or the log no longer reaches)."""
        if before[:2] != now[:2] or mark < self.dropped:
            return None
        return {key for k, key in self.written[mark - self.dropped :] if k == kind}

    def trim(self, read: int) -> None:
        # old versions of changed rows pile up: start over once they outnumber the biggest read
        self.largest = max(self.largest, read)
        limit = 2 * self.largest + 1000
        if len(self.orders) > limit:
            self.orders.clear()
        if len(self.plans) > limit:
            self.plans.clear()


def read_orders(
    conn: Connection, name: str, params: tuple[Any, ...], cache: Decoded
) -> tuple[list[tuple[Order, dict[str, Any]]], bool]:
    """Return (order, row) for each row of the named read, as the SQLAlchemy path would decode it, and
    whether the list is one kept from an earlier read (as it was, or patched with this store's writes)."""
    state = _state(conn)
    done = cache.results.get((name, params))
    if state is not None and done is not None:
        if done[0] == state:
            return done[1], True
        ids = cache.since("order", done[0], state, done[2])
        if ids is not None:
            patched = _patch(conn, name, params, cache, done[1], ids, _order_key)
            cache.results[(name, params)] = (state, patched, cache.logged)
            return patched, True
    mark = cache.logged
    compiled = _COMPILED.get(name) or _compile(conn, name)
    found = _fetch(conn, compiled, params)
    out = []
    get, decoded = cache.orders.get, cache.orders
    for values in found:
        hit = get(values)
        if hit is None:
            hit = decoded[values] = _decode_order(compiled, values)
        out.append(hit)
    cache.trim(len(found))
    if len(cache.results) > 64:  # children of this or that parent: a few reads recur, most do not
        cache.results.clear()
    if state is not None:
        cache.results[(name, params)] = (state, out, mark)
    return out, False


def read_active_plans(conn: Connection, cache: Decoded) -> list[PlanState]:
    """Return the plans not done, ordered by parent id, as ``row_to_plan`` decodes them."""
    state = _state(conn)
    done = cache.results.get(("active_plans", ()))
    if state is not None and done is not None:
        if done[0] == state:
            return list(done[1])
        ids = cache.since("plan", done[0], state, done[2])
        if ids is not None:
            patched = _patch(conn, "active_plans", (), cache, done[1], ids, _plan_key)
            cache.results[("active_plans", ())] = (state, patched, cache.logged)
            return list(patched)
    mark = cache.logged
    compiled = _COMPILED.get("active_plans") or _compile(conn, "active_plans")
    found = _fetch(conn, compiled, ())
    out = []
    get, decoded = cache.plans.get, cache.plans
    for values in found:
        plan = get(values)
        if plan is None:
            plan = decoded[values] = row_to_plan(_row(compiled, values))
        out.append(plan)
    cache.trim(len(found))
    if state is not None:
        cache.results[("active_plans", ())] = (state, out, mark)
    return list(out)


def _order_key(entry: tuple[Order, dict[str, Any]]) -> tuple[Any, ...]:
    return entry[0].created_at, entry[0].client_order_id  # ``ORDERED``


def _plan_key(plan: PlanState) -> tuple[Any, ...]:
    return (plan.parent_id,)


def _patch(
    conn: Connection,
    name: str,
    params: tuple[Any, ...],
    cache: Decoded,
    kept: list[Any],
    ids: set[str],
    key: Callable[[Any], tuple[Any, ...]],
) -> list[Any]:
    """``kept`` with the rows of ``ids`` read again (those still matching the read), in the read's order."""
    if not ids:
        return kept
    compiled = _COMPILED.get(f"{name}+written") or _compile(conn, name, patch=True)
    found = _fetch(conn, compiled, (*params, json.dumps(sorted(ids))))
    if name == "active_plans":
        fresh: list[Any] = [cache.plans.get(v) or row_to_plan(_row(compiled, v)) for v in found]
    else:
        fresh = [cache.orders.get(v) or _decode_order(compiled, v) for v in found]
    out = [entry for entry in kept if key(entry)[-1] not in ids]
    for entry in fresh:
        insort(out, entry, key=key)
    return out


def _state(conn: Connection) -> tuple[int, int, int] | None:
    # Equal states mean no row changed in between: SQLite's data_version moves whenever another
    # connection (another process, another pooled connection) commits, and total_changes whenever this
    # one writes anything (committed, buffered to the file or rolled back since: it never goes back).
    # Read before the query, so a commit racing the query can only make the next state differ. None
    # (nothing kept or reused) while this connection holds uncommitted writes: a rollback would undo
    # them without moving either counter.
    driver: Any = conn.connection.driver_connection
    if driver.in_transaction:
        return None
    (version,) = driver.execute("PRAGMA data_version").fetchone()
    return id(driver), int(version), int(driver.total_changes)


def _fetch(conn: Connection, compiled: _Compiled, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    driver: Any = conn.connection.driver_connection
    rows: list[tuple[Any, ...]] = driver.execute(compiled.sql, tuple(params)).fetchall()
    return rows


def _decode_order(compiled: _Compiled, values: tuple[Any, ...]) -> tuple[Order, dict[str, Any]]:
    row = _row(compiled, values)
    listed = row.pop("execution_ids")
    ids = json.loads(listed) if listed else []
    return row_to_order(row, frozenset(ExecutionId(i) for i in ids if i is not None)), row


def _row(compiled: _Compiled, values: tuple[Any, ...]) -> dict[str, Any]:
    return {
        name: value if process is None else process(value)
        for name, process, value in zip(compiled.columns, compiled.processors, values, strict=True)
    }


def _compile(conn: Connection, name: str, *, patch: bool = False) -> _Compiled:
    dialect = conn.dialect
    expected: tuple[str, ...] = ()
    if patch:
        where, expected = _PATCHES[name]
        plans = select(t.plans).where(where).order_by(t.plans.c.parent_id)
        query = plans if name == "active_plans" else order_query("sqlite", where).order_by(*ORDERED)
        name = f"{name}+written"
    elif name == "active_plans":
        query = _ACTIVE_PLANS
    else:
        where, expected = _ORDER_READS[name]
        query = order_query("sqlite", where).order_by(*ORDERED)
    done = query.compile(dialect=dialect)
    if tuple(str(p) for p in done.positiontup or ()) != expected:
        raise RuntimeError(f"unexpected parameters {done.positiontup} in the {name} read")
    selected = list(query.selected_columns)
    processors = tuple(c.type.dialect_impl(dialect).result_processor(dialect, None) for c in selected)
    return _COMPILED.setdefault(name, _Compiled(str(done), tuple(str(c.key) for c in selected), processors))
