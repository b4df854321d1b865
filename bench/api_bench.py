"""API benchmarks, in one process against a fresh PostgreSQL database: P1, P2, P3, the
sign-in burst and P5 of issue 16. Each prints its figures and its ratio last.

The app is called in process (httpx's ASGI transport, no HTTP server and no network), so
the figures are the app's own cost: routing, dependencies, validation, the ORM, the
database round trips. See bench/README.md for what each measures and its target.

    .venv/bin/python bench/api_bench.py all --quick     # what `python3 dev.py bench` runs
    .venv/bin/python bench/api_bench.py p3 --rows 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
from alembic import command
from httpx import ASGITransport, AsyncClient
from sqlalchemy import event, select
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.cli import alembic_config
from app.core.config import Settings
from app.core.pagination import cursor_key, encode_cursor
from app.core.security import decode_access_token
from app.main import create_app
from app.models import Invoice, Payment, ScheduledPayment, Ticket
from tests.factories import PASSWORD, Factory, World
from tests.perf.bulk import History, seed_history
from tests.perf.test_statements_per_request import LISTS, counting

SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432"
JWT_SECRET = "bench-signing-key-" + "x" * 40


# --- set-up ---------------------------------------------------------------------------------


async def _admin(sql: str) -> None:
    url = make_url(SERVER).set(drivername="postgresql", database="postgres")
    conn = await asyncpg.connect(url.render_as_string(hide_password=False))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


class Bench:
    """A fresh database with the schema, the app on it, and a tenant with a client."""

    def __init__(self, settings: Settings, app: Any, http: AsyncClient, world: World) -> None:
        self.settings = settings
        self.app = app
        self.http = http
        self.world = world
        self.seeded = 0
        self.sessionmaker = app.state.sessionmaker

    async def grow(self, rows: int) -> None:
        """The client's history up to `rows` rows of each kind."""
        if rows <= self.seeded:
            return
        step = 20_000
        while self.seeded < rows:
            n = min(step, rows - self.seeded)
            async with self.sessionmaker() as session, session.begin():
                await seed_history(
                    session,
                    self.world.tenant.id,
                    self.world.client.id,
                    History(rows=n, live=5 if self.seeded == 0 else 0),
                    start=_start_of(self.seeded),
                    first_ticket_number=self.seeded + 1,
                )
            self.seeded += n
        # Committed: statistics written in a transaction that is rolled back are lost, and the
        # planner would see a few rows where there are a million.
        async with self.app.state.engine.begin() as conn:
            await conn.exec_driver_sql("ANALYZE")

    async def get(self, url: str, who: str = "contact") -> Any:
        headers = (self.world.contact if who == "contact" else self.world.staff).headers
        response = await self.http.get(url, headers=headers)
        assert response.status_code == 200, f"{url}: {response.status_code} {response.text}"
        return response


def _start_of(already: int) -> Any:
    """Older batches first: each batch ends where the next, newer one begins."""
    from datetime import timedelta

    from app.core.clock import utcnow

    return utcnow() - timedelta(minutes=10_000_000 - already)


@asynccontextmanager
async def bench() -> AsyncIterator[Bench]:
    name = f"bench_api_{os.getpid()}"
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(
                env="test",
                database_url=make_url(SERVER).set(database=name).render_as_string(False),
                data_dir=Path(tmp),
                jwt_secret=JWT_SECRET,
                log_level="WARNING",
                redis_url=None,
            )
            await asyncio.to_thread(command.upgrade, alembic_config(settings), "head")
            app = create_app(settings)
            transport = ASGITransport(app=app)
            async with AsyncClient(transport=transport, base_url="http://bench") as http:
                factory = Factory(app.state.sessionmaker, settings, http)
                world = await factory.world()
                try:
                    yield Bench(settings, app, http, world)
                finally:
                    await app.state.engine.dispose()
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def timed(call: Callable[[], Awaitable[Any]], n: int) -> list[float]:
    """Seconds per call, n calls one after another."""
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        await call()
        out.append(time.perf_counter() - t0)
    return out


def asgi_get(app: Any, url: str, headers: dict[str, str]) -> Callable[[], Awaitable[None]]:
    """GET `url` straight through the ASGI interface: no HTTP client in the measurement
    (httpx's ASGI transport costs about as much CPU as the app itself)."""
    path, _, query = url.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("bench", 80),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def call() -> None:
        status = 0

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await app(dict(scope), receive, send)
        assert status == 200, status

    return call


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


# --- P1: the app against bare asyncpg issuing the same statements ------------------------------


async def p1(b: Bench, seconds: float, rounds: int) -> dict[str, Any]:
    await b.grow(100)
    async with b.sessionmaker() as session:
        invoice_id = (
            (
                await session.execute(
                    select(Invoice.id).where(Invoice.client_id == b.world.client.id)
                )
            )
            .scalars()
            .first()
        )
    url = f"/api/v1/invoices/{invoice_id}"
    await b.get(url)
    captured: list[tuple[str, Any]] = []

    def record(_c: Any, _cur: Any, statement: str, parameters: Any, *_: Any) -> None:
        captured.append((statement, parameters))

    event.listen(b.app.state.engine.sync_engine, "before_cursor_execute", record)
    await b.get(url)
    event.remove(b.app.state.engine.sync_engine, "before_cursor_execute", record)
    dsn = make_url(b.settings.resolved_database_url).set(drivername="postgresql")
    pool = await asyncpg.create_pool(
        dsn.render_as_string(hide_password=False), min_size=1, max_size=2
    )
    token = b.world.contact.token

    async def bare(statements: list[tuple[str, Any]], decode: bool) -> None:
        if decode:
            decode_access_token(b.settings, token)
        async with pool.acquire() as conn:
            for sql, params in statements:
                await conn.fetch(sql, *params)

    same, minimal = captured, captured[1:]  # minimal: the invoice's own, not the caller's
    contenders: dict[str, Callable[[], Awaitable[Any]]] = {
        "app": asgi_get(b.app, url, b.world.contact.headers),
        "bare, same statements": lambda: bare(same, True),
        "bare, invoice's statements only": lambda: bare(minimal, False),
    }
    results: dict[str, dict[str, float]] = {k: {"rps": 0.0} for k in contenders}
    for _ in range(rounds):  # interleaved; the best round of each counts
        for label, call in contenders.items():
            cpu0, t0, n, lat = time.process_time(), time.perf_counter(), 0, []
            while time.perf_counter() - t0 < seconds:
                s = time.perf_counter()
                await call()
                lat.append(time.perf_counter() - s)
                n += 1
            wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            if n / wall > results[label]["rps"]:
                lat.sort()
                results[label] = {
                    "rps": n / wall,
                    "p99_ms": lat[int(len(lat) * 0.99) - 1] * 1000,
                    "cpu_ms_per_request": cpu / n * 1000,
                }
    await pool.close()
    print(
        f"P1 GET {url.rsplit('/', 1)[0]}/{{id}}, one connection at a time, {len(same)} statements"
    )
    for label, r in results.items():
        print(
            f"  {label:34} {r['rps']:8.0f} req/s  p99 {r['p99_ms']:6.2f} ms"
            f"  CPU {r['cpu_ms_per_request']:.2f} ms/req"
        )
    ratio_same = results["app"]["rps"] / results["bare, same statements"]["rps"]
    ratio_min = results["app"]["rps"] / results["bare, invoice's statements only"]["rps"]
    print(
        f"P1 ratio: app = {ratio_same:.2f}x the same-statements app (target >= 0.6), "
        f"{ratio_min:.2f}x the minimal one (target >= 0.25)"
    )
    return {"results": results, "ratio_same": ratio_same, "ratio_minimal": ratio_min}


# --- P2: statements per request ---------------------------------------------------------------


async def p2(b: Bench, sizes: list[int]) -> dict[str, Any]:
    report: dict[str, dict[str, int]] = {}
    for size in sizes:
        await b.grow(size)
        for path in LISTS:
            for limit in (10, 50, 200):
                url = f"{path}?limit={limit}"
                await b.get(url, "staff")
                with counting(b.app.state.engine) as count:
                    await b.get(url, "staff")
                report.setdefault(path, {})[f"{size}/{limit}"] = count.n
    worst = max(max(c.values()) for c in report.values())
    varying = [p for p, c in report.items() if len(set(c.values())) > 1]
    print(f"P2 statements per request (staff), data sizes {sizes}, page sizes 10/50/200:")
    for path, counts in report.items():
        print(f"  {path:32} {sorted(set(counts.values()))}")
    print(
        f"P2 ratio: at most {worst} statements per request (target <= 3), "
        f"{'constant' if not varying else 'varying in ' + ', '.join(varying)}"
    )
    return {"report": report, "max": worst, "varying": varying}


# --- P3: keyset depth and filters -------------------------------------------------------------

P3_CASES = [
    ("invoices", "", "contact"),
    ("invoices", "status=open", "contact"),
    ("invoices", "status=paid", "contact"),
    ("invoices", "overdue=true", "contact"),
    ("invoices", "", "staff"),
    ("invoices", "status=paid", "staff"),
    ("payments", "", "contact"),
    ("payments", "status=succeeded", "contact"),
    ("payments", "", "staff"),
    ("scheduled-payments", "status=succeeded", "contact"),
    ("scheduled-payments", "", "staff"),
    ("tickets", "status=closed", "contact"),
    ("tickets", "status=open", "contact"),
    ("tickets", "", "staff"),
]
MODELS = {
    "invoices": Invoice,
    "payments": Payment,
    "scheduled-payments": ScheduledPayment,
    "tickets": Ticket,
}


async def p3(b: Bench, rows: int, repeat: int) -> dict[str, Any]:
    await b.grow(rows)
    depth = int(rows * 0.99)
    out: dict[str, dict[str, float]] = {}
    for kind, query, who in P3_CASES:
        model = MODELS[kind]
        async with b.sessionmaker() as session:
            row = (
                await session.execute(
                    select(model.created_at, model.id)
                    .where(model.client_id == b.world.client.id)
                    .order_by(model.created_at.desc(), model.id.desc())
                    .offset(depth)
                    .limit(1)
                )
            ).one()
        # Signed as the app signs its cursors.
        deep = encode_cursor([row[0], row[1]], cursor_key(b.settings.signing_key))
        base = f"/api/v1/{kind}?limit=50&{query}"
        await b.get(base, who)
        first_url, deep_url = base, f"{base}&cursor={deep}"
        first = statistics.median(await timed(lambda u=first_url, w=who: b.get(u, w), repeat))
        deep_t = statistics.median(await timed(lambda u=deep_url, w=who: b.get(u, w), repeat))
        out[f"{who} {kind}?{query}"] = {"first": first, "deep": deep_t, "ratio": deep_t / first}
    print(
        f"P3 keyset paging, {rows:,} rows per kind for one client, deep = row {depth:,}, "
        f"median of {repeat}, page of 50:"
    )
    for label, r in out.items():
        print(
            f"  {label:42} first {ms(r['first'])}  deep {ms(r['deep'])}"
            f"  deep/first {r['ratio']:.2f}"
        )
    worst = max(r["ratio"] for r in out.values())
    sparse = out["contact invoices?overdue=true"]["first"] / out["contact invoices?"]["first"]
    staff = out["staff invoices?"]["first"] / out["contact invoices?"]["first"]
    print(
        f"P3 ratio: deep/first at most {worst:.2f} (target <= 1.3); sparse filter (overdue, "
        f"0 rows) / unfiltered first page {sparse:.2f} (target <= 2); staff tenant-wide / "
        f"client's {staff:.2f} (target <= 2)"
    )
    return {
        "rows": rows,
        "cases": out,
        "worst_deep_ratio": worst,
        "sparse_ratio": sparse,
        "staff_ratio": staff,
    }


# --- the sign-in burst ------------------------------------------------------------------------


async def signin(b: Bench, burst: int, samples: int) -> dict[str, Any]:
    await b.grow(100)
    url = "/api/v1/invoices?limit=10"
    await b.get(url)
    alone = statistics.median(await timed(lambda: b.get(url), samples))

    async def sign_in() -> None:
        await b.http.post(
            "/api/v1/auth/token",
            data={"username": b.world.staff.user.email, "password": PASSWORD},
        )

    burst_tasks = [asyncio.create_task(sign_in()) for _ in range(burst)]
    during = []
    while not all(t.done() for t in burst_tasks) or len(during) < 5:
        during.extend(await timed(lambda: b.get(url), 1))
        if all(t.done() for t in burst_tasks) and len(during) >= 5:
            break
    await asyncio.gather(*burst_tasks, return_exceptions=True)
    p50 = statistics.median(during)
    print(
        f"sign-in burst: GET {url} p50 alone {ms(alone)}, during {burst} sign-ins at once "
        f"{ms(p50)} ({len(during)} reads)"
    )
    print(f"sign-in burst ratio: {p50 / alone:.2f}x its p50 alone (target <= 3)")
    return {"alone": alone, "during": p50, "ratio": p50 / alone}


# --- P5: memory -------------------------------------------------------------------------------


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def p5(b: Bench, first: int, second: int) -> dict[str, Any]:
    await b.grow(300)
    urls = [
        "/api/v1/invoices?limit=50",
        "/api/v1/payments?limit=20",
        "/api/v1/tickets",
        "/api/v1/me",
        "/api/v1/scheduled-payments?status=scheduled",
    ]
    done = 0

    async def run_to(n: int) -> None:
        nonlocal done
        while done < n:
            await b.get(urls[done % len(urls)])
            done += 1

    await run_to(first)
    at_first = rss_mb()
    await run_to(second)
    at_second = rss_mb()
    growth = (at_second - at_first) / at_first
    print(
        f"P5 RSS after {first:,} mixed requests {at_first:.1f} MB,"
        f" after {second:,} {at_second:.1f} MB"
    )
    print(f"P5 ratio: growth {growth * 100:.1f}% (target < 10%)")
    return {
        "first": first,
        "second": second,
        "rss_first_mb": at_first,
        "rss_second_mb": at_second,
        "growth": growth,
    }


# --- main -------------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("which", choices=["p1", "p2", "p3", "signin", "p5", "all"])
    p.add_argument("--quick", action="store_true", help="short versions (see bench/README.md)")
    p.add_argument("--rows", type=int, help="P3: rows per kind for the client")
    p.add_argument("--json", type=Path, help="also write the figures as JSON")
    return p


async def main(args: argparse.Namespace) -> int:
    quick = args.quick
    figures: dict[str, Any] = {"quick": quick, "load": os.getloadavg()}
    which = ["p1", "p2", "signin", "p5", "p3"] if args.which == "all" else [args.which]
    for name in which:
        async with bench() as b:
            if name == "p1":
                figures["p1"] = await p1(b, seconds=3 if quick else 10, rounds=3)
            elif name == "p2":
                figures["p2"] = await p2(b, [100, 2_000 if quick else 10_000])
            elif name == "p3":
                rows = args.rows or (50_000 if quick else 1_000_000)
                figures["p3"] = await p3(b, rows, repeat=5 if quick else 15)
            elif name == "signin":
                figures["signin"] = await signin(b, burst=30, samples=30)
            elif name == "p5":
                figures["p5"] = await p5(b, *((500, 5_000) if quick else (10_000, 100_000)))
        print(flush=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parser().parse_args())))
