"""P6 of issue 16: pay-now throughput across API replicas against a slow gateway, and
reconcile throughput.

Pay-now: seeds one tenant, clients each with a user (tokens minted as the tests mint them)
and a `tok_visa` card made by the fake gateway, and open invoices; starts 1 and then 3 real
`billing-portal serve` processes (replicas) on free ports against the same fresh PostgreSQL
database, all sharing one fake-gateway ledger file with a fixed latency; drives them over HTTP
with an httpx load generator, each request paying one distinct open invoice with an
`Idempotency-Key`. Prints pay-now/s, p50/p99, CPU, errors (must be 0), and counts duplicate
charges two independent ways (the gateway's ledger against the answers, and the database).
Then counts the statements one pay-now sends, with the app in this process.

Reconcile: seeds payments left `pending` with their amounts held (as a lost gateway answer
leaves them: half already charged at the gateway, half never reached it) and times
`app.payments.reconcile.reconcile` (what `billing-portal reconcile` runs) settling them all,
for each `--reconcile` concurrency and gateway latency; every one must end `succeeded`.

CPU is read from /proc for the replicas, PostgreSQL's processes, this one and everything else
on the machine, so a shared machine's noise shows; the CPU per pay-now gives the ceiling this
machine's cores allow. BENCH_PROFILE_DIR=dir runs each replica, and the reconcile, under
cProfile and keeps the profiles there.

    .venv/bin/python bench/paynow_bench.py --quick          # what `python3 dev.py bench` runs
    .venv/bin/python bench/paynow_bench.py                  # the full sizes
    .venv/bin/python bench/paynow_bench.py --quick --json bench/baselines/paynow-quick.json
    BENCH_PROFILE_DIR=/tmp/prof .venv/bin/python bench/paynow_bench.py --quick  # cProfile each

Creates `bench_paynow_<pid>` on `--postgres-server` and drops it at the end, even on failure or
Ctrl-C. Exits 1 on any failed request, duplicate charge or payment left unsettled.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.cli import migrate
from app.core.config import Settings
from app.core.db import create_engine, create_sessionmaker
from app.core.security import create_access_token
from app.gateways.base import GatewaySettings
from app.gateways.fake import FakeGateway, ledger_summary
from app.main import create_app
from app.models import (
    AuthSession,
    Client,
    Invoice,
    Membership,
    Payment,
    PaymentAllocation,
    PaymentMethod,
    Tenant,
    User,
)
from app.payments.reconcile import DEFAULT_CONCURRENCY, reconcile
from app.wiring import build_gateway
from bench.runner_throughput import (
    Server,
    _admin,
    _empty_tables,
    _insert_payers,
    _machine_ticks,
    _proc_stat,
    _process_tree_ticks,
    _rounded,
    connection,
    inspect_server,
    machine,
    run_in_workdir,
)
from tests.factories import PASSWORD, password_hash
from tests.perf.test_statements_per_request import counting

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432"
JWT_SECRET = "bench-paynow-" + "x" * 40
CURRENCY = "USD"
READY_TIMEOUT_SECONDS = 90.0
REQUEST_TIMEOUT_SECONDS = 60.0
_TICK = os.sysconf("SC_CLK_TCK")


# --- options ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReconcileConfig:
    concurrency: int
    latency: float

    @property
    def label(self) -> str:
        return f"{self.concurrency} at once, {self.latency * 1000:g} ms"


@dataclass(frozen=True, slots=True)
class Options:
    quick: bool
    requests: int  # timed pay-now requests per replica count
    warmup: int  # untimed pay-now requests per replica first
    replicas: tuple[int, ...]
    concurrency: int  # pay-now requests in flight, spread over the replicas
    latency: float
    clients: int
    reconcile_payments: int
    reconcile_configs: tuple[ReconcileConfig, ...]
    postgres_server: str
    json_path: Path | None


def _counts(value: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(part) for part in value.split(",") if part.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a list of integers: {value!r}") from exc
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("counts must be positive integers")
    return counts


def _reconcile_configs(value: str) -> tuple[ReconcileConfig, ...]:
    """`8@50,32@50,8@0`: concurrency @ gateway latency in milliseconds."""
    configs = []
    for part in value.split(","):
        concurrency, _, latency = part.strip().partition("@")
        try:
            config = ReconcileConfig(int(concurrency), float(latency or 50) / 1000)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"not CONCURRENCY@MS: {part!r}") from exc
        if config.concurrency < 1 or config.latency < 0:
            raise argparse.ArgumentTypeError(f"not CONCURRENCY@MS: {part!r}")
        configs.append(config)
    return tuple(configs)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--quick", action="store_true", help="short version: about 1-2 minutes")
    add("--requests", type=int, help="timed pay-now requests per replica count (3000; quick 400)")
    add("--warmup", type=int, default=10, help="untimed pay-now requests per replica first (10)")
    add("--replicas", type=_counts, default=(1, 3), help="comma-separated counts (1,3)")
    add("--concurrency", type=int, default=48, help="requests in flight over all replicas (48)")
    add("--latency", type=float, default=0.05, help="fake gateway seconds per call (0.05)")
    add("--clients", type=int, default=50, help="clients the invoices are spread over (50)")
    add(
        "--reconcile-payments",
        type=int,
        help="pending payments seeded per reconcile run (5000; quick 300)",
    )
    add(
        "--reconcile",
        type=_reconcile_configs,
        default=_reconcile_configs(f"{DEFAULT_CONCURRENCY}@50,8@50,{DEFAULT_CONCURRENCY}@0"),
        help="reconcile runs, CONCURRENCY@GATEWAY_MS, comma-separated (default: "
        f"{DEFAULT_CONCURRENCY}@50,8@50,{DEFAULT_CONCURRENCY}@0; the first is what "
        "`billing-portal reconcile` runs and is the one the summary reports)",
    )
    add(
        "--postgres-server",
        default=DEFAULT_SERVER,
        help="where the fresh database is created and dropped (default: %(default)s)",
    )
    add("--json", dest="json_path", type=Path, default=None, help="also write the results here")
    return parser


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = _parser()
    args = parser.parse_args(argv)
    quick = bool(args.quick)
    requests = args.requests or (400 if quick else 3000)
    reconcile_payments = args.reconcile_payments or (300 if quick else 5000)
    if min(requests, args.clients, args.concurrency, reconcile_payments) < 1:
        parser.error("--requests, --clients, --concurrency, --reconcile-payments must be > 0")
    if args.warmup < 0 or args.latency < 0:
        parser.error("--warmup and --latency must not be negative")
    return Options(
        quick=quick,
        requests=requests,
        warmup=args.warmup,
        replicas=args.replicas,
        concurrency=args.concurrency,
        latency=args.latency,
        clients=args.clients,
        reconcile_payments=reconcile_payments,
        reconcile_configs=args.reconcile,
        postgres_server=args.postgres_server,
        json_path=args.json_path,
    )


# --- the database ----------------------------------------------------------------------------


@contextlib.contextmanager
def fresh_database(server: str) -> Iterator[str]:
    name = f"bench_paynow_{os.getpid()}"
    asyncio.run(_admin(server, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server).set(database=name).render_as_string(False)
    finally:
        asyncio.run(_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def bench_settings(
    database_url: str, workdir: Path, latency: float = 0.0, ledger: Path | None = None
) -> Settings:
    return Settings(
        env="test",
        database_url=database_url,
        data_dir=workdir,
        jwt_secret=JWT_SECRET,
        access_token_ttl_seconds=6 * 3600,  # minted once per seed; outlives any run
        log_level="WARNING",
        redis_url=None,
        payment_gateway="fake",
        fake_gateway_latency_seconds=latency,
        fake_gateway_ledger=str(ledger) if ledger else None,
    )


@dataclass(frozen=True, slots=True)
class PayJob:
    invoice_id: uuid.UUID
    amount: int
    method_id: uuid.UUID
    token: str


@dataclass(frozen=True, slots=True)
class Account:
    client_id: uuid.UUID
    method_id: uuid.UUID
    method_reference: str
    customer_reference: str
    token: str


async def _new_tenant(
    settings: Settings, clients: int, invoices: int
) -> tuple[uuid.UUID, list[Account]]:
    """Empty tables, then one tenant with `clients` clients, each with a `tok_visa` card (made
    by the fake gateway) and a client user with a live session and a minted access token."""
    async with connection(settings) as conn:
        await _empty_tables(conn)
        tenant_id = uuid.uuid4()
        tenant = {"id": tenant_id, "name": "Bench MSP", "next_invoice_number": invoices + 1}
        await conn.execute(insert(Tenant), [tenant])
        payers = await _insert_payers(conn, tenant_id, clients)
        users, sessions, memberships, accounts = [], [], [], []
        refs = await conn.execute(
            select(Client.id, Client.gateway_customer_reference, PaymentMethod.gateway_reference)
            .join(PaymentMethod, PaymentMethod.client_id == Client.id)
            .where(Client.tenant_id == tenant_id)
        )
        by_client = {row[0]: (row[1], row[2]) for row in refs.all()}
        for i, payer in enumerate(payers):
            user_id, session_id = uuid.uuid4(), uuid.uuid4()
            users.append(
                {
                    "id": user_id,
                    "tenant_id": tenant_id,
                    "client_id": payer.client_id,
                    "email": f"payer-{i + 1:03d}@bench.example",
                    "full_name": f"Bench payer {i + 1:03d}",
                    "role": "client",
                    "password_hash": password_hash(),  # PASSWORD, hashed once
                    "must_change_password": False,
                    "token_version": 1,
                    "is_active": True,
                }
            )
            sessions.append({"id": session_id, "user_id": user_id, "client_id": payer.client_id})
            memberships.append(
                {
                    "id": uuid.uuid4(),
                    "tenant_id": tenant_id,
                    "user_id": user_id,
                    "client_id": payer.client_id,
                }
            )
            token = create_access_token(
                settings,
                user_id=user_id,
                tenant_id=tenant_id,
                token_version=1,
                session_id=session_id,
                client_id=payer.client_id,
            )
            customer, method_reference = by_client[payer.client_id]
            assert customer is not None, "the seed gives every client a gateway customer"
            accounts.append(
                Account(payer.client_id, payer.method_id, method_reference, customer, token)
            )
        await conn.execute(insert(User), users)
        await conn.execute(insert(AuthSession), sessions)
        await conn.execute(insert(Membership), memberships)
    return tenant_id, accounts


def _invoice_row(
    tenant_id: uuid.UUID, client_id: uuid.UUID, number: int, reserved: bool = False
) -> dict[str, Any]:
    today = datetime.now(UTC).date()
    amount = 1_000 + (number * 37) % 9_000
    return {
        "id": uuid.uuid4(),
        "tenant_id": tenant_id,
        "client_id": client_id,
        "number": f"INV-{number:06d}",
        "status": "open",
        "currency": CURRENCY,
        "issued_on": today,
        "due_date": today,
        "total": amount,
        "amount_paid": 0,
        "amount_reserved": amount if reserved else 0,
    }


async def _insert_chunked(conn: Any, model: Any, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), 1000):
        await conn.execute(insert(model), rows[start : start + 1000])


async def seed_pay_now(settings: Settings, clients: int, invoices: int) -> list[PayJob]:
    """A fresh tenant and `invoices` open invoices spread over its clients; one job each."""
    tenant_id, accounts = await _new_tenant(settings, clients, invoices)
    rows = [
        _invoice_row(tenant_id, accounts[i % len(accounts)].client_id, i + 1)
        for i in range(invoices)
    ]
    async with connection(settings) as conn:
        await _insert_chunked(conn, Invoice, rows)
    async with connection(settings) as conn:
        await conn.execute(text("ANALYZE"))
    jobs = []
    for i, row in enumerate(rows):
        account = accounts[i % len(accounts)]
        jobs.append(PayJob(row["id"], row["total"], account.method_id, account.token))
    return jobs


async def seed_pending(settings: Settings, clients: int, count: int, ledger: Path) -> int:
    """`count` pay-now payments left `pending` an hour ago with their amounts held, as a lost
    gateway answer leaves them; every other one was charged at the gateway (the answer was
    lost), the rest never reached it. Returns how many the ledger already has."""
    tenant_id, accounts = await _new_tenant(settings, clients, count)
    created = datetime.now(UTC) - timedelta(hours=1)
    invoices, payments, allocations, calls = [], [], [], []
    for i in range(count):
        account = accounts[i % len(accounts)]
        invoice = _invoice_row(tenant_id, account.client_id, i + 1, reserved=True)
        payment_id = uuid.uuid4()
        invoices.append(invoice)
        payments.append(
            {
                "id": payment_id,
                "tenant_id": tenant_id,
                "client_id": account.client_id,
                "payment_method_id": account.method_id,
                "amount": invoice["total"],
                "currency": CURRENCY,
                "status": "pending",
                "origin": "pay_now",
                "gateway_idempotency_key": f"payment_{payment_id}",
                "amount_refunded": 0,
                "gateway_attempts": 1,
                "created_at": created + timedelta(milliseconds=i),
            }
        )
        allocations.append(
            {
                "id": uuid.uuid4(),
                "tenant_id": tenant_id,
                "payment_id": payment_id,
                "invoice_id": invoice["id"],
                "position": 0,
                "amount": invoice["total"],
                "status": "held",
                "amount_refunded": 0,
            }
        )
        if i % 2 == 0:
            calls.append((payment_id, invoice["total"], account))
    async with connection(settings) as conn:
        await _insert_chunked(conn, Invoice, invoices)
        await _insert_chunked(conn, Payment, payments)
        await _insert_chunked(conn, PaymentAllocation, allocations)
    async with connection(settings) as conn:
        await conn.execute(text("ANALYZE"))
    # The charges whose answer was lost: made exactly as app.payments.charges makes them, so
    # reconciliation's call with the same key finds them instead of charging again.
    gateway = FakeGateway(GatewaySettings(fake_ledger_path=str(ledger)))
    for payment_id, amount, account in calls:
        await gateway.charge(
            amount=amount,
            currency=CURRENCY,
            method_reference=account.method_reference,
            customer_reference=account.customer_reference,
            idempotency_key=f"payment_{payment_id}",
            description=f"Payment {payment_id}",
            metadata={"payment_id": str(payment_id)},
        )
    return len(calls)


# --- the replicas ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(settings: Settings, latency: float, ledger: Path) -> dict[str, str]:
    inherited = {
        k: v for k, v in os.environ.items() if not k.startswith("BILLING_") and k != "DATABASE_URL"
    }
    return inherited | {
        "DATABASE_URL": settings.resolved_database_url,
        "BILLING_ENV": "test",
        "BILLING_JWT_SECRET": JWT_SECRET,
        "BILLING_DATA_DIR": str(settings.data_dir),
        "BILLING_LOG_LEVEL": "WARNING",
        "BILLING_PAYMENT_GATEWAY": "fake",
        "BILLING_FAKE_GATEWAY_LATENCY_SECONDS": str(latency),
        "BILLING_FAKE_GATEWAY_LEDGER": str(ledger),
    }


@dataclass
class Replica:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu_ticks(self) -> int:
        fields = _proc_stat(self.proc.pid)
        return sum(int(v) for v in fields[11:13]) if fields else 0  # utime + stime

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log.read_text(errors="replace").strip().splitlines()[-lines:])


@contextlib.contextmanager
def replicas(count: int, env: dict[str, str], workdir: Path) -> Iterator[list[Replica]]:
    """`count` `billing-portal serve` processes on free ports, ready; stopped afterwards."""
    profiles = os.environ.get("BENCH_PROFILE_DIR")
    started: list[Replica] = []
    try:
        for i in range(count):
            port = _free_port()
            log = workdir / f"replica-{count}-{i}.log"
            profile = ["-m", "cProfile", "-o", f"{profiles}/replica-{count}-{i}.prof"]
            argv = [sys.executable, *(profile if profiles else []), "-m", "app.cli", "serve"]
            argv += ["--no-migrate", "--host", "127.0.0.1", "--port", str(port)]
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    argv,
                    cwd=ROOT,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # Ctrl-C reaches only us; we stop them below
                )
            started.append(Replica(proc, port, log))
        asyncio.run(_wait_ready(started))
        yield started
    finally:
        _interrupt([r.proc for r in started])


def _interrupt(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGINT, not SIGTERM: uvicorn shuts down cleanly on either, then raises the signal again
    itself; SIGTERM's default action would end the process before cProfile writes its file,
    SIGINT's KeyboardInterrupt lets it."""
    running = [p for p in procs if p.poll() is None]
    for proc in running:
        proc.send_signal(signal.SIGINT)
    for proc in running:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _wait_ready(started: list[Replica]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    async with httpx.AsyncClient(timeout=5) as http:
        for replica in started:
            while True:
                if replica.proc.poll() is not None:
                    raise SystemExit(
                        f"a replica exited {replica.proc.returncode}:\n" + replica.log_tail()
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"{replica.url}/readyz")).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise SystemExit("a replica did not become ready:\n" + replica.log_tail())
                await asyncio.sleep(0.2)


# --- the load generator ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    invoice_id: uuid.UUID
    status: int  # 0: no answer (a transport error)
    seconds: float
    payment_id: uuid.UUID | None
    paid_invoices: tuple[uuid.UUID, ...]
    problem: str | None


async def _pay(http: httpx.AsyncClient, base: str, job: PayJob) -> Answer:
    started = time.perf_counter()
    try:
        response = await http.post(
            f"{base}/api/v1/invoices/{job.invoice_id}/pay",
            json={"payment_method_id": str(job.method_id)},
            headers={
                "Authorization": f"Bearer {job.token}",
                "Idempotency-Key": f"p6-{job.invoice_id}",
            },
        )
    except httpx.HTTPError as exc:
        seconds = time.perf_counter() - started
        return Answer(job.invoice_id, 0, seconds, None, (), f"{type(exc).__name__}: {exc}")
    seconds = time.perf_counter() - started
    if response.status_code != 201:
        return Answer(job.invoice_id, response.status_code, seconds, None, (), response.text[:300])
    body = response.json()
    paid = tuple(uuid.UUID(a["invoice_id"]) for a in body["allocations"])
    problem = None
    if body["status"] != "succeeded" or body["amount"] != job.amount or paid != (job.invoice_id,):
        problem = f"unexpected payment: {body['status']} {body['amount']} for {paid}"
    return Answer(job.invoice_id, 201, seconds, uuid.UUID(body["id"]), paid, problem)


async def drive(urls: list[str], jobs: list[PayJob], concurrency: int) -> list[Answer]:
    """`concurrency` workers, each bound to one replica (worker i to replica i mod n), take the
    next job until none are left."""
    answers: list[Answer] = []
    queue = iter(jobs)
    limits = httpx.Limits(max_connections=concurrency + 8, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_SECONDS, limits=limits) as http:

        async def worker(base: str) -> None:
            for job in queue:
                answers.append(await _pay(http, base, job))

        await asyncio.gather(*(worker(urls[i % len(urls)]) for i in range(concurrency)))
    return answers


# --- checking the outcome --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Books:
    """What the gateway's ledger and the database say happened."""

    ledger_charges: int  # charges that moved money
    ledger_calls: int  # every charge() call, replays included
    ledger_duplicates: int  # charges beyond one per invoice, as the answers map them
    ledger_unanswered: int  # charges for a payment no answer named
    db_payments: dict[str, int]
    db_duplicates: int  # succeeded payments beyond one per invoice they paid
    db_paid_invoices: int
    db_open_invoices: int
    db_reserved: int  # amounts still held on invoices


async def _database_books(settings: Settings) -> tuple[dict[str, int], int, int, int, int]:
    async with connection(settings) as conn:
        by_status = await conn.execute(
            select(Payment.status, func.count()).group_by(Payment.status)
        )
        succeeded = Payment.status == "succeeded"
        paid_by = (
            select(func.count(), func.count(func.distinct(PaymentAllocation.invoice_id)))
            .select_from(PaymentAllocation)
            .join(Payment, Payment.id == PaymentAllocation.payment_id)
            .where(succeeded, PaymentAllocation.status == "applied")
        )
        allocations, invoices = (await conn.execute(paid_by)).one()
        succeeded_payments = (
            await conn.execute(select(func.count()).select_from(Payment).where(succeeded))
        ).scalar_one()
        statuses = await conn.execute(select(Invoice.status, func.count()).group_by(Invoice.status))
        invoice_counts = {s: int(n) for s, n in statuses.all()}
        reserved = (
            await conn.execute(select(func.coalesce(func.sum(Invoice.amount_reserved), 0)))
        ).scalar_one()
    # One invoice per payment here: a second payment (or allocation) for an invoice is one.
    duplicates = max(int(succeeded_payments), int(allocations)) - int(invoices)
    return (
        {s: int(n) for s, n in by_status.all()},
        duplicates,
        invoice_counts.get("paid", 0),
        invoice_counts.get("open", 0),
        int(reserved),
    )


def read_books(settings: Settings, ledger: Path, invoice_of: dict[str, uuid.UUID]) -> Books:
    """`invoice_of`: gateway key -> the invoice it was for, from the answers (pay-now) or the
    seed (reconcile): independent of the database."""
    summary = ledger_summary(str(ledger))
    charges = FakeGateway(GatewaySettings(fake_ledger_path=str(ledger))).charges
    per_invoice = Counter(
        invoice_of[c.idempotency_key] for c in charges if c.idempotency_key in invoice_of
    )
    unanswered = sum(c.idempotency_key not in invoice_of for c in charges)
    payments, db_duplicates, paid, still_open, reserved = asyncio.run(_database_books(settings))
    return Books(
        ledger_charges=summary["charges"],
        ledger_calls=summary["calls"],
        ledger_duplicates=sum(n - 1 for n in per_invoice.values()) + unanswered,
        ledger_unanswered=unanswered,
        db_payments=payments,
        db_duplicates=db_duplicates,
        db_paid_invoices=paid,
        db_open_invoices=still_open,
        db_reserved=reserved,
    )


# --- CPU -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ticks:
    replicas: int
    postgres: int | None
    machine: tuple[int, int] | None
    driver: float

    @classmethod
    def take(cls, started: list[Replica], postmaster: int | None) -> Ticks:
        return cls(
            replicas=sum(r.cpu_ticks() for r in started),
            postgres=_process_tree_ticks(postmaster) if postmaster else None,
            machine=_machine_ticks(),
            driver=time.process_time(),
        )


def cpu_between(before: Ticks, after: Ticks) -> dict[str, float | None]:
    """CPU seconds of the replicas, PostgreSQL, this process (the load generator) and
    everything else on the machine (other work, not the benchmark's); the machine's busy
    fraction."""
    busy = everything = None
    if before.machine and after.machine and after.machine[1] > before.machine[1]:
        used = after.machine[0] - before.machine[0]
        busy, everything = used / (after.machine[1] - before.machine[1]), used / _TICK
    postgres = None
    if before.postgres is not None and after.postgres is not None:
        postgres = (after.postgres - before.postgres) / _TICK
    replicas, driver = (after.replicas - before.replicas) / _TICK, after.driver - before.driver
    others = None
    if everything is not None:
        others = max(0.0, everything - replicas - driver - (postgres or 0.0))
    return {
        "replicas": replicas,
        "postgres": postgres,
        "driver": driver,
        "others": others,
        "machine_busy": busy,
    }


# --- pay-now ---------------------------------------------------------------------------------


@dataclass
class PayNowResult:
    replicas: int
    requests: int
    concurrency: int
    seconds: float
    seed_seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    statuses: dict[str, int]
    cpu_seconds: dict[str, float | None]
    load_average_before: float
    books: dict[str, Any]
    duplicate_charges: int
    # Over the replicas' lifetime, warm-up and readiness probes included.
    transactions_per_pay_now: float
    problems: list[str] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_ms_per_payment(self) -> float:
        return float(self.cpu_seconds["replicas"] or 0) / self.requests * 1000

    @property
    def server_cpu_ms_per_payment(self) -> float | None:
        """The replicas' and PostgreSQL's CPU per pay-now (not the load generator's)."""
        postgres = self.cpu_seconds["postgres"]
        return (
            None if postgres is None else self.cpu_ms_per_payment + postgres / self.requests * 1000
        )

    @property
    def cpu_ceiling(self) -> float | None:
        """Pay-now/s this machine's cores could give at this CPU per pay-now, with nothing else
        running on them (no load generator, no other work)."""
        server = self.server_cpu_ms_per_payment
        return len(os.sched_getaffinity(0)) * 1000 / server if server else None


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(len(ordered) * q + 0.5) - 1))]


def run_pay_now(
    database_url: str, options: Options, server: Server, count: int, workdir: Path
) -> PayNowResult:
    ledger = workdir / f"ledger-paynow-{count}.db"
    ledger_summary(str(ledger))  # the schema, before the replicas race to make it
    settings = bench_settings(database_url, workdir, options.latency, ledger)
    warmup = options.warmup * count
    started_seed = time.perf_counter()
    jobs = asyncio.run(seed_pay_now(settings, options.clients, warmup + options.requests))
    seed_seconds = time.perf_counter() - started_seed
    commits_before = asyncio.run(database_commits(settings))
    with replicas(count, server_env(settings, options.latency, ledger), workdir) as running:
        urls = [r.url for r in running]
        warm = asyncio.run(drive(urls, jobs[:warmup], min(options.concurrency, warmup) or 1))
        load = os.getloadavg()[0]
        before = Ticks.take(running, server.pid)
        t0 = time.perf_counter()
        timed = asyncio.run(drive(urls, jobs[warmup:], options.concurrency))
        seconds = time.perf_counter() - t0
        cpu = cpu_between(before, Ticks.take(running, server.pid))
        dead = [r for r in running if r.proc.poll() is not None]
    answers = warm + timed
    time.sleep(1.0)  # the replicas' backends have exited and reported their statistics
    transactions = asyncio.run(database_commits(settings)) - commits_before
    invoice_of = {f"payment_{a.payment_id}": a.invoice_id for a in answers if a.payment_id}
    books = read_books(settings, ledger, invoice_of)
    failed = [a for a in answers if a.status != 201 or a.problem]
    latencies = [a.seconds for a in timed]
    duplicates = max(books.ledger_duplicates, books.db_duplicates)
    problems = [f"replica on port {r.port} exited {r.proc.returncode}" for r in dead]
    if failed:
        shown = "; ".join(f"{a.status} {a.problem}" for a in failed[:5])
        problems.append(f"{len(failed)} request(s) failed, e.g. {shown}")
    if duplicates:
        problems.append(
            f"duplicate charges: ledger {books.ledger_duplicates}, database {books.db_duplicates}"
        )
    if books.ledger_charges != len(answers) or books.db_paid_invoices != len(answers):
        problems.append(
            f"{len(answers)} invoices asked, {books.ledger_charges} charges in the ledger, "
            f"{books.db_paid_invoices} invoices paid"
        )
    if books.db_payments != {"succeeded": len(answers)} or books.db_reserved:
        problems.append(f"payments {books.db_payments}, still held {books.db_reserved}")
    return PayNowResult(
        replicas=count,
        requests=len(timed),
        concurrency=options.concurrency,
        seconds=seconds,
        seed_seconds=seed_seconds,
        p50_ms=statistics.median(latencies) * 1000,
        p99_ms=_percentile(latencies, 0.99) * 1000,
        max_ms=max(latencies) * 1000,
        errors=len(failed),
        statuses={str(k): v for k, v in sorted(Counter(a.status for a in answers).items())},
        cpu_seconds=cpu,
        load_average_before=load,
        books=asdict(books),
        duplicate_charges=duplicates,
        transactions_per_pay_now=transactions / len(answers),
        problems=problems,
    )


async def database_commits(settings: Settings) -> int:
    """Transactions committed in the bench database so far (pg_stat_database: a backend
    reports its own when it goes idle for a while or exits)."""
    async with connection(settings) as conn:
        found = await conn.execute(
            text(
                "SELECT xact_commit + xact_rollback FROM pg_stat_database "
                "WHERE datname = current_database()"
            )
        )
        return int(found.scalar_one())


# --- statements per pay-now, in process ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatementCount:
    requests: int
    statements: float  # per pay-now
    checkouts: float  # connections taken from the pool per pay-now (about its transactions)
    by_verb: dict[str, float]


async def _count_statements(settings: Settings, jobs: list[PayJob]) -> StatementCount:
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            first = await _pay(http, "http://bench", jobs[0])  # warms the caches
            with counting(app.state.engine) as count:
                answers = [await _pay(http, "http://bench", job) for job in jobs[1:]]
    finally:
        await app.state.engine.dispose()
    failed = [a for a in [first, *answers] if a.status != 201 or a.problem]
    if failed:
        raise SystemExit(f"in-process pay-now failed: {failed[0].status} {failed[0].problem}")
    n = len(answers)
    verbs = Counter(s.lstrip().split(None, 1)[0].upper() for s in count.statements)
    return StatementCount(
        requests=n,
        statements=count.n / n,
        checkouts=count.checkouts / n,
        by_verb={verb: k / n for verb, k in sorted(verbs.items())},
    )


def count_statements(database_url: str, options: Options, workdir: Path) -> StatementCount:
    """What one pay-now sends to the database: the app in this process (a private fake gateway,
    no latency), one request at a time, after one to warm up."""
    settings = bench_settings(database_url, workdir)
    jobs = asyncio.run(seed_pay_now(settings, options.clients, 11))
    return asyncio.run(_count_statements(settings, jobs))


# --- reconcile -------------------------------------------------------------------------------


@dataclass
class ReconcileResult:
    concurrency: int
    latency: float
    payments: int
    already_charged: int
    seconds: float
    settled: int
    statements_per_payment: float
    checkouts_per_payment: float
    cpu_seconds: dict[str, float | None]
    load_average_before: float
    books: dict[str, Any]
    duplicate_charges: int
    problems: list[str] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return self.settled / self.seconds

    @property
    def bound(self) -> float | None:
        """What the gateway's latency alone allows: `concurrency` calls per `latency`."""
        return self.concurrency / self.latency if self.latency else None


@dataclass(frozen=True, slots=True)
class ReconcileRun:
    seconds: float
    checked: int
    settled: int
    cpu_seconds: float
    statements: int
    checkouts: int


async def _reconcile_timed(settings: Settings, concurrency: int) -> ReconcileRun:
    """reconcile() as `billing-portal reconcile` runs it (a CLI engine, the configured gateway),
    timed from the query of pending work to the last settle."""
    engine = create_engine(settings)
    gateway = build_gateway(settings)
    try:
        profiles = os.environ.get("BENCH_PROFILE_DIR")
        profile = cProfile.Profile() if profiles else None
        cpu0, t0 = time.process_time(), time.perf_counter()
        if profile is not None:
            profile.enable()
        with counting(engine) as count:  # a function call per statement: noise here
            report = await reconcile(
                create_sessionmaker(engine),
                gateway,
                older_than=timedelta(0),
                concurrency=concurrency,
            )
        seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        if profile is not None:
            profile.disable()
            latency = int(settings.fake_gateway_latency_seconds * 1000)
            profile.dump_stats(f"{profiles}/reconcile-{concurrency}-{latency}ms.prof")
        return ReconcileRun(
            seconds,
            report.payments_checked,
            report.payments_settled,
            cpu,
            count.n,
            count.checkouts,
        )
    finally:
        await gateway.aclose()
        await engine.dispose()


def run_reconcile(
    database_url: str, options: Options, server: Server, config: ReconcileConfig, workdir: Path
) -> ReconcileResult:
    tag = f"{config.concurrency}-{int(config.latency * 1000)}"
    # A ledger of its own per run, even for two runs of one configuration.
    ledger = Path(tempfile.mkdtemp(prefix=f"reconcile-{tag}-", dir=workdir)) / "ledger.db"
    ledger_summary(str(ledger))
    settings = bench_settings(database_url, workdir, config.latency, ledger)
    count = options.reconcile_payments
    already = asyncio.run(seed_pending(settings, options.clients, count, ledger))
    keys = asyncio.run(_pending_keys(settings))
    load = os.getloadavg()[0]
    before = Ticks.take([], server.pid)
    run = asyncio.run(_reconcile_timed(settings, config.concurrency))
    seconds, checked, settled = run.seconds, run.checked, run.settled
    cpu = cpu_between(before, Ticks.take([], server.pid))
    cpu["reconcile"] = run.cpu_seconds
    del cpu["replicas"], cpu["driver"]
    books = read_books(settings, ledger, keys)
    duplicates = max(books.ledger_duplicates, books.db_duplicates)
    problems = []
    if checked != count or settled != count:
        problems.append(f"{count} pending payments: {checked} checked, {settled} settled")
    if duplicates:
        problems.append(
            f"duplicate charges: ledger {books.ledger_duplicates}, database {books.db_duplicates}"
        )
    if (
        books.db_payments != {"succeeded": count}
        or books.db_paid_invoices != count
        or books.db_reserved
        or books.ledger_charges != count
    ):
        problems.append(
            f"payments {books.db_payments}, {books.db_paid_invoices} invoices paid, "
            f"{books.ledger_charges} charges in the ledger, still held {books.db_reserved}"
        )
    return ReconcileResult(
        concurrency=config.concurrency,
        latency=config.latency,
        payments=count,
        already_charged=already,
        seconds=seconds,
        settled=settled,
        statements_per_payment=run.statements / count,
        checkouts_per_payment=run.checkouts / count,
        cpu_seconds=cpu,
        load_average_before=load,
        books=asdict(books),
        duplicate_charges=duplicates,
        problems=problems,
    )


async def _pending_keys(settings: Settings) -> dict[str, uuid.UUID]:
    """Gateway key -> invoice of every payment as seeded, before reconcile touches them."""
    async with connection(settings) as conn:
        rows = await conn.execute(
            select(Payment.gateway_idempotency_key, PaymentAllocation.invoice_id).join(
                PaymentAllocation, PaymentAllocation.payment_id == Payment.id
            )
        )
        return {row[0]: row[1] for row in rows.all()}


# --- reporting -------------------------------------------------------------------------------


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_pay_now(results: list[PayNowResult]) -> None:
    header = (
        "replicas", "requests", "seconds", "pay-now/s", "p50 ms", "p99 ms", "max ms",
        "errors", "duplicates",
    )  # fmt: skip
    widths = [len(h) for h in header]
    print("\n" + " ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
    for r in results:
        values = (
            r.replicas, r.requests, f"{r.seconds:.2f}", f"{r.per_second:.1f}", f"{r.p50_ms:.1f}",
            f"{r.p99_ms:.1f}", f"{r.max_ms:.1f}", r.errors, r.duplicate_charges,
        )  # fmt: skip
        print(" ".join(str(v).rjust(w) for v, w in zip(values, widths, strict=True)))
    print("\nCPU seconds during the timed requests:")
    for r in results:
        cpu = r.cpu_seconds
        print(
            f"  {r.replicas} replica(s): replicas {_fmt(cpu['replicas'], '.1f')} "
            f"({r.cpu_ms_per_payment:.1f} ms per pay-now), postgres {_fmt(cpu['postgres'], '.1f')}"
            f", load generator {_fmt(cpu['driver'], '.1f')}, other processes "
            f"{_fmt(cpu['others'], '.1f')}; machine busy "
            f"{_fmt(cpu['machine_busy'], '.0%')}, load average before {r.load_average_before:.1f}"
            f"; {r.transactions_per_pay_now:.1f} database transactions per pay-now"
        )
    cores = len(os.sched_getaffinity(0))
    for r in results:
        print(
            f"  {r.replicas} replica(s): replicas + postgres "
            f"{_fmt(r.server_cpu_ms_per_payment, '.1f')} ms CPU per pay-now: {cores} cores with "
            f"nothing else on them would give at most {_fmt(r.cpu_ceiling, '.0f')} pay-now/s"
        )
    print("\nduplicates, two ways (ledger charges per invoice answered; database payments):")
    for r in results:
        b = r.books
        print(
            f"  {r.replicas} replica(s): ledger {b['ledger_charges']} charges from "
            f"{b['ledger_calls']} calls, {b['ledger_duplicates']} duplicate(s), "
            f"{b['ledger_unanswered']} unanswered; database {b['db_payments']}, "
            f"{b['db_paid_invoices']} invoices paid, {b['db_duplicates']} duplicate(s)"
        )


def print_reconcile(results: list[ReconcileResult]) -> None:
    print("\nreconcile (in process, as `billing-portal reconcile` runs it):")
    for r in results:
        cpu = r.cpu_seconds
        bound = f"; the latency allows {r.bound:.0f}/s" if r.bound else ""
        print(
            f"  {r.concurrency} at once, gateway "
            f"{r.latency * 1000:g} ms: {r.settled} of {r.payments} settled "
            f"({r.already_charged} already charged) in {r.seconds:.2f} s = "
            f"{r.per_second:.0f} payments/s{bound}; CPU reconcile "
            f"{_fmt(cpu['reconcile'], '.1f')} s ({(cpu['reconcile'] or 0) / r.payments * 1000:.1f}"
            f" ms each), postgres {_fmt(cpu['postgres'], '.1f')} s, other processes "
            f"{_fmt(cpu['others'], '.1f')} s; "
            f"{r.statements_per_payment:.1f} statements and {r.checkouts_per_payment:.1f} "
            "connection checkouts per payment; duplicates "
            f"{r.duplicate_charges} (ledger {r.books['ledger_duplicates']}, "
            f"database {r.books['db_duplicates']})"
        )
    for r in results:
        own = r.cpu_seconds["reconcile"]
        if own:
            print(
                f"  {r.concurrency} at once, {r.latency * 1000:g} ms: one process (one event "
                f"loop, one core) at {own / r.payments * 1000:.1f} ms CPU each settles at most "
                f"{r.payments / own:.0f} payments/s"
            )


def summary(
    pay_now: list[PayNowResult], reconciled: list[ReconcileResult], options: Options
) -> str:
    best = {r.replicas: r.per_second for r in pay_now}
    parts = []
    if best:
        most = max(best)
        parts.append(
            f"{most} replica(s) {best[most]:.1f} pay-now/s (target >= 100, "
            f"gateway {options.latency * 1000:g} ms)"
        )
        if len(best) > 1:
            least = min(best)
            parts.append(f"{best[most] / best[least]:.2f}x {least} replica(s)")
    if reconciled:
        r = reconciled[0]
        parts.append(
            f"reconcile {r.per_second:.0f} payments/s (target >= 500; {r.concurrency} at once, "
            f"gateway {r.latency * 1000:g} ms)"
        )
    return "P6: " + "; ".join(parts)


def write_json(
    path: Path,
    pay_now: list[PayNowResult],
    reconciled: list[ReconcileResult],
    statements: StatementCount,
    options: Options,
    server: Server,
) -> None:
    document = {
        "benchmark": "bench/paynow_bench.py",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "database": {"kind": server.kind, "version": server.version, "host": server.host},
        "settings": {
            "quick": options.quick,
            "requests": options.requests,
            "warmup_per_replica": options.warmup,
            "replicas": list(options.replicas),
            "concurrency": options.concurrency,
            "fake_gateway_latency_seconds": options.latency,
            "clients": options.clients,
            "reconcile_payments": options.reconcile_payments,
            "reconcile_runs": [asdict(c) for c in options.reconcile_configs],
            "api_database_pool": "5 + 5 overflow per replica (the api default)",
        },
        "pay_now": [
            asdict(r)
            | {
                "pay_now_per_second": r.per_second,
                "replica_cpu_ms_per_pay_now": r.cpu_ms_per_payment,
                "server_cpu_ms_per_pay_now": r.server_cpu_ms_per_payment,
                "cpu_ceiling_per_second": r.cpu_ceiling,
            }
            for r in pay_now
        ],
        "statements_per_pay_now": asdict(statements),
        "reconcile": [
            asdict(r)
            | {
                "payments_per_second": r.per_second,
                "one_core_ceiling_per_second": (
                    r.payments / r.cpu_seconds["reconcile"] if r.cpu_seconds["reconcile"] else None
                ),
            }
            for r in reconciled
        ],
        "summary": summary(pay_now, reconciled, options),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_rounded(document), indent=2) + "\n")
    print(f"\nwrote {path}")


# --- main ------------------------------------------------------------------------------------


def benchmark(options: Options, workdir: Path) -> int:
    pay_now: list[PayNowResult] = []
    reconciled: list[ReconcileResult] = []
    with fresh_database(options.postgres_server) as database_url:
        settings = bench_settings(database_url, workdir)
        migrate(settings)
        server = asyncio.run(inspect_server(settings))
        print(
            f"{server.version}; pay-now: {options.requests} timed requests per run "
            f"(+{options.warmup} per replica to warm up), {options.concurrency} in flight, "
            f"fake gateway {options.latency * 1000:g} ms, one shared ledger file; reconcile: "
            f"{options.reconcile_payments} pending payments per run; sign-in password of every "
            f"payer: {PASSWORD!r}",
            flush=True,
        )
        for count in options.replicas:
            print(f"  pay-now, {count} replica(s)...", flush=True)
            pay_now.append(run_pay_now(database_url, options, server, count, workdir))
        print("  statements per pay-now, in process...", flush=True)
        statements = count_statements(database_url, options, workdir)
        for config in options.reconcile_configs:
            print(f"  reconcile, {config.label}...", flush=True)
            reconciled.append(run_reconcile(database_url, options, server, config, workdir))
    print_pay_now(pay_now)
    print(
        f"\none pay-now sends {statements.statements:.1f} statements "
        f"({', '.join(f'{v:g} {k}' for k, v in statements.by_verb.items())}) over "
        f"{statements.checkouts:.1f} connection checkouts (in process, one at a time, the mean "
        f"of {statements.requests})"
    )
    print_reconcile(reconciled)
    if options.json_path is not None:
        write_json(options.json_path, pay_now, reconciled, statements, options, server)
    problems = [(f"{r.replicas} replica(s)", p) for r in pay_now for p in r.problems]
    problems += [(f"reconcile {r.concurrency}", p) for r in reconciled for p in r.problems]
    for where, problem in problems:
        print(f"FAIL ({where}): {problem}", file=sys.stderr)
    print(summary(pay_now, reconciled, options), flush=True)  # the ratio last
    return 1 if problems else 0


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    return run_in_workdir(
        lambda workdir: benchmark(options, workdir), prefix="bench-paynow-", processes="replicas"
    )


if __name__ == "__main__":
    raise SystemExit(main())
