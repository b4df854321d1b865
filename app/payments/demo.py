"""Demo billing for `billing-portal seed-demo`: cards on file, invoices that are open,
overdue and paid, and the payments behind the paid ones, charged through the configured
gateway so refunds from the running portal work on them."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import update

from app.bootstrap import DemoContext
from app.core.clock import today_in, utcnow
from app.core.events import record_event
from app.gateways.base import GatewayError
from app.invoices.service import INVOICE_NUMBER_FORMAT
from app.models import (
    Client,
    Invoice,
    InvoiceLine,
    Payment,
    PaymentAllocation,
    PaymentMethod,
    PlatformFee,
    Tenant,
)
from app.models.billing import PAYMENT_METHOD_FEE_AMOUNT, PAYMENT_METHOD_FEE_CURRENCY

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
        method = await _card(ctx, client, "tok_visa" if index != 1 else "tok_mastercard")
        await _invoice(ctx, client, due=today + timedelta(days=20), memo="This month")
        await _invoice(ctx, client, due=today - timedelta(days=10 + index), memo="Last month")
        paid = await _invoice(ctx, client, due=today - timedelta(days=40), memo="Two months ago")
        await _pay(ctx, paid, method)
    await ctx.session.flush()


async def _card(ctx: DemoContext, client: Client, token: str) -> PaymentMethod:
    customer = await ctx.gateway.create_customer(
        name=client.name, email=client.billing_email, metadata={"client_id": str(client.id)}
    )
    client.gateway_customer_reference = customer
    attached = await ctx.gateway.attach_method(token=token, customer_reference=customer)
    method = PaymentMethod(
        tenant_id=ctx.tenant.id,
        client_id=client.id,
        type=attached.type,
        brand=attached.brand,
        last4=attached.last4,
        exp_month=attached.exp_month,
        exp_year=attached.exp_year,
        fingerprint=attached.fingerprint,
        gateway_reference=attached.reference,
        nickname="Company card",
        is_default=True,
    )
    ctx.session.add(method)
    await ctx.session.flush()
    ctx.session.add(
        PlatformFee(
            tenant_id=ctx.tenant.id,
            client_id=client.id,
            payment_method_id=method.id,
            fingerprint=method.fingerprint,
            amount=PAYMENT_METHOD_FEE_AMOUNT,
            currency=PAYMENT_METHOD_FEE_CURRENCY,
        )
    )
    return method


async def _invoice(ctx: DemoContext, client: Client, *, due: date, memo: str) -> Invoice:
    number = (
        await ctx.session.execute(
            update(Tenant)
            .where(Tenant.id == ctx.tenant.id)
            .values(next_invoice_number=Tenant.next_invoice_number + 1)
            .returning(Tenant.next_invoice_number - 1)
        )
    ).scalar_one()
    lines = [
        (ctx.categories[category], description, quantity, unit)
        for category, description, quantity, unit in _MONTHLY
    ]
    invoice = Invoice(
        tenant_id=ctx.tenant.id,
        client_id=client.id,
        number=INVOICE_NUMBER_FORMAT.format(number),
        status="open",
        currency="USD",
        issued_on=due - timedelta(days=30),
        due_date=due,
        memo=memo,
        total=sum(quantity * unit for _, _, quantity, unit in lines),
        amount_paid=0,
        amount_reserved=0,
    )
    ctx.session.add(invoice)
    await ctx.session.flush()
    ctx.session.add_all(
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
    )
    return invoice


async def _pay(ctx: DemoContext, invoice: Invoice, method: PaymentMethod) -> None:
    payment = Payment(
        tenant_id=ctx.tenant.id,
        client_id=invoice.client_id,
        invoice_id=invoice.id,
        payment_method_id=method.id,
        amount=invoice.total,
        currency=invoice.currency,
        status="pending",
        origin="pay_now",
        gateway_idempotency_key=f"demo_{invoice.id}",
    )
    ctx.session.add(payment)
    await ctx.session.flush()
    client = await ctx.session.get(Client, invoice.client_id)
    assert client is not None
    try:
        charge = await ctx.gateway.charge(
            amount=payment.amount,
            currency=payment.currency,
            method_reference=method.gateway_reference,
            customer_reference=client.gateway_customer_reference or "",
            idempotency_key=payment.gateway_idempotency_key,
        )
    except GatewayError:
        return  # a real gateway in a demo: leave this invoice open rather than fake a payment
    payment.status = "succeeded"
    payment.gateway_charge_reference = charge.reference
    payment.settled_at = utcnow()
    payment.gateway_attempts = 1
    invoice.amount_paid = invoice.total
    invoice.status = "paid"
    ctx.session.add(
        PaymentAllocation(payment_id=payment.id, invoice_id=invoice.id, amount=payment.amount)
    )
    record_event(
        ctx.session,
        tenant_id=ctx.tenant.id,
        client_id=invoice.client_id,
        type="payment.succeeded",
        subject_type="payment",
        subject_id=payment.id,
        data={"amount": payment.amount, "invoice_id": str(invoice.id), "origin": "pay_now"},
    )
