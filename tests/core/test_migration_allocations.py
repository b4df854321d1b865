"""The allocations migration (5a1c0e7d2b90) moves real rows both ways: a payment's invoice
becomes its allocation (held while pending, released when failed, applied when it succeeded,
with its refunds), and going back restores payments.invoice_id from the first allocation."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any

from alembic import command
from sqlalchemy import text

from app.cli import alembic_config
from app.core.config import Settings
from app.core.db import create_engine

BEFORE = "938ed29b1b4f"
ALLOCATIONS = "5a1c0e7d2b90"
NOW = datetime(2026, 12, 1, 12, 0)


def run(settings: Settings, *statements: tuple[str, dict[str, Any]]) -> list[list[Any]]:
    async def go() -> list[list[Any]]:
        engine = create_engine(settings)
        out = []
        try:
            async with engine.begin() as connection:
                for sql, params in statements:
                    result = await connection.execute(text(sql), params)
                    out.append([tuple(r) for r in result.all()] if result.returns_rows else [])
        finally:
            await engine.dispose()
        return out

    return asyncio.run(go())


def ids(settings: Settings) -> dict[str, Any]:
    """Ids as the database keeps them (SQLite: hex text; PostgreSQL: uuid)."""
    return {
        name: uuid.uuid4().hex if settings.is_sqlite else uuid.uuid4()
        for name in ("tenant", "client", "method", "invoice", "ok", "waiting", "declined", "a1")
    }


def seed(settings: Settings, k: dict[str, Any]) -> None:
    common = {"now": NOW, **k}
    run(
        settings,
        (
            "INSERT INTO tenants (id, name, timezone, next_invoice_number, next_ticket_number,"
            " created_at) VALUES (:tenant, 'T', 'UTC', 2, 1, :now)",
            common,
        ),
        (
            "INSERT INTO clients (id, tenant_id, name, created_at, updated_at)"
            " VALUES (:client, :tenant, 'C', :now, :now)",
            common,
        ),
        (
            "INSERT INTO payment_methods (id, tenant_id, client_id, type, brand, last4,"
            " fingerprint, gateway_reference, is_default, created_at) VALUES (:method, :tenant,"
            " :client, 'card', 'visa', '4242', 'fp', 'pm_1', true, :now)",
            common,
        ),
        (
            "INSERT INTO invoices (id, tenant_id, client_id, number, status, currency, issued_on,"
            " due_date, total, amount_paid, amount_reserved, created_at, updated_at) VALUES"
            " (:invoice, :tenant, :client, 'INV-1', 'open', 'USD', '2026-12-01', '2026-12-31',"
            " 10000, 3000, 2000, :now, :now)",
            common,
        ),
    )
    for key, status, amount, refunded in (
        ("ok", "succeeded", 4000, 1000),
        ("waiting", "pending", 2000, 0),
        ("declined", "failed", 500, 0),
    ):
        run(
            settings,
            (
                "INSERT INTO payments (id, tenant_id, client_id, invoice_id, payment_method_id,"
                " amount, currency, status, origin, gateway_idempotency_key, amount_refunded,"
                " gateway_attempts, created_at) VALUES (:id, :tenant, :client, :invoice, :method,"
                " :amount, 'USD', :status, 'pay_now', :gkey, :refunded, 1, :now)",
                {
                    **common,
                    "id": k[key],
                    "status": status,
                    "amount": amount,
                    "refunded": refunded,
                    "gkey": f"payment_{key}",
                },
            ),
        )
    run(
        settings,
        (
            "INSERT INTO payment_allocations (id, payment_id, invoice_id, amount, created_at)"
            " VALUES (:a1, :ok, :invoice, 4000, :now)",
            common,
        ),
    )


def allocations(settings: Settings, k: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    (rows,) = run(
        settings,
        (
            "SELECT payment_id, tenant_id, invoice_id, position, amount, status, amount_refunded"
            " FROM payment_allocations",
            {},
        ),
    )
    names = {str(v): name for name, v in k.items()}
    return {names[str(r[0])]: (names[str(r[1])], names[str(r[2])], *r[3:]) for r in rows}


def test_payments_become_allocations_and_back(migrations_settings: Settings) -> None:
    config = alembic_config(migrations_settings)
    command.upgrade(config, BEFORE)
    k = ids(migrations_settings)
    seed(migrations_settings, k)

    command.upgrade(config, ALLOCATIONS)
    assert allocations(migrations_settings, k) == {
        "ok": ("tenant", "invoice", 0, 4000, "applied", 1000),
        "waiting": ("tenant", "invoice", 0, 2000, "held", 0),
        "declined": ("tenant", "invoice", 0, 500, "released", 0),
    }

    command.downgrade(config, BEFORE)
    (rows,) = run(migrations_settings, ("SELECT id, invoice_id FROM payments", {}))
    assert {str(p): str(i) for p, i in rows} == {
        str(k[name]): str(k["invoice"]) for name in ("ok", "waiting", "declined")
    }
    (left,) = run(migrations_settings, ("SELECT payment_id FROM payment_allocations", {}))
    assert [str(r[0]) for r in left] == [str(k["ok"])]

    command.upgrade(config, "head")
    assert allocations(migrations_settings, k)["waiting"][4] == "held"
