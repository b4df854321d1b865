"""A deliverer that dies between claiming and recording: its claim comes back when the lease
lapses, and the delivery goes out once more, never zero times."""

from __future__ import annotations

import asyncio

from app.core.clock import FrozenClock
from tests.webhooks.helpers import Hooks, names_of, verified
from tests.webhooks.receiver import Answer, Receiver


async def test_a_claim_taken_and_dropped_is_delivered_after_its_lease(
    hooks: Hooks, receiver: Receiver, clock: FrozenClock
) -> None:
    endpoint = await hooks.create_endpoint(receiver.url(), event_types=["client.created"])
    await hooks.new_client("Globex")
    dying = hooks.deliverer()
    (claim,) = await dying.work.claim(10)  # ... and the process is gone before sending

    # Still its own while the lease runs: nobody sends it, nobody sends what follows it.
    await hooks.new_client("Initech")
    assert (await hooks.deliverer().run_once()).claimed == 0
    clock.advance(seconds=hooks.settings.webhooks_lease_seconds - 1)
    assert (await hooks.deliverer().run_once()).claimed == 0
    assert receiver.received == []

    clock.advance(seconds=1)
    report = await hooks.deliverer().run_once()

    assert report.outcomes == {"succeeded": 2}
    assert names_of(receiver.received) == ["Globex", "Initech"]
    rows = await hooks.rows(endpoint["id"])
    assert [(r.status, r.attempt) for r in rows] == [("succeeded", 2), ("succeeded", 1)]
    # The dead deliverer's claim is no longer its own: recording it now changes nothing.
    from app.core.db import transaction
    from app.webhooks.delivery import record_attempt
    from app.webhooks.sender import AttemptResult

    async with transaction(hooks.sessionmaker) as session:
        assert await record_attempt(session, claim, AttemptResult(500, 1)) == "skipped"
    assert [r.status for r in await hooks.rows(endpoint["id"])] == ["succeeded", "succeeded"]


async def test_a_delivery_sent_but_not_recorded_is_sent_once_more(
    hooks: Hooks, receiver: Receiver, clock: FrozenClock
) -> None:
    endpoint = await hooks.create_endpoint(receiver.url(), event_types=["client.created"])
    await hooks.new_client("Globex")
    receiver.answer(Answer(200, delay=0.3))
    dying = hooks.deliverer()
    (claim,) = await dying.work.claim(10)
    sending = asyncio.create_task(dying.work.process(claim))
    for _ in range(1000):  # it reached the receiver (bounded: 10 s at most) ...
        if receiver.received:
            break
        await asyncio.sleep(0.01)
    assert receiver.received
    sending.cancel()  # ... and died before the answer was recorded
    await asyncio.gather(sending, return_exceptions=True)
    [row] = await hooks.rows(endpoint["id"])
    assert (row.status, row.attempt) == ("pending", 1)

    clock.advance(seconds=hooks.settings.webhooks_lease_seconds)
    assert (await hooks.deliverer().run_once()).outcomes == {"succeeded": 1}

    # Twice, the same event: the receiver tells the repeat by its webhook-id.
    first, second = receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    verified(endpoint["secret"], second)
    [row] = await hooks.rows(endpoint["id"])
    assert (row.status, row.attempt) == ("succeeded", 2)


async def test_a_stopping_deliverer_hands_back_what_it_has_not_started(
    hooks: Hooks, receiver: Receiver
) -> None:
    for index in range(3):
        await hooks.create_endpoint(receiver.url(f"/{index}"), event_types=["client.created"])
    await hooks.new_client("Globex")
    deliverer = hooks.deliverer()
    claims = await deliverer.work.claim(10)
    assert len(claims) == 3
    await deliverer.work.hand_back(claims)

    report = await hooks.deliverer().run_once()

    assert report.outcomes == {"succeeded": 3}
    assert sorted(r.path for r in receiver.received) == ["/0", "/1", "/2"]
