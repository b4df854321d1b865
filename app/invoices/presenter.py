"""Invoices as the API shows them: computed fields, lines, payments, and the PDF."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.address import printed_lines, stored_address
from app.core.clock import today_in
from app.core.config import Settings
from app.core.principal import Principal
from app.invoices.pdf import InvoiceDocument, Logo, Party, PdfLine, PdfPayment, render_invoice_pdf
from app.invoices.repository import InvoiceRepository
from app.invoices.schemas import InvoiceDetail, InvoiceLineOut, InvoiceOut, InvoicePaymentOut
from app.models import Client, Invoice, PaymentMethod, Tenant
from app.tenancy.repository import TenantRepository
from app.tenancy.schemas import BILLING_ADDRESS, TENANT_ADDRESS


def invoice_out(invoice: Invoice, today: date) -> InvoiceOut:
    return InvoiceOut.of(invoice, today)


async def invoice_detail(
    session: AsyncSession, principal: Principal, invoice: Invoice | uuid.UUID
) -> InvoiceDetail:
    """The invoice with its lines and payments: two statements. Given an id (a read), the
    invoice is loaded with its lines, or 404."""
    repo = InvoiceRepository(session, principal)
    if isinstance(invoice, uuid.UUID):
        found = await repo.with_lines(invoice)
    else:
        found = await repo.with_lines(invoice.id, invoice)
    if found is None:
        raise repo.not_found()
    loaded, timezone, lines = found
    payments = [
        InvoicePaymentOut(
            payment_id=payment_id, amount=amount, paid_at=paid_at, amount_refunded=refunded
        )
        for payment_id, amount, paid_at, refunded in await repo.payments_shown(loaded.id)
    ]
    return InvoiceDetail(
        **invoice_out(loaded, today_in(timezone)).model_dump(),
        lines=[InvoiceLineOut.model_validate(line) for line in lines],
        payments=payments,
    )


async def invoice_document(
    session: AsyncSession, principal: Principal, invoice: Invoice, settings: Settings
) -> tuple[bytes, str]:
    """The invoice as a PDF and its file name."""
    invoices = InvoiceRepository(session, principal)
    tenants = TenantRepository(session, principal)
    tenant = await tenants.current()
    logo = await tenants.logo(with_image=True)
    client = await invoices.client_of(invoice)
    lines = await invoices.lines(invoice.id)
    categories = await invoices.category_names({line.service_category_id for line in lines})
    zone = ZoneInfo(tenant.timezone)
    document = InvoiceDocument(
        seller=Party(tenant.name, seller_details(tenant)),
        bill_to=Party(client.name, bill_to_details(client)),
        logo=Logo(logo.data, logo.width, logo.height) if logo is not None else None,
        number=invoice.number,
        status=invoice.status,
        overdue=invoice_out(invoice, today_in(tenant.timezone)).overdue,
        issued_on=invoice.issued_on,
        due_date=invoice.due_date,
        currency=invoice.currency,
        subtotal=invoice.subtotal,
        tax_total=invoice.tax_total,
        total=invoice.total,
        amount_paid=invoice.amount_paid,
        memo=invoice.memo,
        pay_url=f"{settings.public_url}/invoices/{invoice.id}" if settings.public_url else None,
        payment_instructions=tenant.payment_instructions,
        lines=[
            PdfLine(
                description=line.description,
                category=categories.get(line.service_category_id, ""),
                quantity=line.quantity,
                unit_amount=line.unit_amount,
                amount=line.amount,
                tax_amount=line.tax_amount,
                tax_label=line.tax_label,
            )
            for line in lines
        ],
        payments=[
            PdfPayment(
                paid_on=payment.settled_at.astimezone(zone).date() if payment.settled_at else None,
                method=method_label(method),
                amount=allocation.amount,
                refunded=allocation.amount_refunded,
            )
            for allocation, payment, method in await invoices.payments_applied(invoice.id)
        ],
    )
    # Drawing takes tens of milliseconds of CPU (more with a large fallback font): off the
    # event loop, so other requests go on meanwhile.
    pdf = await asyncio.to_thread(
        render_invoice_pdf, document, fallback_font=settings.pdf_fallback_font
    )
    filename = f"{invoice.number or 'draft-' + str(invoice.id)[:8]}.pdf"
    return pdf, filename


CARD_BRANDS = {
    "amex": "American Express",
    "diners": "Diners Club",
    "discover": "Discover",
    "jcb": "JCB",
    "mastercard": "Mastercard",
    "unionpay": "UnionPay",
    "visa": "Visa",
}


def method_label(method: PaymentMethod) -> str:
    """`Visa •••• 4242`, `Bank account •••• 6789`: enough to recognise, never the number."""
    if method.type == "ach":
        return f"Bank account •••• {method.last4}"
    brand = CARD_BRANDS.get(method.brand.lower(), method.brand.title())
    return f"{brand} •••• {method.last4}"


def seller_details(tenant: Tenant) -> list[str]:
    address = stored_address(tenant, TENANT_ADDRESS)
    details = [tenant.legal_name] if tenant.legal_name and tenant.legal_name != tenant.name else []
    details += printed_lines(address) if address else []
    details += [" · ".join(part for part in (tenant.email, tenant.phone) if part)]
    details += [f"Tax ID: {tenant.tax_id}"] if tenant.tax_id else []
    return [line for line in details if line]


def bill_to_details(client: Client) -> list[str]:
    address = stored_address(client, BILLING_ADDRESS)
    details = printed_lines(address) if address else []
    return details + ([client.billing_email] if client.billing_email else [])
