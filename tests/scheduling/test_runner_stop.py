"""Stopping a runner in process (what SIGTERM sets): whatever it is doing, in-flight gateway
calls finish and nothing new starts, so it stops within one gateway call. The same as real
processes, in test_runner_stop_and_leases.py."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import FrozenClock
from app.gateways.fake import FakeGateway
from app.payments.reconcile import DEFAULT_CONCURRENCY
from app.scheduler.runner import PaymentRunner
from tests.scheduling.helpers import (
    Scene,
    SlowGateway,
    all_payments,
    many_scheduled_today,
    scheduled_row,
)


async def test_a_stop_during_reconciliation_settles_only_what_is_in_flight(
    scene: Scene,
    runner: PaymentRunner,
    runner_with: Callable[..., PaymentRunner],
    gateway: FakeGateway,
    clock: FrozenClock,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """After a gateway outage a runner starts its run by settling a backlog of pending
    payments; a stop then must not wait for all of them."""
    count = DEFAULT_CONCURRENCY + 4
    ids = await many_scheduled_today(scene, count)
    gateway.fail_next(count, mode="timeout")
    assert (await runner.run_once()).pending == count
    clock.advance(seconds=60)  # old enough to be reconciled
    slow = SlowGateway(gateway)
    stopping = runner_with(via=slow)

    running = asyncio.create_task(stopping.run_once())
    await slow.until_charging(DEFAULT_CONCURRENCY)
    stopping.stop.set()
    slow.answer.set()
    report = await asyncio.wait_for(running, 10)

    # The settles in flight finished; none was started after the stop, and nothing claimed.
    assert (report.reconciled, report.claimed) == (DEFAULT_CONCURRENCY, 0)
    statuses = sorted(p.status for p in await all_payments(sessionmaker))
    assert statuses == ["pending"] * 4 + ["succeeded"] * DEFAULT_CONCURRENCY
    assert gateway.summary()["charges"] == DEFAULT_CONCURRENCY
    for sp_id in ids:
        assert (await scheduled_row(sessionmaker, sp_id)).status == "processing"
    # The next run carries on: every payment charged once.
    report = await runner.run_once()
    assert report.reconciled == 4
    assert {p.status for p in await all_payments(sessionmaker)} == {"succeeded"}
    assert gateway.summary()["charges"] == count
