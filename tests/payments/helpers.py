"""Shared builders and readers for the money tests (payments, invoices, payment methods).

Everything that a test does as a caller goes through the HTTP API; what a test checks
about money is read straight from the database (`invoice_row`, `payments_of`), so an
assertion never trusts the code under test to report on itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from httpx import AsyncClient, Response
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import today_in
from app.gateways.fake import FakeGateway
from app.models import Invoice, Payment, PaymentAllocation, Refund, ServiceCategory
from tests.factories import Factory, Person, World, method_body

API = "/api/v1"
INVOICES = f"{API}/invoices"
PAYMENTS = f"{API}/payments"
METHODS = f"{API}/payment-methods"
FEES = f"{API}/platform-fees"
NO_SUCH_ID = "00000000-0000-4000-8000-000000000000"


def due_in(days: int) -> str:
    """A due date relative to the portal's today (UTC), as the API spells it."""
    return (today_in("UTC") + timedelta(days=days)).isoformat()


async def add_method(
    http: AsyncClient, person: Person, source: str = "tok_visa", **extra: Any
) -> dict[str, Any]:
    """Keep a card (or, for `tok_ach`, a bank account) on file from a gateway test token."""
    body = method_body(source, **extra)
    response = await http.post(METHODS, json=body, headers=person.headers)
    assert response.status_code == 201, response.text
    method: dict[str, Any] = response.json()
    return method


def lines_for(category: ServiceCategory, *amounts: tuple[int, int]) -> list[dict[str, Any]]:
    """Invoice lines from (quantity, unit_amount) pairs."""
    return [
        {
            "description": f"Service {index + 1}",
            "service_category_id": str(category.id),
            "quantity": quantity,
            "unit_amount": unit,
        }
        for index, (quantity, unit) in enumerate(amounts)
    ]


async def draft_invoice(
    http: AsyncClient,
    staff: Person,
    client_id: uuid.UUID,
    category: ServiceCategory,
    *amounts: tuple[int, int],
    due_date: str | date | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "client_id": str(client_id),
        "currency": "USD",
        "due_date": str(due_date) if due_date is not None else due_in(30),
        "lines": lines_for(category, *(amounts or ((1, 10_000),))),
        **extra,
    }
    response = await http.post(INVOICES, json=body, headers=staff.headers)
    assert response.status_code == 201, response.text
    invoice: dict[str, Any] = response.json()
    return invoice


async def issue(http: AsyncClient, staff: Person, invoice_id: str) -> dict[str, Any]:
    response = await http.post(f"{INVOICES}/{invoice_id}/issue", headers=staff.headers)
    assert response.status_code == 200, response.text
    invoice: dict[str, Any] = response.json()
    return invoice


async def open_invoice(
    http: AsyncClient,
    staff: Person,
    client_id: uuid.UUID,
    category: ServiceCategory,
    *amounts: tuple[int, int],
    **extra: Any,
) -> dict[str, Any]:
    draft = await draft_invoice(http, staff, client_id, category, *amounts, **extra)
    return await issue(http, staff, draft["id"])


async def pay(
    http: AsyncClient,
    person: Person,
    invoice_id: str,
    method_id: str,
    amount: int | None = None,
    *,
    key: str | None = None,
) -> Response:
    body: dict[str, Any] = {"payment_method_id": method_id}
    if amount is not None:
        body["amount"] = amount
    headers = dict(person.headers)
    if key is not None:
        headers["Idempotency-Key"] = key
    return await http.post(f"{INVOICES}/{invoice_id}/pay", json=body, headers=headers)


async def refund(
    http: AsyncClient,
    staff: Person,
    payment_id: str,
    amount: int | None = None,
    *,
    key: str | None = None,
) -> Response:
    body: dict[str, Any] = {} if amount is None else {"amount": amount}
    headers = dict(staff.headers)
    if key is not None:
        headers["Idempotency-Key"] = key
    return await http.post(f"{PAYMENTS}/{payment_id}/refunds", json=body, headers=headers)


async def invoice_row(sessionmaker: async_sessionmaker[AsyncSession], invoice_id: Any) -> Invoice:
    async with sessionmaker() as session:
        invoice = await session.get(Invoice, uuid.UUID(str(invoice_id)))
        assert invoice is not None
        return invoice


async def payments_of(
    sessionmaker: async_sessionmaker[AsyncSession], invoice_id: Any
) -> list[Payment]:
    async with sessionmaker() as session:
        stmt = (
            select(Payment)
            .join(PaymentAllocation, PaymentAllocation.payment_id == Payment.id)
            .where(PaymentAllocation.invoice_id == uuid.UUID(str(invoice_id)))
            .order_by(Payment.created_at, Payment.id)
        )
        return list((await session.execute(stmt)).scalars())


async def refunds_of(
    sessionmaker: async_sessionmaker[AsyncSession], payment_id: Any
) -> list[Refund]:
    async with sessionmaker() as session:
        stmt = (
            select(Refund)
            .where(Refund.payment_id == uuid.UUID(str(payment_id)))
            .order_by(Refund.created_at, Refund.id)
        )
        return list((await session.execute(stmt)).scalars())


async def allocated_to(sessionmaker: async_sessionmaker[AsyncSession], invoice_id: Any) -> int:
    async with sessionmaker() as session:
        stmt = select(func.coalesce(func.sum(PaymentAllocation.amount), 0)).where(
            PaymentAllocation.invoice_id == uuid.UUID(str(invoice_id)),
            PaymentAllocation.status == "applied",
        )
        return int((await session.execute(stmt)).scalar_one())


async def assert_books_balance(
    sessionmaker: async_sessionmaker[AsyncSession], gateway: FakeGateway, invoice_id: Any
) -> Invoice:
    """The invoice, its payments and refunds, and the gateway's ledger all agree."""
    invoice = await invoice_row(sessionmaker, invoice_id)
    payments = await payments_of(sessionmaker, invoice_id)
    succeeded = [p for p in payments if p.status == "succeeded"]
    pending = [p for p in payments if p.status == "pending"]
    refunded = 0
    for payment in succeeded:
        done = [r for r in await refunds_of(sessionmaker, payment.id) if r.status == "succeeded"]
        assert payment.amount_refunded == sum(r.amount for r in done)
        refunded += payment.amount_refunded
    assert invoice.amount_paid == sum(p.amount for p in succeeded) - refunded
    assert await allocated_to(sessionmaker, invoice_id) == sum(p.amount for p in succeeded)
    assert invoice.amount_reserved == sum(p.amount for p in pending)
    assert invoice.amount_paid >= 0
    assert invoice.amount_paid + invoice.amount_reserved <= invoice.total
    if invoice.status in ("open", "paid"):
        assert (invoice.status == "paid") == (invoice.balance == 0)
    # Every succeeded payment was charged exactly once, for its amount.
    charges = {c.idempotency_key: c for c in gateway.charges}
    for payment in succeeded:
        charge = charges[payment.gateway_idempotency_key]
        assert charge.amount == payment.amount
        assert charge.reference == payment.gateway_charge_reference
    ours = {p.gateway_idempotency_key for p in payments}
    moved = [c for c in gateway.charges if c.idempotency_key in ours]
    assert len(moved) >= len(succeeded)
    return invoice


@contextmanager
def gateway_latency(gateway: FakeGateway, seconds: float) -> Any:
    """Slow the fake gateway down so requests overlap; always put it back."""
    previous = gateway.latency_seconds
    gateway.latency_seconds = seconds
    try:
        yield gateway
    finally:
        gateway.latency_seconds = previous


@dataclass
class Billing:
    """A tenant, a client with a contact and a card on file, and a service category."""

    world: World
    category: ServiceCategory
    card: dict[str, Any]

    @property
    def staff(self) -> Person:
        return self.world.staff

    @property
    def contact(self) -> Person:
        return self.world.contact

    @property
    def client_id(self) -> uuid.UUID:
        return self.world.client.id


async def billing_world(
    factory: Factory, http: AsyncClient, name: str = "Test MSP", source: str = "tok_visa"
) -> Billing:
    world = await factory.world(name)
    category = await factory.category(world.tenant)
    card = await add_method(http, world.contact, source)
    return Billing(world=world, category=category, card=card)


def statuses(responses: Sequence[Response]) -> list[int]:
    return sorted(r.status_code for r in responses)
