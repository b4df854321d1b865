"""`billing-portal run-scheduler` as real processes: several runners let go at the same moment
over one queue, and the looping runner's clean stop on SIGTERM (see processes.py)."""

from __future__ import annotations

import re
import signal
from pathlib import Path

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.gateways.fake import ledger_summary
from tests.factories import Factory
from tests.scheduling.processes import (
    Spawner,
    assert_each_paid_exactly_once,
    cli_env,
    fresh_ledger,
    make_due_payments,
    poll,
    reported,
    statuses,
)

# Enough due payments that every runner has batches to claim while the others claim theirs;
# few enough that the test is about claiming against each other, not about throughput (that
# is bench/runner_throughput.py's business).
RUNNERS, DUE = 3, 60


async def test_several_runners_at_once_charge_each_due_payment_exactly_once(
    factory: Factory,
    client: AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    database_url: str,
    tmp_path: Path,
    spawn: Spawner,
) -> None:
    due = await make_due_payments(factory, client, sessionmaker, DUE)
    ledger = fresh_ledger(tmp_path)
    env = cli_env(
        database_url,
        tmp_path,
        # Reconciliation waits its usual minute here: run at once, a runner would also
        # settle (so call the gateway again for) payments another runner is still charging.
        BILLING_PENDING_RECONCILE_AFTER_SECONDS="60",
        # Small batches, so the queue is shared out in many claims made against each other.
        BILLING_SCHEDULER_BATCH_SIZE="4",
        # SQLite has one writer at a time: more attempts in flight per process only queue
        # on its lock. The processes still claim against each other all the same.
        BILLING_SCHEDULER_CONCURRENCY="1" if database_url.startswith("sqlite") else "4",
    )

    runners = await spawn.start_together(RUNNERS, env, "run-scheduler", "--once")
    results = [await r.finish() for r in runners]

    for code, _, stderr in results:
        assert code == 0, stderr[-3000:]
    reports = [reported(stdout) for _, stdout, _ in results]
    assert sum(r["claimed"] for r in reports) == DUE, reports
    # They really ran side by side: the work was shared.
    assert sum(1 for r in reports if r["claimed"]) >= 2, reports
    assert sum(r["succeeded"] for r in reports) == DUE, reports
    assert sum(r["errored"] for r in reports) == 0, reports
    summary = ledger_summary(str(ledger))
    # One gateway call per payment: no attempt was processed twice, not even to find the
    # same charge again.
    assert (summary["charges"], summary["calls"]) == (DUE, DUE), summary
    assert (await statuses(sessionmaker))["processing"] == 0
    await assert_each_paid_exactly_once(sessionmaker, due, ledger)


async def test_the_looping_runner_works_then_stops_cleanly_on_sigterm(
    factory: Factory,
    client: AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    database_url: str,
    tmp_path: Path,
    spawn: Spawner,
) -> None:
    due = await make_due_payments(factory, client, sessionmaker, 3, clients=1)
    ledger = fresh_ledger(tmp_path)
    looping = await spawn.start(
        cli_env(database_url, tmp_path), "run-scheduler", "--interval", "0.2"
    )

    async def all_paid() -> bool:
        return (await statuses(sessionmaker))["succeeded"] == 3

    await poll(all_paid, within=60, what="the looping runner to pay what is due")
    looping.process.send_signal(signal.SIGTERM)
    code, stdout, stderr = await looping.finish(within=10)

    assert code == 0, stderr[-3000:]
    assert "scheduler running" in stdout
    assert stdout.rstrip().endswith("scheduler stopped")
    # It logged what it did (JSON lines on stderr).
    assert re.search(r'"msg": "scheduler run".*"claimed": 3\b', stderr), stderr[-3000:]
    assert "Traceback" not in stderr
    await assert_each_paid_exactly_once(sessionmaker, due, ledger)
