"""`billing-portal deliver-webhooks` as real processes on the suite's database (PostgreSQL's
FOR UPDATE SKIP LOCKED in CI's PostgreSQL run): several at once deliver each event once and in
order per endpoint; one killed mid-send leaves its claim to come back after the lease."""

from __future__ import annotations

import asyncio
import signal
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from httpx import AsyncClient

from app.cli import PROJECT_ROOT
from app.core.clock import FrozenClock
from app.core.config import Settings
from app.scheduler.runner import PaymentRunner
from tests.conftest import TEST_JWT_SECRET
from tests.factories import Factory
from tests.scheduling.processes import cli_env
from tests.webhooks.helpers import Hooks, names_of, verified
from tests.webhooks.receiver import Answer, Receiver

RUN_TIMEOUT = 120.0


@pytest.fixture
async def live(
    factory: Factory, client: AsyncClient, webhook_settings: Settings, app: Any
) -> Hooks:
    """As `hooks`, on the real clock (the processes run on it)."""
    tenant = await factory.tenant()
    staff = await factory.staff(tenant)
    return Hooks(client, factory, staff.user, webhook_settings, app.state.sessionmaker)


def deliverer_env(database_url: str, workdir: Path, **overrides: str) -> dict[str, str]:
    """The runner tests' environment, with the key the endpoints' secrets were sealed with
    (derived from the suite's JWT key) and loopback receivers allowed."""
    return cli_env(
        database_url,
        workdir,
        BILLING_JWT_SECRET=TEST_JWT_SECRET,
        BILLING_WEBHOOKS_ALLOW_PRIVATE_URLS="true",
        BILLING_WEBHOOKS_CONCURRENCY="4",
        BILLING_LOG_LEVEL="WARNING",
        **overrides,
    )


async def start(env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.cli",
        "deliver-webhooks",
        *args,
        cwd=str(PROJECT_ROOT),
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_several_deliverers_at_once_deliver_each_event_once_in_order(
    live: Hooks, receiver: Receiver, database_url: str, tmp_path: Path
) -> None:
    endpoints = [
        await live.create_endpoint(receiver.url(f"/{n}"), event_types=["client.created"])
        for n in range(4)
    ]
    names = [f"Client {n:02d}" for n in range(15)]
    for name in names:
        await live.new_client(name)

    env = deliverer_env(database_url, tmp_path)
    processes = [await start(env, "--once") for _ in range(3)]
    outputs = await asyncio.wait_for(
        asyncio.gather(*(p.communicate() for p in processes)), RUN_TIMEOUT
    )
    for process, (stdout, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr.decode()
        assert stdout.decode().startswith("webhooks: ")

    for endpoint, n in zip(endpoints, range(4), strict=True):
        arrived = [r for r in receiver.received if r.path == f"/{n}"]
        assert names_of(arrived) == names  # each once, in order
        for request in arrived:
            verified(endpoint["secret"], request)
        rows = await live.rows(endpoint["id"])
        assert {(r.status, r.attempt) for r in rows} == {("succeeded", 1)}
    assert len(receiver.received) == 4 * len(names)


async def test_a_killed_deliverers_claim_comes_back(
    live: Hooks, receiver: Receiver, database_url: str, tmp_path: Path
) -> None:
    endpoint = await live.create_endpoint(receiver.url(), event_types=["client.created"])
    await live.new_client("Globex")
    receiver.answer(Answer(200, delay=30))  # it hangs until the deliverer is killed
    env = deliverer_env(
        database_url,
        tmp_path,
        BILLING_WEBHOOKS_LEASE_SECONDS="5",
        BILLING_WEBHOOKS_TIMEOUT_SECONDS="60",
    )
    process = await start(env)
    try:
        for _ in range(int(RUN_TIMEOUT * 100)):
            if receiver.received:
                break
            await asyncio.sleep(0.01)
        assert receiver.received, "the deliverer never sent"
    finally:
        process.send_signal(signal.SIGKILL)
        await process.communicate()
    [row] = await live.rows(endpoint["id"])
    assert (row.status, row.attempt) == ("pending", 1)
    assert row.lease_expires_at is not None

    # Once its lease has lapsed another deliverer takes it: sent once more, never lost.
    with FrozenClock(row.lease_expires_at + timedelta(seconds=1)):
        report = await live.deliverer().run_once()
    assert report.outcomes == {"succeeded": 1}
    first, second = receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    [row] = await live.rows(endpoint["id"])
    assert (row.status, row.attempt) == ("succeeded", 2)


async def test_the_scheduler_delivers_webhooks_too(
    live: Hooks, receiver: Receiver, app: Any
) -> None:
    endpoint = await live.create_endpoint(receiver.url(), event_types=["client.created"])
    await live.new_client("Globex")

    report = await PaymentRunner(live.sessionmaker, app.state.gateway, live.settings).run_once()

    assert report.webhooks_sent == 1
    (request,) = receiver.received
    assert verified(endpoint["secret"], request)["data"]["name"] == "Globex"
