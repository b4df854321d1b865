"""`Worker` (app/core/work_queue.py) with a kind of work made for the test, in process and
without a database: every item blocks until the test releases it, and the heartbeat beats
when the test says so, so each step is driven by events, never by sleeping."""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from app.core.work_queue import DrainReport, Worker
from tests.core.heartbeat import Heartbeat, beaten_by_hand

# How long a step may take before the test gives up on a worker that never gets there. Not a
# measurement: on time, every step happens in a few event-loop turns.
STUCK = 10.0
HEARTBEAT = 60.0  # beaten by hand (tests/core/heartbeat.py): never waited out


@dataclass(frozen=True)
class ClaimCall:
    limit: int
    got: list[int]
    in_flight: int  # items running when the claim was made
    waiting: int  # items claimed before and not started yet
    finished: int  # items finished before the claim


class Items:
    """A queue of `count` numbered items as a `WorkKind`: it records every call, and each item
    runs until `release(item)`; items in `failing` then raise instead of finishing."""

    name = "test-items"

    def __init__(self, count: int, *, failing: frozenset[int] = frozenset()) -> None:
        self.due = deque(range(count))
        self.failing = failing
        self.gates = {item: asyncio.Event() for item in range(count)}
        self.claim_gate: asyncio.Event | None = None  # when set to an unset event, claims wait
        self.claiming = 0  # claim calls begun
        self.renew_error: Exception | None = None  # raised by every renewal when set
        self.claims: list[ClaimCall] = []
        self.started: list[int] = []
        self.running: list[int] = []
        self.finished: list[int] = []
        self.renewals: list[list[int]] = []
        self.handed_back: list[list[int]] = []
        self.max_in_flight = 0
        self.changed = asyncio.Condition()

    async def claim(self, limit: int) -> list[int]:
        self.claiming += 1
        await self.notify()
        # A claim is a round trip to the database: items the worker started before it begin
        # to run meanwhile, so `in_flight` below counts them.
        await asyncio.sleep(0)
        if self.claim_gate is not None:
            await self.claim_gate.wait()
        got = [self.due.popleft() for _ in range(min(limit, len(self.due)))]
        claimed_before = sum(len(c.got) for c in self.claims)
        waiting = claimed_before - len(self.started)
        self.claims.append(ClaimCall(limit, got, len(self.running), waiting, len(self.finished)))
        await self.notify()
        return got

    async def renew(self, claims: list[int]) -> None:
        self.renewals.append(list(claims))
        await self.notify()
        if self.renew_error is not None:
            raise self.renew_error

    async def hand_back(self, claims: list[int]) -> None:
        self.handed_back.append(list(claims))
        await self.notify()

    async def process(self, claim: int) -> str:
        self.started.append(claim)
        self.running.append(claim)
        self.max_in_flight = max(self.max_in_flight, len(self.running))
        await self.notify()
        try:
            await self.gates[claim].wait()
            if claim in self.failing:
                raise RuntimeError(f"item {claim} broke")
            return "done"
        finally:
            self.running.remove(claim)
            self.finished.append(claim)
            await self.notify()

    def release(self, *items: int) -> None:
        for item in items:
            self.gates[item].set()

    async def until(self, what: str, condition: Callable[[], bool]) -> None:
        """Wait (driven by the kind's own calls) until `condition()` holds."""
        try:
            async with asyncio.timeout(STUCK), self.changed:
                await self.changed.wait_for(condition)
        except TimeoutError:
            pytest.fail(f"the worker never got to: {what} (running {self.running}, {self})")

    async def until_running(self, *expected: int) -> None:
        """Until exactly these items run, in the order they started."""
        await self.until(f"{list(expected)} running", lambda: self.running == list(expected))

    async def notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    def __repr__(self) -> str:
        return (
            f"claims={self.claims} started={self.started} finished={self.finished} "
            f"renewals={self.renewals} handed_back={self.handed_back}"
        )


class Beats:
    """The worker's heartbeat, beaten by hand: `await beats.beat()` lets one renewal happen
    and returns the items the kind was asked to renew."""

    def __init__(self, items: Items, heart: Heartbeat) -> None:
        self.items = items
        self.heart = heart

    async def beat(self) -> list[int]:
        before = len(self.items.renewals)
        self.heart.beat()
        await self.items.until("a renewal", lambda: len(self.items.renewals) > before)
        return self.items.renewals[-1]


@pytest.fixture
def beats(monkeypatch: pytest.MonkeyPatch) -> Callable[[Items], Beats]:
    heart = beaten_by_hand(monkeypatch, HEARTBEAT)
    return lambda items: Beats(items, heart)


@pytest.fixture
async def draining() -> AsyncIterator[Callable[[Worker[int]], asyncio.Task[DrainReport]]]:
    """Starts `worker.drain()` as a task; one the test left running is cancelled at its end."""
    tasks: list[asyncio.Task[DrainReport]] = []

    def start(worker: Worker[int]) -> asyncio.Task[DrainReport]:
        tasks.append(asyncio.create_task(worker.drain()))
        return tasks[-1]

    yield start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def finished(task: asyncio.Task[DrainReport]) -> DrainReport:
    async with asyncio.timeout(STUCK):
        return await task


def worker(
    items: Items, *, batch_size: int, concurrency: int, stop: asyncio.Event | None = None
) -> Worker[int]:
    return Worker(
        items,
        batch_size=batch_size,
        concurrency=concurrency,
        heartbeat_seconds=HEARTBEAT,
        stop=stop,
    )


@pytest.mark.parametrize("batch_size", [1, 2, 3, 4, 50])
async def test_concurrency_items_stay_in_flight_across_batch_boundaries(
    beats: Callable[[Items], Beats],
    draining: Callable[[Worker[int]], asyncio.Task[DrainReport]],
    batch_size: int,
) -> None:
    """Batches smaller than, equal to and larger than the concurrency: each time an item
    finishes, the next one is already claimed and starts in its place."""
    count, concurrency = 11, 3
    items = Items(count)
    beats(items)
    task = draining(worker(items, batch_size=batch_size, concurrency=concurrency))

    for done in range(count):
        full = min(concurrency, count - done)

        def refilled(done: int = done, full: int = full) -> bool:
            # ... and the worker is between claims: an item released during a claim could
            # only take its slot back once the claim has returned.
            idle = items.claiming == len(items.claims)
            return len(items.finished) == done and len(items.running) == full and idle

        await items.until(f"{full} in flight after {done} finished", refilled)
        items.release(items.running[0])
    report = await finished(task)

    assert items.max_in_flight == concurrency
    assert items.started == list(range(count))
    assert report.claimed == count and report.outcomes == Counter({"done": count})
    assert report.handed_back == 0 and items.handed_back == []
    # Every claim asked for a batch. Once the first item had finished, every next batch was
    # claimed while all slots were busy and claimed items still waited: no item ever waited
    # for a claim to start.
    assert {c.limit for c in items.claims} == {batch_size}
    refills = [c for c in items.claims if c.finished]
    assert refills, items.claims
    assert all(c.in_flight == concurrency and c.waiting for c in refills), items.claims
    # It stopped claiming once a claim came back empty, and not before.
    assert items.claims[-1].got == [] and all(c.got for c in items.claims[:-1])


async def test_the_heartbeat_renews_every_held_item_running_or_waiting(
    beats: Callable[[Items], Beats],
    draining: Callable[[Worker[int]], asyncio.Task[DrainReport]],
) -> None:
    items = Items(5)
    heart = beats(items)
    task = draining(worker(items, batch_size=5, concurrency=2))
    await items.until_running(0, 1)

    assert sorted(await heart.beat()) == [0, 1, 2, 3, 4]  # two running, three claimed
    items.release(0)
    await items.until_running(1, 2)
    assert sorted(await heart.beat()) == [1, 2, 3, 4]  # a finished item is not held
    items.release(1)
    await items.until_running(2, 3)
    assert sorted(await heart.beat()) == [2, 3, 4]
    items.release(2)
    await items.until_running(3, 4)
    assert sorted(await heart.beat()) == [3, 4]  # nothing waits any more: the running only

    items.release(3, 4)
    report = await finished(task)
    assert report.outcomes == Counter({"done": 5})


async def test_on_stop_it_claims_nothing_more_finishes_what_runs_and_hands_back_the_rest(
    beats: Callable[[Items], Beats],
    draining: Callable[[Worker[int]], asyncio.Task[DrainReport]],
) -> None:
    items = Items(12)
    beats(items)
    stop = asyncio.Event()
    task = draining(worker(items, batch_size=5, concurrency=2, stop=stop))
    for item in range(3):
        await items.until_running(item, item + 1)
        items.release(item)
    await items.until_running(3, 4)
    await items.until("a second batch", lambda: len(items.claims) == 2)
    claimed = [item for call in items.claims for item in call.got]
    assert claimed == list(range(10))

    stop.set()
    items.release(3)  # a slot comes free after the stop: nothing new starts in it
    await items.until("3 finished", lambda: items.finished == [0, 1, 2, 3])
    assert not task.done(), "the worker must wait for the item still running"
    items.release(4)
    report = await finished(task)

    assert items.started == [0, 1, 2, 3, 4]
    assert items.finished == [0, 1, 2, 3, 4]
    assert report.outcomes == Counter({"done": 5})
    # Exactly the claimed items that never started, once, and nothing was claimed after
    # the stop.
    assert items.handed_back == [[5, 6, 7, 8, 9]]
    assert (report.claimed, report.handed_back) == (10, 5)
    assert len(items.claims) == 2
    assert list(items.due) == [10, 11]


async def test_a_stop_during_a_claim_hands_that_batch_back_unstarted(
    beats: Callable[[Items], Beats],
    draining: Callable[[Worker[int]], asyncio.Task[DrainReport]],
) -> None:
    items = Items(6)
    beats(items)
    items.claim_gate = asyncio.Event()
    stop = asyncio.Event()
    task = draining(worker(items, batch_size=4, concurrency=2, stop=stop))
    await items.until("the first claim begun", lambda: items.claiming == 1)

    stop.set()
    items.claim_gate.set()
    report = await finished(task)

    assert items.started == []
    assert items.handed_back == [[0, 1, 2, 3]]
    assert (report.claimed, report.handed_back, len(items.claims)) == (4, 4, 1)


async def test_one_items_exception_is_counted_errored_and_the_others_go_on(
    beats: Callable[[Items], Beats],
    draining: Callable[[Worker[int]], asyncio.Task[DrainReport]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    items = Items(6, failing=frozenset({1}))
    beats(items)
    items.release(*range(6))

    report = await finished(draining(worker(items, batch_size=2, concurrency=2)))

    assert report.outcomes == Counter({"done": 5, "errored": 1})
    assert sorted(items.finished) == list(range(6))
    # The broken item is neither retried nor handed back: its lease lapses, and the kind's
    # idempotency makes the next worker's try harmless.
    assert items.started.count(1) == 1
    assert items.handed_back == [] and report.handed_back == 0
    (record,) = [r for r in caplog.records if r.name == "billing_portal.work"]
    assert "failed unexpectedly" in record.getMessage()
    assert record.exc_info is not None and "item 1 broke" in str(record.exc_info[1])


async def test_a_failed_renewal_is_logged_and_the_work_goes_on(
    beats: Callable[[Items], Beats],
    draining: Callable[[Worker[int]], asyncio.Task[DrainReport]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    items = Items(2)
    heart = beats(items)
    items.renew_error = ConnectionError("the database went away")
    task = draining(worker(items, batch_size=2, concurrency=2))
    await items.until_running(0, 1)

    assert sorted(await heart.beat()) == [0, 1]
    assert sorted(await heart.beat()) == [0, 1]  # the heartbeat goes on after a failure
    items.release(0, 1)
    report = await finished(task)

    assert report.outcomes == Counter({"done": 2})
    assert [r.getMessage() for r in caplog.records if r.name == "billing_portal.work"] == [
        "renewing leases failed",
        "renewing leases failed",
    ]


async def test_nothing_due_is_one_empty_claim(
    beats: Callable[[Items], Beats],
    draining: Callable[[Worker[int]], asyncio.Task[DrainReport]],
) -> None:
    items = Items(0)
    beats(items)

    report = await finished(draining(worker(items, batch_size=5, concurrency=3)))

    assert (report.claimed, report.handed_back, report.outcomes) == (0, 0, Counter())
    assert [c.got for c in items.claims] == [[]]
    assert items.handed_back == [] and items.renewals == []
