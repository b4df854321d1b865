"""Real `billing-portal` processes for the runner and reconciliation tests, on the suite's
database (PostgreSQL in CI's PostgreSQL run, where claiming uses FOR UPDATE SKIP LOCKED;
SQLite otherwise, where the guarded update serializes claims). Every charge is counted in the
fake gateway's ledger file, which all the processes share. Waiting is bounded polling; time
passing is simulated in the database.

Processes may be started at a barrier: each imports the application, says it is ready and
waits; once all are ready they are let go at the same moment, so they really overlap instead
of the first one to finish importing doing all the work.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.cli import PROJECT_ROOT
from app.gateways.fake import ledger_summary
from app.models import Event, Invoice, ScheduledPayment
from tests.factories import Factory
from tests.scheduling.helpers import all_payments

RUN_TIMEOUT = 120.0
POLL = 0.01
JWT_SECRET = "process-test-signing-key-" + "k" * 15  # 40 characters
BARRIER_MODULE = "tests.scheduling.cli_at_barrier"


@dataclass(frozen=True)
class Due:
    scheduled_id: uuid.UUID
    invoice_id: uuid.UUID
    amount: int


@dataclass
class Owners:
    """A tenant's clients, each with a `tok_visa` card: (client id, payment method id)."""

    tenant_id: uuid.UUID
    cards: list[tuple[uuid.UUID, uuid.UUID]]


async def make_owners(factory: Factory, http: AsyncClient, clients: int) -> Owners:
    tenant = await factory.tenant("Runner MSP")
    cards = []
    for index in range(clients):
        client = await factory.client(tenant, f"Client {index}")
        contact = await factory.contact(tenant, client)
        card = await http.post(
            "/api/v1/payment-methods",
            json={"type": "card", "token": "tok_visa"},
            headers=contact.headers,
        )
        assert card.status_code == 201, card.text
        cards.append((client.id, uuid.UUID(card.json()["id"])))
    return Owners(tenant.id, cards)


def open_invoices(owners: Owners, count: int, *, extra: Callable[[int], int]) -> list[Invoice]:
    """`count` open invoices due today, spread over the owners' clients: the n-th for
    1,000 + n, plus `extra(n)` more."""
    today = datetime.now(UTC).date()
    return [
        Invoice(
            id=uuid.uuid4(),
            tenant_id=owners.tenant_id,
            client_id=owners.cards[n % len(owners.cards)][0],
            number=f"RUN-{n:06d}",
            status="open",
            currency="USD",
            issued_on=today,
            due_date=today,
            total=1_000 + n + extra(n),
            amount_paid=0,
            amount_reserved=0,
        )
        for n in range(count)
    ]


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
    owners = await make_owners(factory, http, clients)
    # Half pay the whole invoice, half leave something owing.
    invoices = open_invoices(owners, count, extra=lambda n: (n % 2) * 500)
    due_at = datetime.now(UTC) - timedelta(hours=1)
    scheduled = [
        ScheduledPayment(
            id=uuid.uuid4(),
            tenant_id=owners.tenant_id,
            client_id=invoice.client_id,
            invoice_id=invoice.id,
            payment_method_id=owners.cards[n % clients][1],
            amount=1_000 + n,
            currency="USD",
            scheduled_for=due_at.date(),
            status="scheduled",
            origin="manual",
            attempts=0,
            next_attempt_at=due_at,
        )
        for n, invoice in enumerate(invoices)
    ]
    async with sessionmaker() as session, session.begin():
        session.add_all(invoices)
        await session.flush()
        session.add_all(scheduled)
    return [Due(s.id, s.invoice_id, s.amount) for s in scheduled]


def fresh_ledger(workdir: Path) -> Path:
    """The fake gateway's ledger file the processes share (`cli_env` names it), made empty
    before anyone charges."""
    ledger = workdir / "ledger.db"
    ledger_summary(str(ledger))
    return ledger


def cli_env(database_url: str, workdir: Path, **overrides: str) -> dict[str, str]:
    """A clean environment for a `billing-portal` process: none of the caller's BILLING_*
    settings, the suite's database, the shared ledger file `workdir/ledger.db`."""
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
class Cli:
    """A `billing-portal` process whose output is drained as it runs."""

    process: asyncio.subprocess.Process
    output: asyncio.Future[tuple[bytes, bytes]] | None = None

    async def finish(self, within: float = RUN_TIMEOUT) -> tuple[int, str, str]:
        """Its exit code, stdout and stderr; fails the test when it takes more than `within`
        seconds from now."""
        assert self.output is not None, "a process at the barrier was never let go"
        try:
            stdout, stderr = await asyncio.wait_for(asyncio.shield(self.output), within)
        except TimeoutError:
            raise AssertionError(f"the process did not exit within {within} s") from None
        code = await self.process.wait()
        return code, stdout.decode(), stderr.decode()


@dataclass
class Spawner:
    """Starts `billing-portal` processes; whatever still runs when the test ends is killed."""

    started: list[Cli] = field(default_factory=list)

    async def start(self, env: dict[str, str], *args: str) -> Cli:
        cli = await self._exec(env, "app.cli", *args, stdin=asyncio.subprocess.DEVNULL)
        cli.output = asyncio.ensure_future(cli.process.communicate())
        return cli

    async def start_together(self, count: int, env: dict[str, str], *args: str) -> list[Cli]:
        """`count` processes of `billing-portal <args>`, let go at once when all are ready."""
        clis = [
            await self._exec(env, BARRIER_MODULE, *args, stdin=asyncio.subprocess.PIPE)
            for _ in range(count)
        ]
        for cli in clis:
            assert cli.process.stdout is not None
            ready = await asyncio.wait_for(cli.process.stdout.readline(), RUN_TIMEOUT)
            assert ready == b"ready\n", ready
        for cli in clis:  # writing "go" is the first thing each communicate() does
            cli.output = asyncio.ensure_future(cli.process.communicate(b"go\n"))
        return clis

    async def _exec(self, env: dict[str, str], module: str, *args: str, stdin: int) -> Cli:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            module,
            *args,
            cwd=str(PROJECT_ROOT),
            env=env,
            stdin=stdin,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        self.started.append(Cli(process))
        return self.started[-1]

    async def stop_all(self) -> None:
        for cli in self.started:
            if cli.process.returncode is None:
                cli.process.kill()
            if cli.output is None:
                cli.output = asyncio.ensure_future(cli.process.communicate())
            await cli.process.wait()
            await cli.output


async def poll(condition: Callable[[], Any | Awaitable[Any]], *, within: float, what: str) -> Any:
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
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(POLL)


async def statuses(sessionmaker: async_sessionmaker[AsyncSession]) -> Counter[str]:
    async with sessionmaker() as session:
        rows = await session.execute(
            select(ScheduledPayment.status, func.count()).group_by(ScheduledPayment.status)
        )
        return Counter({row[0]: row[1] for row in rows.all()})


async def scheduled_rows(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> dict[uuid.UUID, ScheduledPayment]:
    async with sessionmaker() as session:
        return {s.id: s for s in (await session.execute(select(ScheduledPayment))).scalars()}


async def assert_each_paid_exactly_once(
    sessionmaker: async_sessionmaker[AsyncSession], due: list[Due], ledger: Path
) -> None:
    """Every scheduled payment succeeded on its first attempt with one payment and one
    charge; the invoices and the event log agree."""
    count = len(due)
    assert await statuses(sessionmaker) == Counter({"succeeded": count})
    scheduled = await scheduled_rows(sessionmaker)
    payments = await all_payments(sessionmaker)
    async with sessionmaker() as session:
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
