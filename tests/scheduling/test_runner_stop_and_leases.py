"""Stopping and dying runners as real processes (issue 14, item 3): a runner sent SIGTERM in
the middle of a large backlog exits within the bound and leaves nothing claimed behind it; a
runner killed with SIGKILL leaves its claims for one short lease only, and the next runner
finishes them without charging anything twice. That a live runner's heartbeat keeps its rows
is shown in process, in test_runner_crashes.py.
"""

from __future__ import annotations

import json
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.gateways.fake import ledger_summary
from app.models import Payment, ScheduledPayment
from tests.factories import Factory
from tests.scheduling.helpers import all_payments
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

BACKLOG = 200
CONCURRENCY = 8
# A slow gateway: every charge takes LATENCY seconds, within the gateway timeout.
LATENCY, GATEWAY_TIMEOUT = 1.5, 3.0
# SIGTERM must end the process once the charges in flight are done, and they are done within
# the gateway timeout; the margin is for recording them, handing back the rest and exiting on
# a loaded two-core machine. Charging the whole backlog instead would take more than
# (200 - 16) / 8 * 1.5 s = 34 s.
STOP_BOUND = GATEWAY_TIMEOUT + 12.0
LEASE_SECONDS = 10  # the shortest BILLING_SCHEDULER_LEASE_SECONDS allows


def logged_runs(stderr: str) -> list[dict[str, Any]]:
    """The "scheduler run" records the looping runner logged (JSON lines on stderr)."""
    records = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    return [r for r in records if r.get("msg") == "scheduler run"]


async def test_sigterm_in_a_large_backlog_exits_within_the_bound_and_hands_back_the_unstarted(
    factory: Factory,
    client: AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    database_url: str,
    tmp_path: Path,
    spawn: Spawner,
) -> None:
    due = await make_due_payments(factory, client, sessionmaker, BACKLOG)
    ledger = fresh_ledger(tmp_path)
    slow = cli_env(
        database_url,
        tmp_path,
        BILLING_FAKE_GATEWAY_LATENCY_SECONDS=str(LATENCY),
        BILLING_GATEWAY_TIMEOUT_SECONDS=str(GATEWAY_TIMEOUT),
        BILLING_SCHEDULER_BATCH_SIZE="50",
        BILLING_SCHEDULER_CONCURRENCY=str(CONCURRENCY),
    )
    runner = await spawn.start(slow, "run-scheduler", "--interval", "60")

    # Stop it once a first round is charged and the next one is at the gateway.
    def first_round_charged() -> bool:
        return ledger_summary(str(ledger))["charges"] >= CONCURRENCY

    async def at_the_gateway() -> list[Payment]:
        async with sessionmaker() as session:
            pending = select(Payment).where(Payment.status == "pending")
            return list((await session.execute(pending)).scalars())

    await poll(first_round_charged, within=60, what="a first round of charges")
    in_flight = await poll(at_the_gateway, within=60, what="the next charges in flight")
    runner.process.send_signal(signal.SIGTERM)
    code, stdout, stderr = await runner.finish(within=STOP_BOUND)

    assert code == 0, stderr[-3000:]
    assert stdout.rstrip().endswith("scheduler stopped")
    assert "Traceback" not in stderr
    (run,) = logged_runs(stderr)
    rows = await scheduled_rows(sessionmaker)
    payments = await all_payments(sessionmaker)
    summary = ledger_summary(str(ledger))
    # Every attempt started was finished, the ones at the gateway at SIGTERM included: no
    # payment is left pending, no row processing.
    assert {p.id for p in in_flight} <= {p.id for p in payments}
    assert {p.status for p in payments} == {"succeeded"}
    charged = [r for r in rows.values() if r.status == "succeeded"]
    waiting = [r for r in rows.values() if r.status == "scheduled"]
    assert len(charged) + len(waiting) == BACKLOG
    assert len(charged) == len(payments) == summary["charges"] == summary["calls"]
    # It stopped claiming, and every claim it had not started is due again at once with the
    # attempt not counted: exactly the claimed rows that are waiting again were handed back.
    assert run["claimed"] < BACKLOG, run
    assert run["succeeded"] == len(charged)
    assert run["handed_back"] > 0
    assert run["claimed"] == len(charged) + run["handed_back"]
    handed_back = [r for r in waiting if r.version > 1]  # claimed (+1) and handed back (+1)
    assert len(handed_back) == run["handed_back"]
    now = datetime.now(UTC)
    for row in waiting:
        assert (row.attempts, row.lease_expires_at, row.last_payment_id) == (0, None, None)
        assert row.next_attempt_at <= now

    # The next run charges the rest, each once.
    quick = cli_env(database_url, tmp_path, BILLING_FAKE_GATEWAY_LATENCY_SECONDS="0")
    rerun = await spawn.start(quick, "run-scheduler", "--once")
    code, stdout, stderr = await rerun.finish()

    assert code == 0, stderr[-3000:]
    assert reported(stdout)["succeeded"] == len(waiting)
    assert ledger_summary(str(ledger))["calls"] == BACKLOG
    await assert_each_paid_exactly_once(sessionmaker, due, ledger)


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
    killed_at = datetime.now(UTC)
    code, _, _ = await doomed.finish()
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
