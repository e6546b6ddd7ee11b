"""Hypothesis: the release rule driven through random broker histories (docs/architecture.md §2,
invariant 1, 2 and 7).

A parent with a protection plan lives a random true life at the broker (acknowledgements, partial fills at
varying prices, cancel/expire/reject, or still open). ordersync learns it through duplicated, reordered
and stale observations, applied with the real lifecycle. In between, the children released so far are
accepted, refused, lost (the submit never arrived), filled, canceled or rejected by the broker, and the
broker's qty_available is squeezed or unknown. After every step ``release_decision`` is called and its
commands are carried out on a model of the children; the invariants are checked on every decision, and
once everything is quiet, on the final coverage.

The model's coverage is written here from the definition (a child reserves its full quantity while it is
open, and counts what it sold once finished), not taken from ``protection.coverage``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ordersync.domain.events import Execution, OrderObserved, Source
from ordersync.domain.ids import MAX_CLIENT_ORDER_ID_LEN, ExecutionId
from ordersync.domain.lifecycle import apply, cancel_intent, mark_refused, mark_submitting, settle_not_found
from ordersync.domain.order import Order, OrderRole, OrderSide, OrderStatus, TimeInForce
from ordersync.domain.protection import (
    CancelChild,
    PartialFillPolicy,
    PriceRule,
    ProtectionPlan,
    ReleaseDecision,
    SubmitChild,
    TrailRule,
    release_decision,
    validate_plan,
)
from ordersync.testing import T0, make_order, make_view, observe

S = OrderStatus
D = Decimal
EXAMPLES = settings(max_examples=500, deadline=None)
SHAPES = ["take_profit", "stop_loss", "oco"]
CHILD_EVENTS = ["accept"] * 3 + ["fill"] * 4 + ["refuse", "lost", "resend", "broker_cancel", "reject"]
CHILD_EVENTS += ["stop_triggers", "confirm_cancels", "squeeze", "unsqueeze", "blind"]
ACTIONS = ["parent"] * (len(CHILD_EVENTS) // 2) + CHILD_EVENTS


def tick(price: Decimal) -> Decimal:
    return D("0.01") if price >= 1 else D("0.0001")


# -- scenario generation -------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    parent: Order  # the local intent
    plan: ProtectionPlan
    truth: tuple[OrderObserved, ...]  # the parent's life at the broker, in order
    delivery: tuple[OrderObserved, ...]  # what ordersync receives about the parent, in that order
    actions: tuple[tuple[str, int], ...]
    strays: tuple[Order, ...]  # unsent child intents left from before (to be cancelled when not owed)


@st.composite
def plans(draw: st.DrawFn, shape: str, side: OrderSide, limit: Decimal) -> ProtectionPlan:
    sign = 1 if side is OrderSide.BUY else -1

    def rule(direction: int) -> PriceRule:
        if draw(st.booleans()):
            return PriceRule(offset=draw(st.sampled_from([D("0.01"), D("0.02"), D("0.05"), D("0.1")])))
        away = draw(st.integers(2, 20)) * tick(limit) * direction * sign
        return PriceRule(price=limit + away)

    stop = rule(-1) if shape in ("stop_loss", "oco") else None
    # the stop's kind (docs/architecture.md §14.1): plain, stop-limit (alone or as the OCO's leg), trailing
    kinds = ["stop", "stop_limit", "trailing"] if shape == "stop_loss" else ["stop", "stop_limit"]
    kind = draw(st.sampled_from(kinds)) if stop is not None else "stop"
    stop_limit = trailing = None
    if kind == "stop_limit" and stop is not None and stop.price is not None:
        stop_limit = PriceRule(price=stop.price - draw(st.integers(0, 5)) * tick(limit) * sign)
    elif kind == "stop_limit" and stop is not None and stop.offset is not None:
        stop_limit = PriceRule(offset=stop.offset + draw(st.sampled_from([D(0), D("0.005")])))
    elif kind == "trailing":
        stop, trailing = None, TrailRule(trail_percent=draw(st.sampled_from([D("1"), D("2.5")])))
    return ProtectionPlan(
        take_profit=rule(+1) if shape in ("take_profit", "oco") else None,
        stop_loss=stop,
        policy=draw(st.sampled_from(list(PartialFillPolicy))),
        stop_limit=stop_limit,
        trailing=trailing,
    )


@st.composite
def parent_truths(draw: st.DrawFn, parent: Order) -> tuple[OrderObserved, ...]:
    qty = int(parent.qty)
    limit = parent.limit_price
    assert limit is not None
    better = -1 if parent.side is OrderSide.BUY else 1  # a buy limit fills at or below its limit
    steps: list[tuple[OrderStatus, int, int, Decimal]] = []  # status, cumulative, execution qty, price
    for ack in draw(st.lists(st.sampled_from([S.ACCEPTED, S.PENDING_NEW]), max_size=2, unique=True)):
        steps.append((ack, 0, 0, D(0)))
    steps.append((draw(st.sampled_from([S.NEW] * 19 + [S.REJECTED])), 0, 0, D(0)))
    filled = 0
    while not steps[-1][0].is_terminal:
        moves = ["partial"] * 5 * (qty - filled >= 2) + [
            "fill_all",
            "fill_all",
            "stay_open",
            "cancel",
            "expire",
        ]
        move = draw(st.sampled_from(moves))
        if move == "stay_open":
            break
        price = limit + better * draw(st.integers(0, 3)) * tick(limit)
        if move in ("partial", "fill_all"):
            k = draw(st.integers(1, qty - filled - 1)) if move == "partial" else qty - filled
            filled += k
            status = S.FILLED if filled == qty else S.PARTIALLY_FILLED
            steps.append((status, filled, k, price))
        else:
            steps.append((S.CANCELED if move == "cancel" else S.EXPIRED, filled, 0, D(0)))
    return tuple(_parent_observations(parent, steps))


def _parent_observations(
    parent: Order, steps: list[tuple[OrderStatus, int, int, Decimal]]
) -> list[OrderObserved]:
    observations = []
    notional, filled = D(0), 0
    for index, (status, cumulative, exec_qty, price) in enumerate(steps):
        notional += exec_qty * price
        filled = cumulative
        view = make_view(
            parent,
            status=status,
            filled_qty=filled,
            updated_at=T0 + timedelta(seconds=index + 1),
            filled_avg_price=notional / filled if filled else None,
        )
        if filled == 0:
            view = replace(view, filled_avg_price=None)
        execution = Execution(ExecutionId(f"px-{index}"), D(exec_qty), price) if exec_qty else None
        event = ("fill" if status is S.FILLED else "partial_fill") if execution else status.value
        observations.append(
            OrderObserved(view, Source.STREAM, view.updated_at, view.updated_at, event, execution)
        )
    return observations


@st.composite
def scenarios(draw: st.DrawFn, shape: str) -> Scenario:
    side = draw(st.sampled_from(list(OrderSide)))
    limit = draw(st.sampled_from([D("0.5000"), D("9.99"), D("100.00"), D("250.37")]))
    parent = make_order("p", side=side, qty=draw(st.sampled_from([1, 2, 3, 5, 8, 13, 40])), limit_price=limit)
    plan = validate_plan(draw(plans(shape, side, limit)), parent)
    truth = draw(parent_truths(parent))
    received = list(truth) + [draw(st.sampled_from(truth)) for _ in range(draw(st.integers(0, 4)))]
    for _ in range(draw(st.integers(0, 3))):  # stale polls: snapshots without the execution
        received.append(replace(draw(st.sampled_from(truth)), source=Source.POLL, event=None, execution=None))
    strays = tuple(
        make_order(
            f"p~old{i}",
            side=side.opposite,
            qty=draw(st.integers(1, int(parent.qty))),
            limit_price=limit,
            role=plan.role,
            parent_id="p",
            time_in_force=TimeInForce.GTC,
        )
        for i in range(draw(st.integers(0, 2)))
    )
    return Scenario(
        parent=parent,
        plan=plan,
        truth=truth,
        delivery=tuple(draw(st.permutations(received))),
        actions=tuple(
            draw(st.lists(st.tuples(st.sampled_from(ACTIONS), st.integers(0, 15)), min_size=10, max_size=60))
        ),
        strays=strays,
    )


# -- the simulation ---------------------------------------------------------------------------------


@dataclass
class Step:
    """One call of release_decision: its inputs and what it decided."""

    parent: Order
    children: list[Order]
    qty_available: Decimal | None
    decision: ReleaseDecision
    coverage_after: Decimal  # model coverage once the submits were recorded


@dataclass
class Run:
    scenario: Scenario
    parent: Order
    children: dict[str, Order] = field(default_factory=dict)
    cancel_requested: set[str] = field(default_factory=set)
    lost: set[str] = field(default_factory=set)  # settled "never reached the broker": to be sent again
    squeeze: Decimal = Decimal(0)  # shares held by orders outside this plan
    blind: bool = False
    delivered: int = 0
    steps: list[Step] = field(default_factory=list)
    quiet_steps: list[Step] = field(default_factory=list)

    # the model ------------------------------------------------------------------------------------

    def coverage(self) -> Decimal:
        total = D(0)
        for primary in (c for c in self.children.values() if c.group_id is None):
            members = [primary] + [c for c in self.children.values() if c.group_id == primary.client_order_id]
            if primary.status is S.REJECTED:
                continue
            if any(not m.is_terminal for m in members):
                total += primary.qty
            else:
                total += min(primary.qty, sum((m.filled_qty for m in members), D(0)))
        return total

    def qty_available(self) -> Decimal | None:
        if self.blind:
            return None
        broker_filled = max(
            (o.order.filled_qty for o in self.scenario.delivery[: self.delivered]), default=D(0)
        )
        sold = sum((c.filled_qty for c in self.children.values()), D(0))
        held = sum(
            (c.qty - c.filled_qty for c in self.children.values() if c.status is not S.INTENT and c.is_open),
            D(0),
        )
        return max(D(0), broker_filled - sold - held - self.squeeze)

    # one release pass -----------------------------------------------------------------------------

    def release(self, record: list[Step]) -> ReleaseDecision:
        children = sorted(self.children.values(), key=lambda c: c.client_order_id)
        available = self.qty_available()
        decision = release_decision(self.parent, self.scenario.plan, children, available, T0)
        self.blind = False
        for command in decision.commands:
            if isinstance(command, SubmitChild):
                # the release gate records the intent, then sends it
                self.children[command.order.client_order_id] = mark_submitting(command.order)
            else:
                self._cancel(command)
        record.append(Step(self.parent, children, available, decision, self.coverage()))
        return decision

    def _cancel(self, command: CancelChild) -> None:
        target = self.children[command.client_order_id]
        if target.status is S.INTENT:
            self.children[target.client_order_id] = cancel_intent(target)
            self.lost.discard(target.client_order_id)
        else:
            self.cancel_requested.add(target.client_order_id)

    # broker and engine events -------------------------------------------------------------------

    def act(self, action: str, k: int) -> None:
        getattr(self, f"_on_{action}")(k)

    def _pick(self, k: int, *statuses: OrderStatus, live: bool = False) -> Order | None:
        primaries = [
            c for c in sorted(self.children.values(), key=lambda c: c.client_order_id) if c.group_id is None
        ]
        if live:
            found = [c for c in primaries if c.is_open and not c.status.is_local]
        else:
            found = [c for c in primaries if c.status in statuses]
        return found[k % len(found)] if found else None

    def _set(
        self, child: Order, status: OrderStatus, filled: Decimal | None = None, exec_id: str | None = None
    ) -> None:
        result = apply(child, observe(child, status, filled, execution_id=exec_id, price=child.limit_price))
        assert result.error is None, result.error
        self.children[child.client_order_id] = result.order

    def _on_parent(self, _k: int) -> None:
        if self.delivered < len(self.scenario.delivery):
            result = apply(self.parent, self.scenario.delivery[self.delivered])
            assert result.error is None, result.error  # one true history never contradicts itself
            self.parent = result.order
            self.delivered += 1

    def _on_accept(self, k: int) -> None:
        if child := self._pick(k, S.SUBMITTING):
            self._set(child, S.NEW, D(0))

    def _on_refuse(self, k: int) -> None:
        if child := self._pick(k, S.SUBMITTING):
            self.children[child.client_order_id] = mark_refused(child)

    def _on_lost(self, k: int) -> None:
        if child := self._pick(k, S.SUBMITTING):
            self.children[child.client_order_id] = settle_not_found(child)
            self.lost.add(child.client_order_id)

    def _on_resend(self, k: int) -> None:
        lost = [self.children[c] for c in sorted(self.lost) if self.children[c].status is S.INTENT]
        if lost:
            child = lost[k % len(lost)]
            self.children[child.client_order_id] = mark_submitting(child)
            self.lost.discard(child.client_order_id)

    def _on_fill(self, k: int) -> None:
        if (child := self._pick(k, live=True)) and child.leaves_qty > 0:
            add = min(child.leaves_qty, D(k % 4 + 1))
            total = child.filled_qty + add
            status = S.FILLED if total == child.qty else S.PARTIALLY_FILLED
            self._set(child, status, total, exec_id=f"{child.client_order_id}-x{total}")

    def _on_broker_cancel(self, k: int) -> None:
        if child := self._pick(k, live=True):
            self._close(child)

    def _on_reject(self, k: int) -> None:
        if (child := self._pick(k, live=True)) and child.filled_qty == 0:
            self._set(child, S.REJECTED, D(0))
            self.cancel_requested.discard(child.client_order_id)

    def _on_stop_triggers(self, k: int) -> None:
        """The stop leg of an OCO triggers: the take-profit leg is canceled and the stop sells the rest."""
        child = self._pick(k, live=True)
        if child is not None and child.role is OrderRole.OCO:
            self._set(child, S.CANCELED)
            self._add_leg(child, S.FILLED, child.qty - child.filled_qty)
            self.cancel_requested.discard(child.client_order_id)

    def _on_confirm_cancels(self, _k: int) -> None:
        for coid in sorted(self.cancel_requested):
            child = self.children[coid]
            if child.status is S.SUBMITTING:
                self._set(child, S.NEW, D(0))
                child = self.children[coid]
            if child.is_open:
                self._close(child)
        self.cancel_requested.clear()

    def _close(self, child: Order) -> None:
        self._set(child, S.CANCELED)
        self.cancel_requested.discard(child.client_order_id)
        if child.role is OrderRole.OCO:  # the engine reads the legs of a finished OCO
            self._add_leg(child, S.CANCELED, D(0))

    def _add_leg(self, primary: Order, status: OrderStatus, filled: Decimal) -> None:
        leg = replace(
            primary,
            client_order_id=f"{primary.client_order_id}-stop",
            broker_order_id=f"{primary.broker_order_id}-stop",
            group_id=primary.client_order_id,
            status=status,
            filled_qty=filled,
            execution_ids=frozenset(),
        )
        self.children[leg.client_order_id] = leg

    def _on_squeeze(self, k: int) -> None:
        self.squeeze = D(k % 6)

    def _on_unsqueeze(self, _k: int) -> None:
        self.squeeze = D(0)

    def _on_blind(self, _k: int) -> None:
        self.blind = True

    # settle -----------------------------------------------------------------------------------------

    def settle(self) -> None:
        """Deliver what is left, let the broker answer everything, and release until nothing changes."""
        while self.delivered < len(self.scenario.delivery):
            self._on_parent(0)
        self.squeeze, self.blind = D(0), False
        for _ in range(30):
            for coid in sorted(self.lost):
                if self.children[coid].status is S.INTENT:
                    self.children[coid] = mark_submitting(self.children[coid])
            self.lost.clear()
            for child in [c for c in self.children.values() if c.status is S.SUBMITTING]:
                self._set(child, S.NEW, D(0))
            self._on_confirm_cancels(0)
            if not self.release(self.quiet_steps).commands:
                return
        raise AssertionError("release_decision did not settle within 30 quiet rounds")


def simulate(scenario: Scenario) -> Run:
    run = Run(scenario, scenario.parent, {c.client_order_id: c for c in scenario.strays})
    run.release(run.steps)  # the intent, before it is sent
    run.parent = mark_submitting(run.parent)
    run.release(run.steps)  # sent, no answer yet
    for action, k in scenario.actions:
        run.act(action, k)
        run.release(run.steps)
    run.settle()
    return run


def submits(step: Step) -> list[Order]:
    return [c.order for c in step.decision.commands if isinstance(c, SubmitChild)]


def expected_target(parent: Order, plan: ProtectionPlan) -> Decimal:
    """What must be protected: only broker-confirmed fills; under FULL_FILL, only a finished parent's."""
    if parent.status.is_local:
        return D(0)
    if (
        plan.policy is PartialFillPolicy.FULL_FILL
        and parent.filled_qty < parent.qty
        and not parent.is_terminal
    ):
        return D(0)
    return parent.filled_qty


# -- the invariants ------------------------------------------------------------------------------


def check_invariant_1(run: Run) -> None:
    """No premature children: never for a local parent, never beyond the confirmed fill."""
    plan = run.scenario.plan
    for step in run.steps + run.quiet_steps:
        new = submits(step)
        if not new:
            continue
        assert not step.parent.status.is_local, f"child released while the parent is {step.parent.status}"
        assert step.parent.filled_qty > 0
        assert step.coverage_after <= step.parent.filled_qty, (
            f"coverage {step.coverage_after} above the confirmed fill {step.parent.filled_qty}"
        )
        if plan.policy is PartialFillPolicy.FULL_FILL:
            assert step.parent.filled_qty == step.parent.qty or step.parent.is_terminal
        assert step.decision.target == expected_target(step.parent, plan)


def lone_exit_must_wait(parent: Order, plan: ProtectionPlan) -> bool | None:
    """Alpaca's wash-trade rule (docs/alpaca.md §6.3) for an exit while the limit entry still works: True when
    it must wait, False when it must not, None when it depends on the price computed from the fill."""
    if parent.is_terminal or (plan.take_profit is not None and plan.stop_loss is not None):
        return False  # nothing left to trade against, or an OCO (exempt)
    if plan.trailing is not None:
        return False  # a trailing stop is exempt too (docs/alpaca.md §4.7)
    if plan.take_profit is None:
        return True  # a resting limit buy vs a new stop sell: always refused
    if plan.take_profit.price is None:
        return None
    assert parent.limit_price is not None
    sign = 1 if parent.side is OrderSide.BUY else -1
    return sign * (plan.take_profit.price - parent.limit_price) <= 0  # opposing limits that cross


def check_invariant_2(run: Run) -> None:
    """Exact coverage once quiet; a lone exit that may not rest beside the working entry is held, visibly."""
    parent, plan = run.parent, run.scenario.plan
    assert parent.status is run.scenario.truth[-1].order.status
    assert not any(c.status is S.SUBMITTING for c in run.children.values())
    expected, covered = expected_target(parent, plan), run.coverage()
    holds = run.quiet_steps[-1].decision.holds
    assert covered <= expected
    wait = lone_exit_must_wait(parent, plan)
    if (covered == expected and wait is not True) or expected == 0:
        assert holds == ()
        return
    assert wait is not False, f"coverage {covered} != owed {expected} ({plan.policy})"
    assert [h.qty for h in holds] == [expected - covered], "an unprotected fill must be held, not forgotten"
    assert "wash-trade" in holds[0].reason


def check_never_over_covered(run: Run) -> None:
    """Coverage ordersync creates never exceeds the confirmed fill (strays are cancelled, not topped up)."""
    for step in run.steps + run.quiet_steps:
        if submits(step):
            assert step.coverage_after <= step.parent.filled_qty
    assert run.coverage() <= run.parent.filled_qty


def check_invariant_7(run: Run) -> None:
    """A parent that dies unfilled releases nothing, and its pending intents are cancelled."""
    if not (run.parent.is_terminal and run.parent.filled_qty == 0):
        return
    for step in run.steps + run.quiet_steps:
        assert not submits(step)
    assert all(c.is_terminal for c in run.children.values())
    assert set(run.children) == {s.client_order_id for s in run.scenario.strays}


def check_gating(run: Run) -> None:
    """One child per decision, none while a submit outcome is unknown, never above qty_available."""
    for step in run.steps + run.quiet_steps:
        new = submits(step)
        assert len(new) <= 1
        if any(c.status is S.SUBMITTING for c in step.children):
            assert not new, "released while a child's submit outcome is unknown"
        if new:
            assert step.qty_available is not None
            assert sum((c.qty for c in new), D(0)) <= step.qty_available
        owed = max(D(0), step.decision.target - step.decision.covered)
        if (
            not (step.parent.is_terminal and step.parent.filled_qty == 0)
            and step.decision.covered <= step.decision.target
        ):
            released = sum((c.qty for c in new), D(0))
            held = sum((h.qty for h in step.decision.holds), D(0))
            assert released + held == owed, "owed quantity neither released nor held"


def check_children(run: Run) -> None:
    """Each child: the plan's role (one OCO for both exits), opposite side, GTC, a fresh id, right prices."""
    plan, parent_id = run.scenario.plan, run.scenario.parent.client_order_id
    seen = {s.client_order_id for s in run.scenario.strays}
    for step in run.steps + run.quiet_steps:
        for child in submits(step):
            assert child.client_order_id not in seen
            seen.add(child.client_order_id)
            assert len(child.client_order_id) <= MAX_CLIENT_ORDER_ID_LEN
            assert child.parent_id == parent_id
            assert child.side is step.parent.side.opposite
            assert child.time_in_force is TimeInForce.GTC
            assert child.qty > 0
            both = plan.take_profit is not None and plan.stop_loss is not None
            assert child.role is (OrderRole.OCO if both else plan.role)
            check_prices(step.parent, plan, child)


def check_prices(parent: Order, plan: ProtectionPlan, child: Order) -> None:
    fill = parent.filled_avg_price
    assert fill is not None
    sign = 1 if parent.side is OrderSide.BUY else -1
    if plan.take_profit is not None:
        _check_exit(plan.take_profit, fill, sign, child.limit_price)
        assert child.limit_price is not None
        assert sign * (child.limit_price - fill) >= 0 or plan.take_profit.price is not None
    if plan.stop_loss is not None:
        _check_exit(plan.stop_loss, fill, -sign, child.stop_price)
        assert child.stop_price is not None
        assert sign * (fill - child.stop_price) >= 0 or plan.stop_loss.price is not None
    if plan.take_profit is not None and plan.stop_loss is not None:
        assert child.limit_price is not None
        assert child.stop_price is not None
        assert sign * (child.limit_price - child.stop_price) > 0


def _check_exit(rule: PriceRule, fill: Decimal, direction: int, price: Decimal | None) -> None:
    assert price is not None
    raw = rule.price if rule.price is not None else fill * (1 + direction * (rule.offset or 0))
    step = tick(price)
    assert price % step == 0, f"{price} is not on the {step} tick"
    assert abs(price - raw) <= step, f"{price} is more than a tick from {raw}"
    if rule.offset is not None and direction * (raw - fill) > 0:
        # rounded away from the fill (the documented rule): never nearer it than the offset asked
        assert direction * (price - raw) >= 0, f"{price} is nearer the fill {fill} than {raw}"


ALL_CHECKS = [
    check_invariant_1,
    check_invariant_2,
    check_never_over_covered,
    check_invariant_7,
    check_gating,
    check_children,
]


@pytest.mark.parametrize("shape", SHAPES)
@EXAMPLES
@given(data=st.data())
def test_release_rule_keeps_every_invariant(shape: str, data: st.DataObject) -> None:
    run = simulate(data.draw(scenarios(shape)))
    for check in ALL_CHECKS:
        check(run)


fills = st.one_of(
    st.integers(100, 99_999).map(lambda cents: D(cents) / 100),  # $1.00 .. $999.99, on the cent
    st.integers(1, 9_999).map(lambda hundredths: D(hundredths) / 10_000),  # below $1, on 0.0001
)


@EXAMPLES
@given(
    side=st.sampled_from(list(OrderSide)),
    fill=fills,
    tp_offset=st.decimals("0.0001", "0.5", places=4),
    sl_offset=st.decimals("0.0001", "0.5", places=4),
)
def test_relative_exits_land_on_the_protective_side_of_the_fill(
    side: OrderSide, fill: Decimal, tp_offset: Decimal, sl_offset: Decimal
) -> None:
    """Tick rounding must never move an exit onto (or past) the fill: a take-profit at the fill price is no
    profit, a stop at the fill price triggers at once. Where no such price exists, the exit is held."""
    parent = make_order(
        "p", side=side, qty=4, status=S.FILLED, filled_qty=4, filled_avg_price=fill, limit_price=fill
    )
    sign = 1 if side is OrderSide.BUY else -1
    for plan in (
        ProtectionPlan(take_profit=PriceRule(offset=tp_offset)),
        ProtectionPlan(stop_loss=PriceRule(offset=sl_offset)),
    ):
        decision = release_decision(parent, plan, [], D(4), T0)
        if not decision.commands:  # no price on the tick grid is beyond the fill (a $0.0001 fill): held
            assert [h.qty for h in decision.holds] == [4]
            continue
        [command] = decision.commands
        assert isinstance(command, SubmitChild)
        child = command.order
        if plan.take_profit is not None:
            assert child.limit_price is not None
            assert sign * (child.limit_price - fill) > 0, f"take-profit {child.limit_price} vs fill {fill}"
        else:
            assert child.stop_price is not None
            assert sign * (fill - child.stop_price) > 0, f"stop-loss {child.stop_price} vs fill {fill}"
