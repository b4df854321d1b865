"""`billing-portal run-scheduler` as real processes, on the suite's database (PostgreSQL in
CI's PostgreSQL run, where claiming uses FOR UPDATE SKIP LOCKED; SQLite otherwise, where
the guarded update serializes claims): several runners at once, a runner killed in the
middle, and a clean stop on SIGTERM. Every charge is counted in the fake gateway's shared
ledger file. Waiting is bounded polling; time passing is simulated in the database."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.cli import PROJECT_ROOT
from app.gateways.fake import ledger_summary
from app.models import Event, Invoice, Payment, ScheduledPayment
from tests.factories import Factory

RUN_TIMEOUT = 120.0
POLL = 0.01
JWT_SECRET = "process-test-signing-key-" + "k" * 15  # 40 characters


@dataclass(frozen=True)
class Due:
    scheduled_id: uuid.UUID
    invoice_id: uuid.UUID
    amount: int


async def make_due_payments(
    factory: Factory,
    http: AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    count: int,
    *,
    clients: int = 5,
) -> list[Due]:
    """`count` scheduled payments due an hour ago, spread over a few clients, each on an
    open invoice of its own (written straight to the database: the API would take long)."""
    now = datetime.now(UTC)
    tenant = await factory.tenant("Runner MSP")
    owners = []
    for index in range(clients):
        client = await factory.client(tenant, f"Client {index}")
        contact = await factory.contact(tenant, client)
        card = await http.post(
            "/api/v1/payment-methods",
            json={"type": "card", "token": "tok_visa"},
            headers=contact.headers,
        )
        assert card.status_code == 201, card.text
        owners.append((client.id, uuid.UUID(card.json()["id"])))
    invoices, scheduled, due = [], [], []
    for n in range(count):
        client_id, method_id = owners[n % clients]
        amount = 1_000 + n
        invoice = Invoice(
            id=uuid.uuid4(),
            tenant_id=tenant.id,
            client_id=client_id,
            number=f"RUN-{n:06d}",
            status="open",
            currency="USD",
            issued_on=now.date(),
            due_date=now.date(),
            # Half pay the whole invoice, half leave something owing.
            total=amount + (n % 2) * 500,
            amount_paid=0,
            amount_reserved=0,
        )
        payment = ScheduledPayment(
            id=uuid.uuid4(),
            tenant_id=tenant.id,
            client_id=client_id,
            invoice_id=invoice.id,
            payment_method_id=method_id,
            amount=amount,
            currency="USD",
            scheduled_for=now.date(),
            status="scheduled",
            origin="manual",
            attempts=0,
            next_attempt_at=now - timedelta(hours=1),
        )
        invoices.append(invoice)
        scheduled.append(payment)
        due.append(Due(payment.id, invoice.id, amount))
    async with sessionmaker() as session, session.begin():
        session.add_all(invoices)
        await session.flush()
        session.add_all(scheduled)
    return due


def runner_env(database_url: str, workdir: Path, **overrides: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("BILLING_") and k != "DATABASE_URL"
    }
    env.update(
        {
            "DATABASE_URL": database_url,
            "BILLING_ENV": "test",
            "BILLING_JWT_SECRET": JWT_SECRET,
            "BILLING_DATA_DIR": str(workdir),
            "BILLING_FAKE_GATEWAY_LEDGER": str(workdir / "ledger.db"),
            "BILLING_SCHEDULER_BATCH_SIZE": "20",
            "BILLING_PENDING_RECONCILE_AFTER_SECONDS": "0",
            "BILLING_FAKE_GATEWAY_LATENCY_SECONDS": "0.005",
            "BILLING_LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(overrides)
    return env


@dataclass
class Runner:
    """A `run-scheduler` process whose output is drained as it runs."""

    process: asyncio.subprocess.Process
    output: asyncio.Task[tuple[bytes, bytes]]

    async def finish(self, within: float = RUN_TIMEOUT) -> tuple[int, str, str]:
        stdout, stderr = await asyncio.wait_for(asyncio.shield(self.output), within)
        code = await self.process.wait()
        return code, stdout.decode(), stderr.decode()


@pytest.fixture
async def spawn() -> AsyncIterator[Any]:
    """Starts runner processes; whatever is still running when the test ends is killed."""
    started: list[Runner] = []

    async def start(env: dict[str, str], *args: str) -> Runner:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "app.cli",
            "run-scheduler",
            *args,
            cwd=str(PROJECT_ROOT),
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        runner = Runner(process, asyncio.ensure_future(process.communicate()))
        started.append(runner)
        return runner

    yield start
    for runner in started:
        if runner.process.returncode is None:
            runner.process.kill()
        await runner.process.wait()
        await runner.output


async def poll(condition: Any, *, within: float, what: str) -> Any:
    """Ask `condition()` every POLL seconds until it is truthy; fail after `within` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            pytest.fail(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(POLL)


async def statuses(sessionmaker: async_sessionmaker[AsyncSession]) -> Counter[str]:
    async with sessionmaker() as session:
        rows = await session.execute(
            select(ScheduledPayment.status, func.count()).group_by(ScheduledPayment.status)
        )
        return Counter({row[0]: row[1] for row in rows.all()})


async def assert_each_paid_exactly_once(
    sessionmaker: async_sessionmaker[AsyncSession], due: list[Due], ledger: Path
) -> None:
    """Every scheduled payment succeeded on its first attempt with one payment and one
    charge; the invoices and the event log agree."""
    count = len(due)
    assert await statuses(sessionmaker) == Counter({"succeeded": count})
    async with sessionmaker() as session:
        scheduled = {s.id: s for s in (await session.execute(select(ScheduledPayment))).scalars()}
        payments = list((await session.execute(select(Payment))).scalars())
        invoices = {i.id: i for i in (await session.execute(select(Invoice))).scalars()}
        events = list(
            (
                await session.execute(
                    select(Event).where(
                        Event.type.in_(("payment.succeeded", "scheduled_payment.succeeded"))
                    )
                )
            ).scalars()
        )
    assert len(payments) == count
    by_scheduled = {p.scheduled_payment_id: p for p in payments}
    assert set(by_scheduled) == {d.scheduled_id for d in due}
    for item in due:
        row, payment = scheduled[item.scheduled_id], by_scheduled[item.scheduled_id]
        assert (row.attempts, row.lease_expires_at, row.last_payment_id) == (1, None, payment.id)
        assert (payment.status, payment.amount) == ("succeeded", item.amount)
        assert payment.gateway_idempotency_key == f"scheduled_{item.scheduled_id}_1"
        invoice = invoices[item.invoice_id]
        assert (invoice.amount_paid, invoice.amount_reserved) == (item.amount, 0)
        assert invoice.status == ("paid" if invoice.total == item.amount else "open")
    succeeded = Counter(e.subject_id for e in events if e.type == "payment.succeeded")
    assert succeeded == Counter({p.id: 1 for p in payments})
    done = Counter(e.subject_id for e in events if e.type == "scheduled_payment.succeeded")
    assert done == Counter({d.scheduled_id: 1 for d in due})
    summary = ledger_summary(str(ledger))
    assert (summary["charges"], summary["distinct_keys"], summary["declines"]) == (count, count, 0)


def reported(stdout: str) -> dict[str, int]:
    """The counts `run-scheduler --once` printed."""
    match = re.search(
        r"claimed (\d+): (\d+) succeeded, (\d+) failed, (\d+) to retry, (\d+) canceled, "
        r"(\d+) pending, (\d+) deferred, (\d+) errored; (\d+) reconciled",
        stdout,
    )
    assert match, stdout
    keys = (
        "claimed",
        "succeeded",
        "failed",
        "retrying",
        "canceled",
        "pending",
        "deferred",
        "errored",
    )
    values = [int(v) for v in match.groups()]
    return dict(zip((*keys, "reconciled"), values, strict=True))


async def test_four_runners_at_once_charge_each_due_payment_exactly_once(
    factory: Factory,
    client: AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    database_url: str,
    tmp_path: Path,
    spawn: Any,
) -> None:
    due = await make_due_payments(factory, client, sessionmaker, 300)
    ledger = tmp_path / "ledger.db"
    ledger_summary(str(ledger))  # the empty ledger exists before anyone charges
    env = runner_env(
        database_url,
        tmp_path,
        # Reconciliation waits its usual minute here: run at once, a runner would also
        # settle (so call the gateway again for) payments another runner is still charging.
        BILLING_PENDING_RECONCILE_AFTER_SECONDS="60",
        # SQLite has one writer at a time: more attempts in flight per process only queue
        # on its lock. The processes still claim against each other all the same.
        BILLING_SCHEDULER_CONCURRENCY="1" if database_url.startswith("sqlite") else "8",
    )

    runners = [await spawn(env, "--once") for _ in range(4)]
    results = [await r.finish() for r in runners]

    for code, _, stderr in results:
        assert code == 0, stderr[-3000:]
    reports = [reported(stdout) for _, stdout, _ in results]
    assert sum(r["claimed"] for r in reports) == 300, reports
    # They really ran side by side: the work was shared (each start-up is a fraction of it).
    assert sum(1 for r in reports if r["claimed"]) >= 2, reports
    assert sum(r["succeeded"] for r in reports) == 300, reports
    assert sum(r["errored"] for r in reports) == 0, reports
    summary = ledger_summary(str(ledger))
    # One gateway call per payment: no attempt was processed twice, not even to find the
    # same charge again.
    assert (summary["charges"], summary["calls"]) == (300, 300), summary
    assert (await statuses(sessionmaker))["processing"] == 0
    await assert_each_paid_exactly_once(sessionmaker, due, ledger)


async def test_a_killed_runners_work_is_finished_by_the_next_run_without_double_charges(
    factory: Factory,
    client: AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    database_url: str,
    tmp_path: Path,
    spawn: Any,
) -> None:
    due = await make_due_payments(factory, client, sessionmaker, 40, clients=2)
    ledger = tmp_path / "ledger.db"
    ledger_summary(str(ledger))
    slow = runner_env(
        database_url,
        tmp_path,
        BILLING_FAKE_GATEWAY_LATENCY_SECONDS="0.05",
        BILLING_SCHEDULER_BATCH_SIZE="5",
        BILLING_SCHEDULER_CONCURRENCY="1",
    )
    doomed = await spawn(slow, "--once")

    # Batches of 5, one payment at a time, 50 ms at the gateway each: with 1 to 3 of a
    # batch charged, the rest of it stays claimed for at least another 100 ms. Kill it then.
    def mid_batch() -> bool:
        charges = ledger_summary(str(ledger))["charges"]
        return charges >= 3 and charges % 5 in (1, 2, 3)

    await poll(mid_batch, within=60, what="the runner to be part-way through a batch")
    doomed.process.send_signal(signal.SIGKILL)
    code, _, _ = await doomed.finish()
    assert code == -signal.SIGKILL

    left = await statuses(sessionmaker)
    assert left["processing"] >= 1, left
    assert left["succeeded"] < 40, left
    # Its leases would lapse in five minutes; move them into the past instead of waiting.
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(ScheduledPayment)
            .where(ScheduledPayment.status == "processing")
            .values(lease_expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )

    rerun = await spawn(
        runner_env(database_url, tmp_path, BILLING_SCHEDULER_BATCH_SIZE="5"), "--once"
    )
    code, stdout, stderr = await rerun.finish()

    assert code == 0, stderr[-3000:]
    assert reported(stdout)["succeeded"] + left["succeeded"] == 40
    assert (await statuses(sessionmaker))["processing"] == 0
    # Each payment charged once: a charge the dead runner made was found again through its
    # idempotency key, not made a second time.
    await assert_each_paid_exactly_once(sessionmaker, due, ledger)


async def test_the_looping_runner_works_then_stops_cleanly_on_sigterm(
    factory: Factory,
    client: AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    database_url: str,
    tmp_path: Path,
    spawn: Any,
) -> None:
    due = await make_due_payments(factory, client, sessionmaker, 3, clients=1)
    ledger = tmp_path / "ledger.db"
    ledger_summary(str(ledger))
    looping = await spawn(runner_env(database_url, tmp_path), "--interval", "0.2")

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
