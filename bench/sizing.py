"""Table and index sizes per month of billing, measured on PostgreSQL.

Migrates an empty database to head, writes a sample month for `--clients` clients with
`--invoices` invoices each (one tenant; every invoice issued, paid by one AutoPay scheduled
payment, with the events and webhook deliveries that a month makes), measures every table and
index with `pg_relation_size`, and scales the bytes per row to `--target-clients` (10,000 by
default). The sample is what the service writes for an invoice's life, with the column widths
it writes (UUIDs, an invoice's event `data` of the size the API lists it); the ratios below
are the assumptions, printed with the result:

    python bench/sizing.py --database-url postgresql://postgres@127.0.0.1:5432/billing_x_sizing
    python bench/sizing.py ... --json bench/baselines/sizing.json

The database must be empty; its `public` schema is dropped and made again at the end.
See bench/README.md and docs/operations.md ("Sizing").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from alembic import command
from sqlalchemy.engine import make_url

from app.cli import alembic_config
from app.core.config import Settings

LINES_PER_INVOICE = 5
# Per invoice: invoice.created, invoice.issued, scheduled_payment.created, payment.pending,
# payment.succeeded, invoice.paid, scheduled_payment.succeeded.
EVENTS_PER_INVOICE = 7
# One webhook endpoint per tenant, subscribed to every event: one delivery per event.
DELIVERIES_PER_EVENT = 1
# The PSA's POST /invoices and the issue call carry an Idempotency-Key; the records live
# BILLING_IDEMPOTENCY_TTL_SECONDS (a day), so only a day's worth is ever kept.
IDEMPOTENCY_RECORDS_PER_INVOICE = 2

# An invoice as events carry it (the list form), about the size the API writes.
EVENT_DATA = {
    "id": "00000000-0000-4000-8000-000000000000",
    "number": "INV-000123",
    "status": "open",
    "client_id": "00000000-0000-4000-8000-000000000000",
    "issued_on": "2026-12-01",
    "due_date": "2026-12-31",
    "currency": "USD",
    "total": 123456,
    "tax_total": 0,
    "amount_paid": 0,
    "balance": 123456,
    "external_id": "psa-123456",
    "created_at": "2026-12-01T08:00:00.000000Z",
}
EVENT_DETAILS = {"changes": {"status": {"before": "draft", "after": "open"}}}


@dataclass(frozen=True, slots=True)
class Relation:
    table: str
    rows: int
    heap_bytes: int
    toast_bytes: int
    indexes: dict[str, int]

    @property
    def index_bytes(self) -> int:
        return sum(self.indexes.values())


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


SEED = """
INSERT INTO tenants (id, created_at, name, timezone, next_invoice_number, next_ticket_number)
VALUES ($1, now(), 'Sizing MSP', 'UTC', 1, 1);
"""


async def seed(conn: asyncpg.Connection, clients: int, invoices: int) -> None:
    tenant = "00000000-0000-4000-8000-000000000001"
    await conn.execute(SEED, tenant)
    await conn.execute(
        """
        INSERT INTO service_categories (id, created_at, tenant_id, name)
        SELECT gen_random_uuid(), now(), $1, 'Category ' || g FROM generate_series(1, 5) g;
        INSERT INTO clients (id, created_at, tenant_id, name, updated_at)
        SELECT gen_random_uuid(), now(), $1, 'Client ' || g, now()
        FROM generate_series(1, $2::int) g;
        """.replace("$1", f"'{tenant}'").replace("$2", str(clients))
    )
    await conn.execute(
        f"""
        INSERT INTO payment_methods (id, created_at, tenant_id, client_id, type, brand, last4,
            exp_month, exp_year, fingerprint, gateway_reference, is_default)
        SELECT gen_random_uuid(), now(), tenant_id, id, 'card', 'visa', '4242', 12, 2030,
            md5(id::text), 'pm_' || md5(id::text), true
        FROM clients;
        INSERT INTO webhook_endpoints (id, created_at, tenant_id, url, enabled,
            secret_encrypted, next_sequence, updated_at)
        VALUES (gen_random_uuid(), now(), '{tenant}', 'https://hooks.example.com/billing', true,
            repeat('x', 120), 1, now());
        """  # noqa: S608 - only this module's constants go in
    )
    # One invoice per row of this, in random id order as the service makes them (uuid4).
    await conn.execute(
        f"""
        INSERT INTO invoices (id, created_at, tenant_id, client_id, number, status, currency,
            issued_on, due_date, memo, external_id, total, tax_total, amount_paid,
            amount_reserved, updated_at)
        SELECT gen_random_uuid(), now(), c.tenant_id, c.id,
            'INV-' || lpad((row_number() OVER ())::text, 7, '0'), 'paid', 'USD',
            current_date, current_date + 30, NULL, 'psa-' || md5(c.id::text || g),
            5 * 24900, 0, 5 * 24900, 0, now()
        FROM clients c CROSS JOIN generate_series(1, {invoices}) g;
        """  # noqa: S608 - only this module's constants go in
    )
    await conn.execute(
        f"""
        INSERT INTO invoice_lines (id, invoice_id, position, description, service_category_id,
            quantity, unit_amount, amount, tax_amount)
        SELECT gen_random_uuid(), i.id, p,
            'Managed services, per seat, December 2026 (line ' || p || ')',
            (SELECT id FROM service_categories ORDER BY name LIMIT 1 OFFSET p),
            1, 24900, 24900, 0
        FROM invoices i CROSS JOIN generate_series(0, {LINES_PER_INVOICE - 1}) p;
        """  # noqa: S608 - only this module's constants go in
    )
    await conn.execute(
        """
        INSERT INTO payments (id, created_at, tenant_id, client_id, payment_method_id, amount,
            currency, status, origin, scheduled_payment_id, gateway_idempotency_key,
            gateway_charge_reference, amount_refunded, settled_at, gateway_attempts)
        SELECT gen_random_uuid(), now(), i.tenant_id, i.client_id, m.id, i.total, 'USD',
            'succeeded', 'scheduled', gen_random_uuid(),
            'scheduled_' || gen_random_uuid() || '_1', 'ch_' || md5(i.id::text), 0, now(), 1
        FROM invoices i JOIN payment_methods m ON m.client_id = i.client_id;
        """
    )
    # Pair each payment with one invoice of its client (row_number within the client).
    await conn.execute(
        """
        WITH i AS (SELECT id, client_id, total, tenant_id,
                          row_number() OVER (PARTITION BY client_id) n FROM invoices),
             p AS (SELECT id, client_id, scheduled_payment_id, payment_method_id,
                          row_number() OVER (PARTITION BY client_id) n FROM payments)
        INSERT INTO payment_allocations (id, created_at, tenant_id, payment_id, invoice_id,
            position, amount, status, amount_refunded)
        SELECT gen_random_uuid(), now(), i.tenant_id, p.id, i.id, 0, i.total, 'applied', 0
        FROM i JOIN p ON p.client_id = i.client_id AND p.n = i.n;
        """
    )
    await conn.execute(
        """
        INSERT INTO scheduled_payments (id, created_at, tenant_id, client_id, invoice_id,
            payment_method_id, amount, currency, scheduled_for, status, origin, attempts,
            manual_attempts, next_attempt_at, last_payment_id, version, updated_at)
        SELECT p.scheduled_payment_id, now(), a.tenant_id, p.client_id, a.invoice_id,
            p.payment_method_id, a.amount, 'USD', current_date + 27, 'succeeded', 'autopay', 1,
            0, now(), p.id, 3, now()
        FROM payment_allocations a JOIN payments p ON p.id = a.payment_id;
        """
    )
    # Events get time-ordered ids, as app.core.ids.time_ordered_uuid makes them.
    await conn.execute(
        f"""
        INSERT INTO events (id, created_at, tenant_id, client_id, type, subject_type,
            subject_id, data, details, actor_kind, actor_id, request_id, reason, dispatched_at)
        SELECT (lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0')
                || substr(md5(random()::text), 1, 20))::uuid,
            now(), i.tenant_id, i.client_id,
            (ARRAY['invoice.created', 'invoice.issued', 'scheduled_payment.created',
                   'payment.pending', 'payment.succeeded', 'invoice.paid',
                   'scheduled_payment.succeeded'])[k],
            'invoice', i.id, $1::json, $2::json, 'system', NULL,
            md5(i.id::text || k), NULL, now()
        FROM invoices i CROSS JOIN generate_series(1, {EVENTS_PER_INVOICE}) k;
        """,  # noqa: S608 - only this module's constants go in
        json.dumps(EVENT_DATA),
        json.dumps(EVENT_DETAILS),
    )
    await conn.execute(
        """
        INSERT INTO webhook_deliveries (id, created_at, tenant_id, endpoint_id, event_id,
            event_type, sequence, status, attempt, next_attempt_at, response_status,
            duration_ms, last_attempt_at, updated_at)
        SELECT gen_random_uuid(), now(), e.tenant_id, w.id, e.id, e.type,
            row_number() OVER (ORDER BY e.id), 'succeeded', 1, NULL, 200, 80, now(), now()
        FROM events e CROSS JOIN webhook_endpoints w;
        """
    )
    await conn.execute(
        f"""
        INSERT INTO idempotency_records (id, created_at, actor, key, request_fingerprint,
            state, response_status, response_body, locked_until, expires_at)
        SELECT gen_random_uuid(), now(), 'api_key:' || i.tenant_id, md5(i.id::text || k),
            md5(i.id::text), 'completed', 201, $1::json, now(), now() + interval '1 day'
        FROM invoices i CROSS JOIN generate_series(1, {IDEMPOTENCY_RECORDS_PER_INVOICE}) k;
        """,  # noqa: S608 - only this module's constants go in
        json.dumps(EVENT_DATA),
    )


async def measure(conn: asyncpg.Connection, tables: list[str]) -> list[Relation]:
    out = []
    for table in tables:
        rows = await conn.fetchval(f'SELECT count(*) FROM "{table}"')  # noqa: S608 - MEASURED
        heap = await conn.fetchval("SELECT pg_relation_size($1::regclass)", table)
        toast = await conn.fetchval(
            "SELECT coalesce(pg_total_relation_size(reltoastrelid), 0) FROM pg_class "
            "WHERE oid = $1::regclass",
            table,
        )
        indexes = await conn.fetch(
            "SELECT indexrelid::regclass::text AS name, pg_relation_size(indexrelid) AS bytes "
            "FROM pg_index WHERE indrelid = $1::regclass ORDER BY 1",
            table,
        )
        out.append(Relation(table, rows, heap, toast, {r["name"]: r["bytes"] for r in indexes}))
    return out


MEASURED = (
    "invoices",
    "invoice_lines",
    "scheduled_payments",
    "payments",
    "payment_allocations",
    "events",
    "webhook_deliveries",
    "idempotency_records",
)


def _mb(n: float) -> str:
    return f"{n / 1024 / 1024:,.0f}"


def report(relations: list[Relation], invoices: int, target_invoices: int) -> dict[str, Any]:
    scale = target_invoices / invoices
    print(f"\nsample: {invoices:,} invoices; scaled x{scale:,.1f} to {target_invoices:,} a month\n")
    head = (
        f"{'table':<22}{'rows/month':>12}{'B/row heap':>11}{'B/row idx':>10}"
        f"{'heap MB':>9}{'index MB':>9}{'total MB':>9}"
    )
    print(head)
    rows_out: dict[str, Any] = {}
    totals = [0.0, 0.0]
    for rel in relations:
        heap = (rel.heap_bytes + rel.toast_bytes) * scale
        index = rel.index_bytes * scale
        totals[0] += heap
        totals[1] += index
        per_row = (rel.heap_bytes + rel.toast_bytes) / rel.rows, rel.index_bytes / rel.rows
        print(
            f"{rel.table:<22}{rel.rows * scale:>12,.0f}{per_row[0]:>11.0f}{per_row[1]:>10.0f}"
            f"{_mb(heap):>9}{_mb(index):>9}{_mb(heap + index):>9}"
        )
        rows_out[rel.table] = {
            "sample_rows": rel.rows,
            "rows_per_month": round(rel.rows * scale),
            "heap_bytes_per_row": round(per_row[0], 1),
            "index_bytes_per_row": round(per_row[1], 1),
            "heap_mb_per_month": round(heap / 1024 / 1024, 1),
            "index_mb_per_month": round(index / 1024 / 1024, 1),
            "indexes_mb_per_month": {
                name: round(b * scale / 1024 / 1024, 1) for name, b in rel.indexes.items()
            },
        }
    print(
        f"{'all':<22}{'':>12}{'':>11}{'':>10}{_mb(totals[0]):>9}{_mb(totals[1]):>9}"
        f"{_mb(sum(totals)):>9}"
    )
    print("\nindexes, MB per month:")
    for rel in relations:
        for name, b in rel.indexes.items():
            print(f"  {name:<58}{_mb(b * scale):>8}")
    return {
        "tables": rows_out,
        "heap_mb_per_month": round(totals[0] / 1024 / 1024, 1),
        "index_mb_per_month": round(totals[1] / 1024 / 1024, 1),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    dsn = _dsn(args.database_url)
    conn = await asyncpg.connect(dsn)
    try:
        taken = await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        if taken:
            raise SystemExit(f"refusing: {args.database_url} is not empty ({taken} tables)")
        settings = Settings(database_url=args.database_url, env="test")
        await asyncio.to_thread(command.upgrade, alembic_config(settings), "head")
        started = time.perf_counter()
        await seed(conn, args.clients, args.invoices)
        await conn.execute("VACUUM ANALYZE")
        seeded = time.perf_counter() - started
        relations = await measure(conn, list(MEASURED))
        version = await conn.fetchval("SHOW server_version")
        max_connections = await conn.fetchval("SHOW max_connections")
    finally:
        try:
            await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        finally:
            await conn.close()
    invoices = args.clients * args.invoices
    result = report(relations, invoices, args.target_clients * args.invoices)
    return {
        "benchmark": "bench/sizing.py",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "database": {"version": version, "max_connections": int(max_connections)},
        "settings": {
            "sample_clients": args.clients,
            "invoices_per_client_per_month": args.invoices,
            "target_clients": args.target_clients,
            "lines_per_invoice": LINES_PER_INVOICE,
            "events_per_invoice": EVENTS_PER_INVOICE,
            "webhook_deliveries_per_event": DELIVERIES_PER_EVENT,
            "idempotency_records_per_invoice": IDEMPOTENCY_RECORDS_PER_INVOICE,
        },
        "seed_seconds": round(seeded, 1),
        "relations": [asdict(r) for r in relations],
        **result,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True, help="an EMPTY PostgreSQL database")
    parser.add_argument("--clients", type=int, default=200, help="clients in the sample (200)")
    parser.add_argument("--invoices", type=int, default=100, help="invoices per client (100)")
    parser.add_argument("--target-clients", type=int, default=10_000, help="scale to (10,000)")
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = parser.parse_args(argv)
    if min(args.clients, args.invoices, args.target_clients) < 1:
        parser.error("--clients, --invoices and --target-clients must be positive")
    result = asyncio.run(run(args))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
