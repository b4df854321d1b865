"""Invoices written before lines carried tax come through the migration whole: no tax, the
same total, and the new constraints hold from then on. Runs on a database of its own."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.exc import IntegrityError

from app.cli import alembic_config
from app.core.config import Settings
from app.core.db import create_engine
from tests.core.conftest import migrations_settings

__all__ = ["migrations_settings"]  # the fixture, imported for the tests below

BEFORE_TAX = "5a1c0e7d2b90"
NOW = datetime(2026, 11, 1, tzinfo=UTC)


def table(table_name: str, /, **columns: sa.types.TypeEngine[object]) -> sa.TableClause:
    return sa.table(table_name, *(sa.column(name, type_) for name, type_ in columns.items()))


TENANTS = table("tenants", id=sa.Uuid(), name=sa.String(), created_at=sa.DateTime())
CLIENTS = table(
    "clients",
    id=sa.Uuid(),
    tenant_id=sa.Uuid(),
    name=sa.String(),
    created_at=sa.DateTime(),
    updated_at=sa.DateTime(),
)
CATEGORIES = table(
    "service_categories",
    id=sa.Uuid(),
    tenant_id=sa.Uuid(),
    name=sa.String(),
    created_at=sa.DateTime(),
)
INVOICES = table(
    "invoices",
    id=sa.Uuid(),
    tenant_id=sa.Uuid(),
    client_id=sa.Uuid(),
    status=sa.String(),
    currency=sa.String(),
    due_date=sa.Date(),
    total=sa.BigInteger(),
    amount_paid=sa.BigInteger(),
    amount_reserved=sa.BigInteger(),
    created_at=sa.DateTime(),
    updated_at=sa.DateTime(),
    tax_total=sa.BigInteger(),
)
LINES = table(
    "invoice_lines",
    id=sa.Uuid(),
    invoice_id=sa.Uuid(),
    position=sa.Integer(),
    description=sa.String(),
    service_category_id=sa.Uuid(),
    quantity=sa.BigInteger(),
    unit_amount=sa.BigInteger(),
    amount=sa.BigInteger(),
    tax_amount=sa.BigInteger(),
)


async def run(settings: Settings, *statements: sa.Executable) -> list[sa.Row[tuple[object, ...]]]:
    """Each statement in one transaction; the rows of the last one."""
    engine = create_engine(settings)
    try:
        async with engine.begin() as connection:
            result = None
            for statement in statements:
                result = await connection.execute(statement)
            return list(result.all()) if result is not None and result.returns_rows else []
    finally:
        await engine.dispose()


def test_an_invoice_from_before_tax_keeps_its_total(migrations_settings: Settings) -> None:
    config = alembic_config(migrations_settings)
    command.upgrade(config, BEFORE_TAX)
    tenant, client, category, invoice = (uuid.uuid4() for _ in range(4))
    naive = NOW.replace(tzinfo=None)
    asyncio.run(
        run(
            migrations_settings,
            TENANTS.insert().values(id=tenant, name="Northwind", created_at=naive),
            CLIENTS.insert().values(
                id=client, tenant_id=tenant, name="Acme", created_at=naive, updated_at=naive
            ),
            CATEGORIES.insert().values(
                id=category, tenant_id=tenant, name="Hosting", created_at=naive
            ),
            INVOICES.insert().values(
                id=invoice,
                tenant_id=tenant,
                client_id=client,
                status="open",
                currency="USD",
                due_date=date(2026, 12, 1),
                total=10_000,
                amount_paid=0,
                amount_reserved=0,
                created_at=naive,
                updated_at=naive,
            ),
            LINES.insert().values(
                id=uuid.uuid4(),
                invoice_id=invoice,
                position=0,
                description="Hosting",
                service_category_id=category,
                quantity=2,
                unit_amount=5_000,
                amount=10_000,
            ),
        )
    )

    command.upgrade(config, "head")

    (row,) = asyncio.run(
        run(
            migrations_settings,
            sa.select(INVOICES.c.total, INVOICES.c.tax_total, LINES.c.amount, LINES.c.tax_amount)
            .select_from(INVOICES.join(LINES, LINES.c.invoice_id == INVOICES.c.id))
            .where(INVOICES.c.id == invoice),
        )
    )
    assert tuple(row) == (10_000, 0, 10_000, 0)
    for impossible in (
        LINES.update().where(LINES.c.invoice_id == invoice).values(tax_amount=-1),
        INVOICES.update().where(INVOICES.c.id == invoice).values(tax_total=10_001),
    ):
        with pytest.raises(IntegrityError):
            asyncio.run(run(migrations_settings, impossible))
    asyncio.run(
        run(
            migrations_settings,
            LINES.update().where(LINES.c.invoice_id == invoice).values(tax_amount=500),
        )
    )
