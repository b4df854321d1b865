"""Invoices as the API shows them: computed fields, lines, payments, and the PDF."""

from __future__ import annotations

from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import today_in
from app.core.principal import Principal
from app.invoices.pdf import InvoiceDocument, PdfLine, PdfPayment, render_invoice_pdf
from app.invoices.repository import InvoiceRepository
from app.invoices.schemas import InvoiceDetail, InvoiceLineOut, InvoiceOut, InvoicePaymentOut
from app.models import Invoice


def invoice_out(invoice: Invoice, today: date) -> InvoiceOut:
    out = InvoiceOut.model_validate(invoice)
    out.overdue = invoice.status == "open" and invoice.due_date < today
    return out


async def invoice_detail(
    session: AsyncSession, principal: Principal, invoice: Invoice
) -> InvoiceDetail:
    repo = InvoiceRepository(session, principal)
    today = today_in((await repo.tenant()).timezone)
    lines = [InvoiceLineOut.model_validate(line) for line in await repo.lines(invoice.id)]
    payments = [
        InvoicePaymentOut(
            payment_id=payment.id,
            amount=allocation.amount,
            paid_at=payment.settled_at,
            amount_refunded=allocation.amount_refunded,
        )
        for allocation, payment, _method in await repo.payments_applied(invoice.id)
    ]
    return InvoiceDetail(**invoice_out(invoice, today).model_dump(), lines=lines, payments=payments)


async def invoice_document(
    session: AsyncSession, principal: Principal, invoice: Invoice
) -> tuple[bytes, str]:
    repo = InvoiceRepository(session, principal)
    tenant = await repo.tenant()
    client = await repo.client_of(invoice)
    lines = await repo.lines(invoice.id)
    names = await repo.category_names({line.service_category_id for line in lines})
    document = InvoiceDocument(
        msp_name=tenant.name,
        client_name=client.name,
        client_email=client.billing_email,
        number=invoice.number,
        status=invoice.status,
        issued_on=invoice.issued_on,
        due_date=invoice.due_date,
        currency=invoice.currency,
        total=invoice.total,
        amount_paid=invoice.amount_paid,
        balance=invoice.balance,
        memo=invoice.memo,
        lines=[
            PdfLine(
                description=line.description,
                category=names.get(line.service_category_id, ""),
                quantity=line.quantity,
                unit_amount=line.unit_amount,
                amount=line.amount,
            )
            for line in lines
        ],
        payments=[
            PdfPayment(
                paid_at=payment.settled_at,
                amount=allocation.amount,
                refunded=allocation.amount_refunded,
            )
            for allocation, payment, _method in await repo.payments_applied(invoice.id)
        ],
    )
    filename = f"{invoice.number or 'draft-' + str(invoice.id)[:8]}.pdf"
    return render_invoice_pdf(document), filename
