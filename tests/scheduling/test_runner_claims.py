"""Claims: a runner takes at most a batch, the next claim the next rows, and several
runners at once charge each due payment once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.gateways.fake import FakeGateway
from app.models import Payment
from app.scheduler.runner import PaymentRunner
from tests.scheduling.helpers import (
    Scene,
    all_payments,
    many_scheduled_today,
    scheduled_row,
)


async def test_a_claim_takes_at_most_its_batch_and_the_next_claim_the_next_rows(
    scene: Scene,
    runner: PaymentRunner,
    runner_with: Callable[..., PaymentRunner],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await many_scheduled_today(scene, 12)
    other = runner_with()

    first = await runner.claim(5)
    second = await other.claim(5)
    third = await runner.claim(5)

    assert [len(first), len(second), len(third)] == [5, 5, 2]
    taken = [c.id for c in first + second + third]
    assert len(set(taken)) == 12
    assert all(c.attempt == 1 for c in first + second + third)
    assert await runner.claim(5) == []
    for sp_id in taken:
        assert (await scheduled_row(sessionmaker, sp_id)).status == "processing"


async def test_two_runners_at_once_charge_each_payment_once(
    scene: Scene,
    runner_with: Callable[..., PaymentRunner],
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    ids = await many_scheduled_today(scene, 12)
    runners = [runner_with(scheduler_batch_size=3, scheduler_concurrency=2) for _ in range(3)]

    reports = await asyncio.gather(*(r.run_once() for r in runners))

    assert sum(r.claimed for r in reports) == 12
    assert sum(r.succeeded for r in reports) == 12
    summary = gateway.summary()
    assert (summary["charges"], summary["calls"], summary["distinct_keys"]) == (12, 12, 12)
    for sp_id in ids:
        assert (await scheduled_row(sessionmaker, sp_id)).status == "succeeded"
    payments = await all_payments(sessionmaker)
    assert sorted(p.amount for p in payments) == [1_000 + n for n in range(12)]
    assert all(isinstance(p, Payment) and p.status == "succeeded" for p in payments)
