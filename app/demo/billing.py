"""Demo billing for `billing-portal seed-demo`: invoices that are open, overdue and paid, a
card on file for each client, and the payment behind each paid invoice, charged through the
configured gateway so refunds from the running portal work on them."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import date, timedelta

from app.core.clock import today_in
from app.core.principal import ClientPrincipal, Principal
from app.demo.context import DemoContext
from app.gateways.base import GatewayError
from app.invoices.repository import InvoiceRepository
from app.invoices.service import INVOICE_NUMBER_FORMAT
from app.models import Client, Invoice, InvoiceLine
from app.payment_methods.schemas import PaymentMethodCreate
from app.payment_methods.service import PaymentMethodService
from app.payments.charges import PaymentOrder
from app.payments.service import PaymentService

# (category, description, quantity, unit amount in cents)
_MONTHLY = [
    ("Hosting", "Managed web hosting", 1, 14900),
    ("Help desk", "Help desk seats", 12, 4500),
    ("Network monitoring", "Monitored devices", 25, 300),
    ("Backup", "Cloud backup (TB)", 2, 2500),
]


async def seed_billing(ctx: DemoContext) -> None:
    today = today_in(ctx.tenant.timezone)
    for index, client in enumerate(ctx.clients):
        await _invoice(ctx, client, due=today + timedelta(days=20), memo="This month")
        await _invoice(ctx, client, due=today - timedelta(days=10 + index), memo="Last month")
        paid = await _invoice(ctx, client, due=today - timedelta(days=40), memo="Two months ago")
        token = "tok_visa" if index != 1 else "tok_mastercard"
        ctx.after_commit.append(_card_and_payment(ctx, client, paid.id, token))
    await ctx.session.flush()


def _card_and_payment(
    ctx: DemoContext, client: Client, invoice_id: uuid.UUID, token: str
) -> Callable[[], Awaitable[None]]:
    """Once the demo is committed: the client's card, and the invoice paid with it."""
    principal = ClientPrincipal.of(ctx.principal_for(ctx.contacts[client.id]), client.id)

    async def step() -> None:
        methods = PaymentMethodService(ctx.sessionmaker, principal, ctx.gateway)
        try:
            card = await methods.add(
                PaymentMethodCreate(type="card", token=token, nickname="Company card")
            )
            order = PaymentOrder(payment_method_id=card.id, invoice_ids=(invoice_id,))
            await PaymentService(ctx.sessionmaker, ctx.gateway).pay(principal, order)
        except GatewayError:
            return  # a real gateway in a demo: leave this invoice open rather than fake a payment

    return step


async def _invoice(ctx: DemoContext, client: Client, *, due: date, memo: str) -> Invoice:
    invoices = InvoiceRepository(ctx.session, Principal.system(ctx.tenant.id))
    lines = [
        (ctx.categories[category], description, quantity, unit)
        for category, description, quantity, unit in _MONTHLY
    ]
    invoice = Invoice(
        tenant_id=ctx.tenant.id,
        client_id=client.id,
        number=INVOICE_NUMBER_FORMAT.format(await invoices.next_number()),
        status="open",
        currency="USD",
        issued_on=due - timedelta(days=30),
        due_date=due,
        memo=memo,
        total=sum(quantity * unit for _, _, quantity, unit in lines),
        amount_paid=0,
        amount_reserved=0,
    )
    invoices.add(invoice)
    await ctx.session.flush()
    invoices.add_lines(
        [
            InvoiceLine(
                invoice_id=invoice.id,
                position=position,
                description=description,
                service_category_id=category.id,
                quantity=quantity,
                unit_amount=unit,
                amount=quantity * unit,
            )
            for position, (category, description, quantity, unit) in enumerate(lines)
        ]
    )
    return invoice
