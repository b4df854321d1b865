"""One gateway rate limit for every runner: four `run-scheduler` processes at once, sharing a
Redis token bucket, never call the gateway faster than the cap (counted from the call times the
fake gateway's shared ledger records), and still charge each due payment once."""

from __future__ import annotations

import os
from pathlib import Path

from httpx import AsyncClient
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.gateways.factory import BUCKET_KEY_PREFIX
from app.gateways.fake import ledger_call_times
from tests.factories import Factory
from tests.scheduling.processes import (
    Spawner,
    assert_each_paid_exactly_once,
    cli_env,
    fresh_ledger,
    make_due_payments,
    reported,
)

REDIS_URL = os.environ.get("BILLING_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
RUNNERS, DUE = 4, 40
RATE, BURST = 10.0, 2
# Calls are timed where they reach the gateway, a few milliseconds after the bucket granted
# them, and that delay varies: a window may look this much shorter than the grants were apart.
ARRIVAL_JITTER = 0.1


def most_in_any_window(times: list[float]) -> float:
    """The worst excess over the cap: for every window between two calls, how many calls it
    holds beyond `RATE * its length + BURST` (≤ 0 when the cap held everywhere)."""
    worst = float("-inf")
    for i, start in enumerate(times):
        for j in range(i, len(times)):
            calls = j - i + 1
            allowed = RATE * (times[j] - start + ARRIVAL_JITTER) + BURST
            worst = max(worst, calls - allowed)
    return worst


async def test_four_runners_together_keep_to_the_gateways_rate_limit(
    factory: Factory,
    client: AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    database_url: str,
    tmp_path: Path,
    spawn: Spawner,
) -> None:
    due = await make_due_payments(factory, client, sessionmaker, DUE)
    ledger = fresh_ledger(tmp_path)
    redis = Redis.from_url(REDIS_URL)
    await redis.delete(BUCKET_KEY_PREFIX + "fake")  # a full bucket, whatever ran before
    await redis.aclose()
    env = cli_env(
        database_url,
        tmp_path,
        BILLING_REDIS_URL=REDIS_URL,
        BILLING_GATEWAY_RATE_LIMIT_PER_SECOND=str(RATE),
        BILLING_GATEWAY_RATE_LIMIT_BURST=str(BURST),
        BILLING_PENDING_RECONCILE_AFTER_SECONDS="60",
        BILLING_SCHEDULER_BATCH_SIZE="4",
        BILLING_SCHEDULER_CONCURRENCY="1" if database_url.startswith("sqlite") else "4",
    )

    runners = await spawn.start_together(RUNNERS, env, "run-scheduler", "--once")
    results = [await r.finish() for r in runners]

    for code, _, stderr in results:
        assert code == 0, stderr[-3000:]
    reports = [reported(stdout) for _, stdout, _ in results]
    assert sum(r["succeeded"] for r in reports) == DUE, reports
    times = sorted(ledger_call_times(str(ledger)))
    assert len(times) == DUE
    # The cap held in every window ...
    assert most_in_any_window(times) <= 0
    # ... so the calls spread over at least what the cap allows for them.
    assert times[-1] - times[0] >= (DUE - BURST - 1) / RATE
    await assert_each_paid_exactly_once(sessionmaker, due, ledger)
