"""The accounts' split between workers: complete, even, the same on every worker, and mostly stable."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from ordersync.fleet.assignment import assign, moved

names = st.text(alphabet="abcdefghij0123456789-", min_size=1, max_size=8)
accounts_st = st.lists(names, max_size=80, unique=True)
workers_st = st.lists(names.map(lambda n: f"w:{n}"), min_size=1, max_size=9, unique=True)


@given(accounts_st, workers_st)
def test_every_account_goes_to_exactly_one_live_worker_and_loads_differ_by_at_most_one(
    accounts: list[str], workers: list[str]
) -> None:
    placed = assign(accounts, workers)
    assert set(placed) == set(accounts)
    assert set(placed.values()) <= set(workers)
    loads = Counter(placed.values())
    counts = [loads.get(w, 0) for w in workers]
    assert max(counts) - min(counts) <= 1, counts


@given(accounts_st, workers_st, st.randoms())
def test_every_worker_computes_the_same_split_whatever_order_it_read_the_catalog_in(
    accounts: list[str], workers: list[str], rnd: object
) -> None:
    shuffled_a, shuffled_w = list(accounts), list(workers)
    rnd.shuffle(shuffled_a)  # type: ignore[attr-defined]
    rnd.shuffle(shuffled_w)  # type: ignore[attr-defined]
    assert assign(shuffled_a, shuffled_w) == assign(accounts, workers)


@given(accounts_st, workers_st.filter(lambda w: len(w) >= 2), st.data())
def test_a_dead_workers_accounts_all_move_and_only_to_live_workers(
    accounts: list[str], workers: list[str], data: st.DataObject
) -> None:
    dead = data.draw(st.sampled_from(workers))
    before = assign(accounts, workers)
    after = assign(accounts, [w for w in workers if w != dead])
    orphans = {a for a, w in before.items() if w == dead}
    assert orphans <= moved(before, after)
    assert dead not in after.values()


def test_no_worker_no_assignment() -> None:
    assert assign(["a", "b"], []) == {}


def test_fifty_accounts_on_four_workers_a_death_or_a_join_moves_a_share_not_everything() -> None:
    # rebalancing costs one lease handover per moved account: far from the 50 a reshuffle would move
    accounts = [f"acct-{i:03d}" for i in range(50)]
    four = assign(accounts, ["w1", "w2", "w3", "w4"])
    assert sorted(Counter(four.values()).values()) == [12, 12, 13, 13]
    after_death = assign(accounts, ["w1", "w2", "w3"])
    after_join = assign(accounts, ["w1", "w2", "w3", "w4", "w5"])
    orphans = sum(1 for w in four.values() if w == "w4")
    assert orphans <= len(moved(four, after_death)) <= 2 * orphans
    assert 10 <= len(moved(four, after_join)) <= 20
