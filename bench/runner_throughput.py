"""Due-payment runner throughput: one runner against several, draining the same queue.

Seeds N due scheduled payments (each on its own open invoice, paid with a `tok_visa` card),
starts each configured number of `billing-portal run-scheduler --once` processes at the same
moment against the fake gateway with a fixed latency, times them until all have exited, then
checks the outcome: every payment succeeded, nothing is left `processing`, and no scheduled
payment was charged twice (read from the fake gateway's shared ledger and, independently, from
the database).

    python bench/runner_throughput.py                       # 10,000 payments, 1 and 4 runners
    python bench/runner_throughput.py --payments 2000 --json /tmp/runner.json
    python bench/runner_throughput.py --ledger memory       # what the shared ledger costs
    python bench/runner_throughput.py --database-url sqlite # a throwaway SQLite file

By default it creates a PostgreSQL database of its own (`bench_runner_<pid>`) on
`--postgres-server` and drops it at the end, even on failure or Ctrl-C. A `--database-url` must
name an empty database: the benchmark empties its tables between configurations and at the end.
Exits 1 when a charge was duplicated or a payment was left unprocessed. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import types
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, get_args

import asyncpg
from alembic import command
from pydantic import ValidationError
from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from app.cli import PROJECT_ROOT, alembic_config
from app.core.config import Settings
from app.core.db import create_engine
from app.gateways.base import AttachedMethod, GatewaySettings
from app.gateways.fake import FakeGateway, ledger_summary
from app.models import Base, Client, Invoice, Payment, PaymentMethod, ScheduledPayment, Tenant

LedgerMode = Literal["file", "wal", "memory"]

DEFAULT_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432"
JWT_SECRET = "bench-runner-throughput-" + "x" * 16  # 40 characters; nothing is signed with it
CURRENCY = "USD"
RUNNER_TIMEOUT_SECONDS = 3600.0
SQLITE_NOTE = (
    "note: SQLite serializes writers (every transaction is BEGIN IMMEDIATE), so more runners "
    "cannot drain the queue faster there; use PostgreSQL to measure scaling."
)
_REPORT_RE = re.compile(r"claimed (?P<claimed>\d+): (?P<succeeded>\d+) succeeded")
_DEFAULTS = Settings.model_fields


# --- options ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Options:
    payments: int
    latency: float
    runners: tuple[int, ...]
    clients: int
    batch_size: int
    concurrency: int
    ledger: LedgerMode
    database_url: str | None
    postgres_server: str
    repeat: int
    json_path: Path | None
    rate_limit: float | None = None
    redis_url: str | None = None

    @property
    def pool_size(self) -> int:
        # Every payment in flight holds a connection, and the claim needs one more; at least
        # the 10 the recorded baselines ran with.
        return max(10, self.concurrency + 1)


def _runner_counts(value: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(part) for part in value.split(",") if part.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a list of integers: {value!r}") from exc
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("runner counts must be positive integers")
    return counts


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Drain due scheduled payments with 1..N runners; report the throughput."
    )
    add = parser.add_argument
    add("--payments", type=int, default=10_000, help="due payments per configuration")
    add("--latency", type=float, default=0.05, help="fake gateway seconds per call (0.05)")
    add("--runners", type=_runner_counts, default=(1, 4), help="comma-separated counts (1,4)")
    add("--clients", type=int, default=50, help="clients the payments are spread over (50)")
    add(
        "--batch-size",
        type=int,
        default=_DEFAULTS["scheduler_batch_size"].default,
        help="BILLING_SCHEDULER_BATCH_SIZE (default: the runner's own default)",
    )
    add(
        "--concurrency",
        type=int,
        default=_DEFAULTS["scheduler_concurrency"].default,
        help="BILLING_SCHEDULER_CONCURRENCY per runner (default: the runner's own default)",
    )
    add(
        "--ledger",
        choices=get_args(LedgerMode),
        default="file",
        help="file: one SQLite ledger shared by all runners, as shipped (counts duplicate "
        "charges); wal: the same file switched to WAL first; memory: one private ledger per "
        "runner, to see what the shared one costs (duplicates then come from the database)",
    )
    add(
        "--database-url",
        default=None,
        help="an EMPTY database to use instead of a fresh PostgreSQL one; 'sqlite' for a "
        "throwaway SQLite file",
    )
    add(
        "--postgres-server",
        default=DEFAULT_SERVER,
        help="where the fresh database is created and dropped (default: %(default)s)",
    )
    add(
        "--repeat",
        type=int,
        default=1,
        help="run every configuration this many times, interleaved; the ratio uses the best",
    )
    add("--json", dest="json_path", type=Path, default=None, help="also write the results here")
    add(
        "--rate-limit",
        type=float,
        default=None,
        help="BILLING_GATEWAY_RATE_LIMIT_PER_SECOND for every runner (default: no limit)",
    )
    add(
        "--redis-url",
        default=None,
        help="BILLING_REDIS_URL: with --rate-limit, one bucket shared by all runners",
    )
    return parser


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = _parser()
    args = parser.parse_args(argv)
    if min(args.payments, args.clients, args.repeat) < 1 or args.latency < 0:
        parser.error("--payments, --clients and --repeat must be positive, --latency not negative")
    try:  # the runners would refuse these later, one traceback each
        Settings(
            scheduler_batch_size=args.batch_size,
            scheduler_concurrency=args.concurrency,
            fake_gateway_latency_seconds=args.latency,
        )
    except ValidationError as exc:
        parser.error(str(exc))
    return Options(
        payments=args.payments,
        latency=args.latency,
        runners=args.runners,
        clients=min(args.clients, args.payments),
        batch_size=args.batch_size,
        concurrency=args.concurrency,
        ledger=args.ledger,
        database_url=args.database_url,
        postgres_server=args.postgres_server,
        repeat=args.repeat,
        json_path=args.json_path,
        rate_limit=args.rate_limit,
        redis_url=args.redis_url,
    )


# --- the database ----------------------------------------------------------------------------


async def _admin(server: str, sql: str) -> None:
    url = make_url(server).set(drivername="postgresql", database="postgres")
    conn = await asyncpg.connect(url.render_as_string(hide_password=False))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.contextmanager
def bench_database(options: Options, workdir: Path) -> Iterator[str]:
    """The database URL to use, and whatever cleanup it needs afterwards."""
    if options.database_url == "sqlite":
        yield f"sqlite+aiosqlite:///{workdir / 'bench.db'}"  # removed with the workdir
        return
    if options.database_url is not None:
        with _sqlite_file_removed_if_new(options.database_url):
            yield options.database_url
        return
    name = f"bench_runner_{os.getpid()}"
    asyncio.run(_admin(options.postgres_server, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(options.postgres_server).set(database=name).render_as_string(False)
    finally:
        drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
        asyncio.run(_admin(options.postgres_server, drop))


@contextlib.contextmanager
def _sqlite_file_removed_if_new(database_url: str) -> Iterator[None]:
    url = make_url(database_url)
    path = Path(url.database) if url.get_backend_name() == "sqlite" and url.database else None
    created = path is not None and str(path) != ":memory:" and not path.exists()
    try:
        yield
    finally:
        if created and path is not None:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)


def bench_settings(database_url: str, workdir: Path) -> Settings:
    return Settings(
        env="test",
        database_url=database_url,
        data_dir=workdir,
        jwt_secret=JWT_SECRET,
        log_level="WARNING",
    )


@contextlib.asynccontextmanager
async def connection(settings: Settings) -> AsyncIterator[AsyncConnection]:
    """One transaction on a short-lived engine (each phase runs under its own event loop)."""
    engine = create_engine(settings)
    try:
        async with engine.begin() as conn:
            yield conn
    finally:
        await engine.dispose()


async def _scalar(conn: AsyncConnection, stmt: Any) -> Any:
    return (await conn.execute(stmt)).scalar_one()


async def _empty_tables(conn: AsyncConnection) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    if conn.dialect.name == "postgresql":
        await conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        return
    for table in tables:
        await conn.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - our own table names


@dataclass(frozen=True, slots=True)
class Server:
    kind: str
    version: str
    host: str
    pid: int | None  # the PostgreSQL postmaster, when it runs on this machine


async def inspect_server(settings: Settings) -> Server:
    """Refuses a database with data in it; says what the server is."""
    async with connection(settings) as conn:
        if await _scalar(conn, select(func.count()).select_from(Tenant)):
            raise SystemExit(
                "error: the database already has data, and the benchmark empties its tables; "
                "give it an empty database (or leave out --database-url)"
            )
        if conn.dialect.name != "postgresql":
            version = await _scalar(conn, text("SELECT sqlite_version()"))
            return Server("sqlite", f"SQLite {version}", "a local file", None)
        version = str(await _scalar(conn, text("SELECT version()"))).split(",")[0]
        backend = int(await _scalar(conn, text("SELECT pg_backend_pid()")))
        host = make_url(settings.resolved_database_url).host or "local socket"
        return Server("postgresql", version, host, _parent_pid(backend))


async def leave_empty(settings: Settings) -> None:
    async with connection(settings) as conn:
        await _empty_tables(conn)


# --- seeding ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Payer:
    client_id: uuid.UUID
    method_id: uuid.UUID


def _method_row(tenant_id: uuid.UUID, client_id: uuid.UUID, card: AttachedMethod) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "tenant_id": tenant_id,
        "client_id": client_id,
        "type": card.type,
        "brand": card.brand,
        "last4": card.last4,
        "exp_month": card.exp_month,
        "exp_year": card.exp_year,
        "fingerprint": card.fingerprint,
        "gateway_reference": card.reference,
        "is_default": True,
    }


async def _insert_payers(conn: AsyncConnection, tenant_id: uuid.UUID, clients: int) -> list[Payer]:
    """Clients with a customer and one `tok_visa` card each, both made by the fake gateway so
    the references are in its own format."""
    gateway = FakeGateway()  # in memory, no latency: only its references are wanted here
    client_rows: list[dict[str, Any]] = []
    method_rows: list[dict[str, Any]] = []
    for i in range(clients):
        name = f"Bench client {i + 1:03d}"
        customer = await gateway.create_customer(name=name, email=None, metadata={})
        card = await gateway.attach_method(token="tok_visa", customer_reference=customer)
        client_id = uuid.uuid4()
        client_rows.append(
            {
                "id": client_id,
                "tenant_id": tenant_id,
                "name": name,
                "gateway_customer_reference": customer,
            }
        )
        method_rows.append(_method_row(tenant_id, client_id, card))
    await conn.execute(insert(Client), client_rows)
    await conn.execute(insert(PaymentMethod), method_rows)
    return [Payer(c["id"], m["id"]) for c, m in zip(client_rows, method_rows, strict=True)]


def _due_rows(
    tenant_id: uuid.UUID, payer: Payer, number: int, now: datetime
) -> tuple[dict[str, Any], dict[str, Any]]:
    """An open invoice and a scheduled payment for all of it, due an hour ago."""
    invoice_id, amount = uuid.uuid4(), 1_000 + (number * 37) % 9_000
    invoice = {
        "id": invoice_id,
        "tenant_id": tenant_id,
        "client_id": payer.client_id,
        "number": f"INV-{number:06d}",
        "status": "open",
        "currency": CURRENCY,
        "issued_on": now.date(),
        "due_date": now.date(),
        "total": amount,
        "amount_paid": 0,
        "amount_reserved": 0,
    }
    scheduled = {
        "id": uuid.uuid4(),
        "tenant_id": tenant_id,
        "client_id": payer.client_id,
        "invoice_id": invoice_id,
        "payment_method_id": payer.method_id,
        "amount": amount,
        "currency": CURRENCY,
        "scheduled_for": now.date(),
        "status": "scheduled",
        "origin": "manual",
        "attempts": 0,
        "next_attempt_at": now - timedelta(hours=1) + timedelta(milliseconds=number),
    }
    return invoice, scheduled


async def _insert_due_payments(
    conn: AsyncConnection, tenant_id: uuid.UUID, payers: list[Payer], count: int
) -> None:
    now = datetime.now(UTC)
    rows = [_due_rows(tenant_id, payers[i % len(payers)], i + 1, now) for i in range(count)]
    await conn.execute(insert(Invoice), [invoice for invoice, _ in rows])
    await conn.execute(insert(ScheduledPayment), [scheduled for _, scheduled in rows])


async def reseed(settings: Settings, payments: int, clients: int) -> float:
    """Empty every table and seed a fresh queue; returns the seconds it took."""
    started = time.perf_counter()
    async with connection(settings) as conn:
        await _empty_tables(conn)
        tenant_id = uuid.uuid4()
        tenant = {"id": tenant_id, "name": "Bench MSP", "next_invoice_number": payments + 1}
        await conn.execute(insert(Tenant), [tenant])
        payers = await _insert_payers(conn, tenant_id, clients)
        await _insert_due_payments(conn, tenant_id, payers, payments)
    async with connection(settings) as conn:
        await conn.execute(text("ANALYZE"))  # fresh statistics for the runner's queue query
    return time.perf_counter() - started


# --- the fake gateway's ledger ---------------------------------------------------------------


def prepare_ledger(mode: LedgerMode, path: Path) -> Path | None:
    """A fresh shared ledger file (None: each runner keeps a private one in memory)."""
    if mode == "memory":
        return None
    ledger_summary(str(path))  # creates the schema before the runners race to
    if mode == "wal":
        # The fake now puts its ledger in WAL mode itself, so this equals `file`; the mode
        # stays so results recorded with it still read the same.
        conn = sqlite3.connect(path)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
        finally:
            conn.close()
    return path


@dataclass(frozen=True, slots=True)
class LedgerCounts:
    charges: int  # charges that moved money
    calls: int  # every charge() call, replays included
    distinct_keys: int
    charged_schedules: int  # scheduled payments those charges were for


def ledger_counts(path: Path) -> LedgerCounts:
    """The gateway's side. Keys are `scheduled_<id>_<attempt>`, unique in the ledger, so one
    payment charged on two attempts would show as two charges for one scheduled payment."""
    summary = ledger_summary(str(path))
    charges = FakeGateway(GatewaySettings(fake_ledger_path=str(path))).charges
    schedules = {c.idempotency_key.rsplit("_", 1)[0] for c in charges}
    return LedgerCounts(
        charges=summary["charges"],
        calls=summary["calls"],
        distinct_keys=summary["distinct_keys"],
        charged_schedules=len(schedules),
    )


# --- CPU accounting (Linux /proc; None elsewhere) --------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_stat(pid: int | str) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name: [0] state, [1] ppid, [11:15] times."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw.rsplit(")", 1)[1].split()


def _parent_pid(pid: int) -> int | None:
    fields = _proc_stat(pid)
    return int(fields[1]) if fields else None


def _process_tree_ticks(root: int) -> int | None:
    """CPU ticks of a process, its reaped children, and its live children with theirs: for the
    postmaster that is every backend, those that already exited included."""
    own = _proc_stat(root)
    if own is None:
        return None
    total = sum(int(v) for v in own[11:15])
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _proc_stat(entry.name)
            if fields and fields[1] == str(root):
                total += sum(int(v) for v in fields[11:15])
    return total


def _machine_ticks() -> tuple[int, int] | None:
    """(busy, total) ticks over all CPUs."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except OSError:
        return None
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


@dataclass(frozen=True, slots=True)
class CpuSample:
    children: float
    postgres: int | None
    machine: tuple[int, int] | None

    @classmethod
    def take(cls, postmaster: int | None) -> CpuSample:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        tree = _process_tree_ticks(postmaster) if postmaster else None
        return cls(usage.ru_utime + usage.ru_stime, tree, _machine_ticks())


@dataclass(frozen=True, slots=True)
class CpuUse:
    """CPU seconds spent during a run, and how busy the whole machine was."""

    runners: float
    postgres: float | None
    everything: float | None  # all processes on the machine, the runners included
    busy: float | None  # fraction of the machine's capacity

    @property
    def other(self) -> float | None:
        """Neither the runners nor a local PostgreSQL: the benchmark itself (idle meanwhile), and
        anything else that happened to run on the machine at the time."""
        if self.everything is None:
            return None
        # A server elsewhere (or SQLite, inside the runners) adds nothing here.
        return max(0.0, self.everything - self.runners - (self.postgres or 0.0))

    @classmethod
    def between(cls, before: CpuSample, after: CpuSample) -> CpuUse:
        postgres = None
        if before.postgres is not None and after.postgres is not None:
            postgres = (after.postgres - before.postgres) / _TICK
        everything = busy = None
        if before.machine and after.machine and after.machine[1] > before.machine[1]:
            used, capacity = (a - b for a, b in zip(after.machine, before.machine, strict=True))
            everything, busy = used / _TICK, used / capacity
        return cls(after.children - before.children, postgres, everything, busy)


# --- running the runners ---------------------------------------------------------------------


def runner_env(settings: Settings, options: Options, ledger: Path | None) -> dict[str, str]:
    inherited = {
        k: v for k, v in os.environ.items() if not k.startswith("BILLING_") and k != "DATABASE_URL"
    }
    env = inherited | {
        "DATABASE_URL": settings.resolved_database_url,
        "BILLING_ENV": "test",
        "BILLING_JWT_SECRET": JWT_SECRET,
        "BILLING_DATA_DIR": str(settings.data_dir),
        "BILLING_LOG_LEVEL": "WARNING",
        "BILLING_PAYMENT_GATEWAY": "fake",
        "BILLING_FAKE_GATEWAY_LATENCY_SECONDS": str(options.latency),
        "BILLING_SCHEDULER_BATCH_SIZE": str(options.batch_size),
        "BILLING_SCHEDULER_CONCURRENCY": str(options.concurrency),
        "BILLING_DATABASE_POOL_SIZE": str(options.pool_size),
    }
    if ledger is not None:
        env["BILLING_FAKE_GATEWAY_LEDGER"] = str(ledger)
    if options.rate_limit is not None:
        env["BILLING_GATEWAY_RATE_LIMIT_PER_SECOND"] = str(options.rate_limit)
    if options.redis_url is not None:
        env["BILLING_REDIS_URL"] = options.redis_url
    return env


@dataclass(frozen=True, slots=True)
class RunnerOutput:
    returncode: int
    stdout: str
    stderr: str

    @property
    def claimed(self) -> int | None:
        found = _REPORT_RE.search(self.stdout)
        return int(found["claimed"]) if found else None


def run_runners(count: int, env: dict[str, str], logdir: Path) -> list[RunnerOutput]:
    """Start `count` runners at once and wait for all of them; whatever interrupts the wait,
    the runners are stopped before this returns."""
    profiles = os.environ.get("BENCH_PROFILE_DIR")
    procs: list[tuple[subprocess.Popen[bytes], Path, Path]] = []
    try:
        for i in range(count):
            out, err = logdir / f"runner-{i}.out", logdir / f"runner-{i}.err"
            # BENCH_PROFILE_DIR=dir: each runner under cProfile, its profile saved there.
            profile = ["-m", "cProfile", "-o", f"{profiles}/runner-{count}-{i}.prof"]
            argv = [sys.executable, *(profile if profiles else []), "-m", "app.cli"]
            argv += ["run-scheduler", "--once"]
            with out.open("wb") as stdout, err.open("wb") as stderr:
                # A session of their own: Ctrl-C reaches only us, and we stop them below.
                proc = subprocess.Popen(
                    argv,
                    cwd=PROJECT_ROOT,
                    env=env,
                    stdout=stdout,
                    stderr=stderr,
                    start_new_session=True,
                )
            procs.append((proc, out, err))
        deadline = time.monotonic() + RUNNER_TIMEOUT_SECONDS
        for proc, _, _ in procs:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
    finally:
        _stop([proc for proc, _, _ in procs])
    return [RunnerOutput(p.returncode, o.read_text(), e.read_text()) for p, o, e in procs]


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    running = [p for p in procs if p.poll() is None]
    for proc in running:
        proc.terminate()
    for proc in running:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- one configuration -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    statuses: dict[str, int]
    succeeded_payments: int
    charged_schedules: int
    paid_invoices: int
    drain_seconds: float | None  # first payment created .. last scheduled payment finished


async def database_outcome(settings: Settings) -> Outcome:
    count = func.count()
    succeeded = Payment.status == "succeeded"
    async with connection(settings) as conn:
        by_status = await conn.execute(
            select(ScheduledPayment.status, count).group_by(ScheduledPayment.status)
        )
        first = await _scalar(conn, select(func.min(Payment.created_at)))
        last = await _scalar(
            conn,
            select(func.max(ScheduledPayment.updated_at)).where(
                ScheduledPayment.status != "scheduled"
            ),
        )
        charged = select(func.count(func.distinct(Payment.scheduled_payment_id))).where(succeeded)
        return Outcome(
            statuses={status: int(n) for status, n in by_status.all()},
            succeeded_payments=await _scalar(conn, select(count).where(succeeded)),
            charged_schedules=await _scalar(conn, charged),
            paid_invoices=await _scalar(conn, select(count).where(Invoice.status == "paid")),
            drain_seconds=(last - first).total_seconds() if first and last else None,
        )


@dataclass
class RunResult:
    runners: int
    round: int
    payments: int
    seconds: float  # all runners started .. all exited
    seed_seconds: float
    drain_seconds: float | None
    charges: int
    charge_calls: int | None
    duplicate_charges: int
    duplicates_from: str
    statuses: dict[str, int]
    runner_claims: list[int | None]
    cpu_seconds: dict[str, float | None]
    machine_cpu_busy: float | None
    load_average_before: float  # 1-minute: what else the machine was doing as the run began
    problems: list[str] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        return self.payments / self.seconds

    @property
    def drain_throughput(self) -> float | None:
        return self.payments / self.drain_seconds if self.drain_seconds else None


def _problems(
    payments: int, outcome: Outcome, outputs: list[RunnerOutput], duplicates: int
) -> list[str]:
    found = [
        f"runner {i} exited {out.returncode}:\n" + "\n".join(out.stderr.strip().splitlines()[-15:])
        for i, out in enumerate(outputs)
        if out.returncode != 0
    ]
    if duplicates:
        found.append(f"{duplicates} duplicate charge(s)")
    if outcome.statuses != {"succeeded": payments}:
        found.append(f"scheduled payments not all succeeded: {outcome.statuses}")
    if outcome.succeeded_payments != payments or outcome.paid_invoices != payments:
        found.append(
            f"{outcome.succeeded_payments} succeeded payments and {outcome.paid_invoices} paid "
            f"invoices for {payments} scheduled payments"
        )
    return found


def run_config(
    settings: Settings, options: Options, server: Server, runners: int, round_: int, workdir: Path
) -> RunResult:
    seed_seconds = asyncio.run(reseed(settings, options.payments, options.clients))
    ledger = prepare_ledger(options.ledger, workdir / f"ledger-{runners}-{round_}.db")
    env = runner_env(settings, options, ledger)

    load = os.getloadavg()[0]
    before = CpuSample.take(server.pid)
    started = time.perf_counter()
    outputs = run_runners(runners, env, workdir)
    seconds = time.perf_counter() - started
    cpu = CpuUse.between(before, CpuSample.take(server.pid))

    outcome = asyncio.run(database_outcome(settings))
    duplicates = outcome.succeeded_payments - outcome.charged_schedules
    charges, calls, source = outcome.succeeded_payments, None, "database"
    if ledger is not None:
        counts = ledger_counts(ledger)
        charges, calls, source = counts.charges, counts.calls, "gateway ledger and database"
        duplicates = max(duplicates, counts.charges - counts.charged_schedules)
    return RunResult(
        runners=runners,
        round=round_,
        payments=options.payments,
        seconds=seconds,
        seed_seconds=seed_seconds,
        drain_seconds=outcome.drain_seconds,
        charges=charges,
        charge_calls=calls,
        duplicate_charges=duplicates,
        duplicates_from=source,
        statuses=outcome.statuses,
        runner_claims=[out.claimed for out in outputs],
        cpu_seconds={"runners": cpu.runners, "postgres": cpu.postgres, "other": cpu.other},
        machine_cpu_busy=cpu.busy,
        load_average_before=load,
        problems=_problems(options.payments, outcome, outputs, duplicates),
    )


# --- reporting -------------------------------------------------------------------------------


def _cells(values: Sequence[object], widths: Sequence[int]) -> str:
    return " ".join(str(v).rjust(w) for v, w in zip(values, widths, strict=True))


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


MAIN_COLUMNS = ("runners", "payments", "seconds", "payments/s", "charges", "duplicate charges")
MORE_COLUMNS = (
    "runners",
    "round",
    "drain/s",
    "CPU s: runners",
    "postgres",
    "other",
    "machine busy",
    "load",
)


def best_throughput(results: list[RunResult]) -> dict[int, float]:
    """The best payments/s of each runner count, in the order the counts were given; the least
    disturbed round is the best estimate of what the code can do on a shared machine."""
    best: dict[int, float] = {}
    for r in results:
        best[r.runners] = max(best.get(r.runners, 0.0), r.throughput)
    return best


def _print_throughput(results: list[RunResult]) -> None:
    widths = [len(c) for c in MAIN_COLUMNS]
    print("\n" + _cells(MAIN_COLUMNS, widths))
    for r in results:
        values = (r.runners, r.payments, f"{r.seconds:.2f}", f"{r.throughput:.1f}", r.charges)
        print(_cells((*values, r.duplicate_charges), widths))
    best = best_throughput(results)
    first, *others = best
    label = " (best of each)" if len(results) > len(best) else ""
    for runners in others:
        ratio = best[runners] / best[first]
        print(f"\n{runners} runners vs {first}{label}: {ratio:.2f}x the throughput")


def _print_where_time_went(results: list[RunResult]) -> None:
    widths = [len(c) for c in MORE_COLUMNS]
    print("\n" + _cells(MORE_COLUMNS, widths) + "  claims per runner")
    for r in results:
        cpu = r.cpu_seconds
        values = (
            r.runners,
            r.round,
            _fmt(r.drain_throughput, ".1f"),
            _fmt(cpu["runners"], ".1f"),
            _fmt(cpu["postgres"], ".1f"),
            _fmt(cpu["other"], ".1f"),
            _fmt(r.machine_cpu_busy, ".0%"),
            f"{r.load_average_before:.1f}",
        )
        print(_cells(values, widths) + f"  {r.runner_claims}")


def print_results(results: list[RunResult], options: Options, server: Server) -> None:
    _print_throughput(results)
    _print_where_time_went(results)
    if server.kind == "sqlite" and max(options.runners) > 1:
        print("\n" + SQLITE_NOTE)
    # Start-up (about 1.5 s of CPU per runner process) included: at a few thousand
    # payments it is a visible share.
    per_payment = [
        f"{r.runners} runner(s) {r.cpu_seconds['runners'] / r.payments * 1000:.1f} ms"
        for r in results
        if r.cpu_seconds["runners"] is not None and r.payments
    ]
    print("\nrunner CPU per charged payment (start-up included): " + ", ".join(per_payment))
    # The ratio last, as every benchmark prints it.
    best = best_throughput(results)
    first, *others = best
    for runners in others:
        print(
            f"P4 ratio: {runners} runners = {best[runners] / best[first]:.2f}x {first} "
            f"(latency {options.latency * 1000:.0f} ms; target >= 3.5x at 200 ms)"
        )
    for r in results:
        for problem in r.problems:
            print(f"FAIL ({r.runners} runners): {problem}", file=sys.stderr)


def machine() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": model,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_at_end": [round(v, 2) for v in os.getloadavg()],
    }


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def write_json(path: Path, results: list[RunResult], options: Options, server: Server) -> None:
    best = best_throughput(results)
    first = next(iter(best))
    document = {
        "benchmark": "bench/runner_throughput.py",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "database": {"kind": server.kind, "version": server.version, "host": server.host},
        "settings": {
            "payments": options.payments,
            "runners": list(options.runners),
            "fake_gateway_latency_seconds": options.latency,
            "scheduler_batch_size": options.batch_size,
            "scheduler_concurrency": options.concurrency,
            "database_pool_size": options.pool_size,
            "clients": options.clients,
            "ledger": options.ledger,
            "repeat": options.repeat,
            "gateway_rate_limit_per_second": options.rate_limit,
            "shared_rate_limit": options.redis_url is not None,
        },
        "best_payments_per_second": {str(n): round(v, 2) for n, v in best.items()},
        "ratio_of_best_to_first": {str(n): round(v / best[first], 3) for n, v in best.items()},
        "results": [asdict(r) | {"payments_per_second": round(r.throughput, 2)} for r in results],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_rounded(document), indent=2) + "\n")
    print(f"\nwrote {path}")


# --- main ------------------------------------------------------------------------------------


def describe(options: Options, server: Server) -> str:
    return (
        f"{server.version}; {options.payments} payments per run; fake gateway latency "
        f"{options.latency * 1000:g} ms; batch {options.batch_size}, concurrency "
        f"{options.concurrency} per runner; ledger: {options.ledger}; gateway rate limit: "
        + (
            "none"
            if options.rate_limit is None
            else f"{options.rate_limit:g}/s "
            + ("shared (Redis)" if options.redis_url else "per runner")
        )
    )


def benchmark(options: Options, workdir: Path) -> int:
    with bench_database(options, workdir) as database_url:
        settings = bench_settings(database_url, workdir)
        command.upgrade(alembic_config(settings), "head")
        server = asyncio.run(inspect_server(settings))
        print(describe(options, server), flush=True)
        results: list[RunResult] = []
        try:
            for round_ in range(1, options.repeat + 1):
                for runners in options.runners:
                    print(f"  {runners} runner(s), round {round_}...", flush=True)
                    results.append(run_config(settings, options, server, runners, round_, workdir))
        finally:
            if options.database_url not in (None, "sqlite"):
                asyncio.run(leave_empty(settings))
    print_results(results, options, server)
    if options.json_path is not None:
        write_json(options.json_path, results, options, server)
    return 1 if any(r.problems for r in results) else 0


def _terminate(signum: int, frame: types.FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through every cleanup, as Ctrl-C does


def run_in_workdir(run: Callable[[Path], int], *, prefix: str, processes: str) -> int:
    """A benchmark in a scratch directory removed afterwards; SIGTERM and Ctrl-C unwind
    through its cleanups (its `processes` stopped, its database dropped)."""
    signal.signal(signal.SIGTERM, _terminate)
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        return run(workdir)
    except KeyboardInterrupt:
        print(f"\ninterrupted; {processes} stopped, database dropped", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    return run_in_workdir(
        lambda workdir: benchmark(options, workdir), prefix="bench-runner-", processes="runners"
    )


if __name__ == "__main__":
    raise SystemExit(main())
