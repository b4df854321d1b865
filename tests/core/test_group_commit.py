"""Group commit: items handed in at one moment are done in one round; items arriving while a
round runs wait for the next; a round's failure reaches every item of it, and only those."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from app.core.group_commit import GroupCommit


class Rounds:
    """A round that records its items, and can be held open or made to fail."""

    def __init__(self) -> None:
        self.seen: list[list[int]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.started = asyncio.Event()
        self.fail_on: set[int] = set()

    async def run(self, items: Sequence[int]) -> list[str]:
        self.seen.append(list(items))
        self.started.set()
        await self.gate.wait()
        if self.fail_on & set(items):
            raise RuntimeError(f"round {len(self.seen)} failed")
        return [f"done {item}" for item in items]


async def test_items_handed_in_together_are_one_round_each_with_its_own_result() -> None:
    rounds = Rounds()
    group = GroupCommit(rounds.run, max_size=10)

    results = await asyncio.gather(*(group.submit(n) for n in range(5)))

    assert results == [f"done {n}" for n in range(5)]
    assert rounds.seen == [[0, 1, 2, 3, 4]]


async def test_items_arriving_during_a_round_wait_for_the_next_one() -> None:
    rounds = Rounds()
    rounds.gate.clear()
    group = GroupCommit(rounds.run, max_size=10)
    first = [asyncio.create_task(group.submit(n)) for n in range(3)]
    await rounds.started.wait()
    later = [asyncio.create_task(group.submit(n)) for n in range(3, 6)]
    await asyncio.sleep(0)
    assert rounds.seen == [[0, 1, 2]]

    rounds.gate.set()

    assert await asyncio.gather(*first, *later) == [f"done {n}" for n in range(6)]
    assert rounds.seen == [[0, 1, 2], [3, 4, 5]]


async def test_a_round_takes_at_most_max_size_items() -> None:
    rounds = Rounds()
    group = GroupCommit(rounds.run, max_size=2)

    await asyncio.gather(*(group.submit(n) for n in range(5)))

    assert rounds.seen == [[0, 1], [2, 3], [4]]


async def test_a_failed_round_fails_its_own_items_and_the_next_round_runs() -> None:
    rounds = Rounds()
    rounds.fail_on = {1}
    group = GroupCommit(rounds.run, max_size=2)

    results = await asyncio.gather(*(group.submit(n) for n in range(4)), return_exceptions=True)

    assert [type(r) for r in results[:2]] == [RuntimeError, RuntimeError]
    assert results[2:] == ["done 2", "done 3"]
    assert rounds.seen == [[0, 1], [2, 3]]


async def test_a_new_round_starts_after_the_last_one_ended() -> None:
    rounds = Rounds()
    group = GroupCommit(rounds.run, max_size=10)

    assert await group.submit(1) == "done 1"
    assert await group.submit(2) == "done 2"

    assert rounds.seen == [[1], [2]]


async def test_a_cancelled_round_cancels_its_callers() -> None:
    rounds = Rounds()
    rounds.gate.clear()
    group = GroupCommit(rounds.run, max_size=10)
    waiting = asyncio.create_task(group.submit(1))
    await rounds.started.wait()
    assert group._rounds is not None

    group._rounds.cancel()

    with pytest.raises(asyncio.CancelledError):
        await waiting
