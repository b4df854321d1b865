"""Dying runners as real processes (issue 14, item 3): a runner killed with SIGKILL leaves
its claims for one short lease only, and the next runner finishes them without charging
anything twice."""

from __future__ import annotations

import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.gateways.fake import ledger_summary
from app.models import ScheduledPayment
from tests.factories import Factory
from tests.scheduling.processes import (
    Spawner,
    assert_each_paid_exactly_once,
    cli_env,
    fresh_ledger,
    make_due_payments,
    poll,
    reported,
    scheduled_rows,
    statuses,
)

LEASE_SECONDS = 10  # the shortest BILLING_SCHEDULER_LEASE_SECONDS allows


async def test_a_killed_runners_work_is_finished_by_the_next_run_without_double_charges(
    factory: Factory,
    client: AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    database_url: str,
    tmp_path: Path,
    spawn: Spawner,
) -> None:
    due = await make_due_payments(factory, client, sessionmaker, 40, clients=2)
    ledger = fresh_ledger(tmp_path)
    slow = cli_env(
        database_url,
        tmp_path,
        BILLING_FAKE_GATEWAY_LATENCY_SECONDS="0.05",
        BILLING_SCHEDULER_BATCH_SIZE="5",
        BILLING_SCHEDULER_CONCURRENCY="1",
        BILLING_SCHEDULER_LEASE_SECONDS=str(LEASE_SECONDS),
    )
    doomed = await spawn.start(slow, "run-scheduler", "--once")

    # Batches of 5, one payment at a time, 50 ms at the gateway each: with 1 to 3 of a
    # batch charged, the rest of it stays claimed for at least another 100 ms. Kill it then.
    def mid_batch() -> bool:
        charges = ledger_summary(str(ledger))["charges"]
        return charges >= 3 and charges % 5 in (1, 2, 3)

    await poll(mid_batch, within=60, what="the runner to be part-way through a batch")
    doomed.process.send_signal(signal.SIGKILL)
    code, _, _ = await doomed.finish()
    killed_at = datetime.now(UTC)
    assert code == -signal.SIGKILL

    left = await statuses(sessionmaker)
    assert left["processing"] >= 1, left
    assert left["succeeded"] < 40, left
    # What it held is its own for one short lease at most (claimed or renewed before it
    # died), not for five minutes ...
    abandoned = [
        r for r in (await scheduled_rows(sessionmaker)).values() if r.status == "processing"
    ]
    for row in abandoned:
        assert row.lease_expires_at is not None
        assert killed_at < row.lease_expires_at <= killed_at + timedelta(seconds=LEASE_SECONDS)
    # ... so once that lease has passed, which the database is told instead of the test
    # waiting for it, the next runner takes the rows back.
    async with sessionmaker() as session, session.begin():
        for row in await session.scalars(
            select(ScheduledPayment).where(ScheduledPayment.status == "processing")
        ):
            assert row.lease_expires_at is not None
            row.lease_expires_at -= timedelta(seconds=LEASE_SECONDS)

    rerun = await spawn.start(
        cli_env(database_url, tmp_path, BILLING_SCHEDULER_BATCH_SIZE="5"), "run-scheduler", "--once"
    )
    code, stdout, stderr = await rerun.finish()

    assert code == 0, stderr[-3000:]
    assert reported(stdout)["succeeded"] + left["succeeded"] == 40
    assert (await statuses(sessionmaker))["processing"] == 0
    # Each payment charged once: a charge the dead runner made was found again through its
    # idempotency key, not made a second time.
    await assert_each_paid_exactly_once(sessionmaker, due, ledger)
