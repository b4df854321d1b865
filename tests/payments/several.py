"""Arrange-steps and readers for payments of several invoices (`POST /payments`)."""

from __future__ import annotations

import uuid
from typing import Any

from httpx import AsyncClient, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.gateways.fake import FakeGateway
from app.models import Invoice, Payment, PaymentAllocation
from tests.factories import Person
from tests.payments.helpers import PAYMENTS, Billing, due_in, open_invoice


async def pay_several(
    http: AsyncClient,
    person: Person,
    method_id: str,
    invoice_ids: list[str] | None = None,
    amount: int | None = None,
    *,
    key: str | None = None,
    **extra: Any,
) -> Response:
    body: dict[str, Any] = {"payment_method_id": method_id, **extra}
    if invoice_ids is not None:
        body["invoice_ids"] = invoice_ids
    if amount is not None:
        body["amount"] = amount
    headers = dict(person.headers)
    if key is not None:
        headers["Idempotency-Key"] = key
    return await http.post(PAYMENTS, json=body, headers=headers)


async def invoices_due(
    http: AsyncClient, billing: Billing, *specs: tuple[int, int]
) -> list[dict[str, Any]]:
    """Open invoices of the billing world's client, one per (total, due in days)."""
    return [
        await open_invoice(
            http,
            billing.staff,
            billing.client_id,
            billing.category,
            (1, total),
            due_date=due_in(days),
        )
        for total, days in specs
    ]


def allocations(payment: dict[str, Any]) -> list[tuple[str, int]]:
    """What a payment paid, as the API shows it: (invoice id, amount), in order."""
    return [(a["invoice_id"], a["amount"]) for a in payment["allocations"]]


async def allocation_rows(
    sessionmaker: async_sessionmaker[AsyncSession], payment_id: Any
) -> list[PaymentAllocation]:
    """A payment's allocations as stored, in the order it pays them."""
    async with sessionmaker() as session:
        stmt = (
            select(PaymentAllocation)
            .where(PaymentAllocation.payment_id == uuid.UUID(str(payment_id)))
            .order_by(PaymentAllocation.position)
        )
        return list((await session.execute(stmt)).scalars())


async def assert_allocated_books(
    sessionmaker: async_sessionmaker[AsyncSession], gateway: FakeGateway, *invoice_ids: Any
) -> list[Invoice]:
    """Each invoice's paid and held amounts are what its allocations say (a payment may pay
    several invoices), within its total; each succeeded payment was charged once, for the
    sum of its allocations."""
    charges = {c.idempotency_key: c for c in gateway.charges}
    assert len(charges) == len(gateway.charges)  # one charge per key, ever
    found = []
    async with sessionmaker() as session:
        for invoice_id in invoice_ids:
            invoice = await session.get(Invoice, uuid.UUID(str(invoice_id)))
            assert invoice is not None
            rows = list(
                (
                    await session.execute(
                        select(PaymentAllocation).where(PaymentAllocation.invoice_id == invoice.id)
                    )
                ).scalars()
            )
            assert invoice.amount_paid == sum(
                a.amount - a.amount_refunded for a in rows if a.status == "applied"
            )
            assert invoice.amount_reserved == sum(a.amount for a in rows if a.status == "held")
            assert 0 <= invoice.amount_paid + invoice.amount_reserved <= invoice.total
            assert (invoice.status == "paid") == (invoice.balance == 0)
            for payment_id in {a.payment_id for a in rows}:
                payment = await session.get(Payment, payment_id)
                assert payment is not None
                mine = await session.execute(
                    select(PaymentAllocation.amount).where(
                        PaymentAllocation.payment_id == payment_id
                    )
                )
                assert payment.amount == sum(mine.scalars())
                charge = charges.get(payment.gateway_idempotency_key)
                if payment.status == "succeeded":
                    assert charge is not None and charge.amount == payment.amount
                elif payment.status == "failed":
                    assert charge is None
            found.append(invoice)
    return found
