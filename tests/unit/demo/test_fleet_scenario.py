"""The fleet demo's market: the seed scenario on N accounts, each with its own keys and fill-plan variation,
compressed to about a minute of real time, price moves played by the demo (``ordersync.demo.fleet_scenario``).
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from ordersync.demo.fleet_scenario import (
    UnsupportedFleetScenario,
    fleet_scenario,
    scenario_text,
)
from ordersync.sim.scenarios import default_scenario, parse_scenario

SEED = default_scenario()


def _plans(fleet: object, name: str) -> list[tuple[str, list[float], list[Decimal]]]:
    return [(p.id, [f.after_s for f in p.fills], [f.qty for f in p.fills]) for p in fleet.parents_of(name)]  # type: ignore[attr-defined]


def test_every_account_has_its_own_name_and_keys_and_the_seeds_parents() -> None:
    fleet = fleet_scenario(SEED, 12)
    names = [a.name for a in fleet.accounts]
    assert names == [f"demo-{i:03d}" for i in range(1, 13)]
    assert len({a.key_id for a in fleet.accounts}) == len({a.secret_key for a in fleet.accounts}) == 12
    assert all(a.secret_key not in repr(a) and a.key_id not in repr(a) for a in fleet.accounts)
    served = {s.name: s for s in fleet.scenario.account_specs()}
    assert sorted(served) == names
    for account in fleet.accounts:
        assert (served[account.name].key_id, served[account.name].secret_key) == (
            account.key_id,
            account.secret_key,
        )
        assert [p.id for p in fleet.parents_of(account.name)] == [p.id for p in SEED.parents]
    assert fleet.parent_ids == {p.id for p in SEED.parents}


def test_the_seed_is_compressed_to_about_a_minute_and_its_structure_kept() -> None:
    fleet = fleet_scenario(SEED, 1, timeline_s=60, fill_delay_s=0, drop_last_fill_p=0)
    assert 380 < fleet.compression < 400  # the seed's last fill is 6.5 hours after the first submission
    assert 55 <= fleet.timeline_s <= 65
    by_id = {p.id: p for p in SEED.parents}
    for parent in fleet.parents_of("demo-001"):
        seed = by_id[parent.id]
        assert [f.qty for f in parent.fills] == [f.qty for f in seed.fills]  # same partial fills
        for ours, theirs in zip(parent.fills, seed.fills, strict=True):
            assert ours.after_s == pytest.approx(theirs.after_s / fleet.compression, abs=0.001)
        assert (parent.take_profit, parent.stop_loss) == (seed.take_profit, seed.stop_loss)


def test_variations_differ_between_accounts_and_repeat_for_the_same_account() -> None:
    one, again = fleet_scenario(SEED, 8), fleet_scenario(SEED, 8)
    plans = [_plans(one, a.name) for a in one.accounts]
    assert len({json.dumps(p, default=str) for p in plans}) == 8, "every account its own fill plans"
    assert plans == [_plans(again, a.name) for a in again.accounts], "drawn from the account's name"
    flat = fleet_scenario(SEED, 8, fill_delay_s=0, drop_last_fill_p=0)
    assert len({json.dumps(_plans(flat, a.name), default=str) for a in flat.accounts}) == 1
    dropped = fleet_scenario(SEED, 40, fill_delay_s=0, drop_last_fill_p=0.5)
    counts = [sum(len(f) for _, f, _ in _plans(dropped, a.name)) for a in dropped.accounts]
    assert max(counts) <= sum(len(p.fills) for p in SEED.parents)
    assert min(counts) < sum(len(p.fills) for p in SEED.parents), "some accounts lose a last fill"


def test_price_moves_leave_the_simulators_scenario_for_the_demos_timeline() -> None:
    fleet = fleet_scenario(SEED, 2)
    assert fleet.scenario.prices == []
    assert [(s, p) for _, s, p in fleet.price_moves] == [(m.symbol, m.price) for m in SEED.prices]
    expected = sorted(m.at_s / fleet.compression for m in SEED.prices)
    assert [at for at, _, _ in fleet.price_moves] == pytest.approx(expected, abs=0.001)
    assert fleet.scenario.start is None  # the simulator runs on the real clock, as the workers do


def test_the_scenario_file_is_what_the_simulator_validates() -> None:
    fleet = fleet_scenario(SEED, 3)
    served = parse_scenario(json.loads(scenario_text(fleet)), "file")
    assert [s.name for s in served.account_specs()] == [a.name for a in fleet.accounts]
    assert [p.parents for p in served.account_specs()] == [p.parents for p in fleet.scenario.account_specs()]


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ({"accounts": {"count": 2}}, "declares its own accounts"),
        ({"restarts": [{"at_s": 5}]}, "actions or restarts"),
        ({"market": {"calendar": True}}, "market calendar"),
        ({"parents": []}, "no parents"),
    ],
)
def test_what_a_real_time_run_on_many_accounts_cannot_play_is_refused(
    extra: dict[str, object], says: str
) -> None:
    data = {**SEED.model_dump(mode="json", exclude_unset=True), **extra}
    with pytest.raises(UnsupportedFleetScenario, match=says):
        fleet_scenario(parse_scenario(data, "x"), 2)
