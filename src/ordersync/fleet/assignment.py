"""Which worker runs which account: an even split that every worker computes alone, the same way.

Workers never talk to each other. Each one reads the same two lists from the catalog (enabled accounts, live
workers) and runs this function; they agree because it is deterministic. An account's preference order over
workers comes from rendezvous hashing (the highest ``hash(account, worker)`` first), so a worker that joins or
dies moves only a share of the accounts, not a reshuffle of all of them. Loads are kept even (every worker
gets ``floor(N / W)`` or one more): a hash alone leaves one worker with twice another's accounts at 50 / 4.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping

__all__ = ["assign", "moved"]


def _score(account: str, worker: str) -> int:
    digest = hashlib.blake2b(f"{account}\x00{worker}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _ranked(account: str, workers: list[str]) -> list[str]:
    return sorted(workers, key=lambda w: (_score(account, w), w), reverse=True)


def assign(accounts: Collection[str], workers: Collection[str]) -> dict[str, str]:
    """Map every account to one worker; every worker gets ``floor(N/W)`` or ``floor(N/W) + 1`` accounts.

    Two rounds over the accounts, in hash order: the first fills each worker up to the floor with the
    accounts that rank it highest, the second places the remainder, at most one more per worker. No live
    worker: nothing is assigned (the accounts wait, their leases expire, nobody acts on them)."""
    pool = sorted(set(workers))
    if not pool:
        return {}
    order = sorted(set(accounts), key=lambda a: (_score(a, ""), a))
    floor = len(order) // len(pool)
    load = dict.fromkeys(pool, 0)
    placed: dict[str, str] = {}
    for cap in (floor, floor + 1):
        for account in order:
            if account in placed:
                continue
            for worker in _ranked(account, pool):
                if load[worker] < cap:
                    placed[account] = worker
                    load[worker] += 1
                    break
    return placed


def moved(before: Mapping[str, str], after: Mapping[str, str]) -> set[str]:
    """The accounts whose worker changed (or that appeared or went): each costs one lease handover."""
    return {a for a in before.keys() | after.keys() if before.get(a) != after.get(a)}
