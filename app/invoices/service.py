"""Drafting, issuing and voiding invoices. Totals are computed here, never trusted."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import today_in, utcnow
from app.core.db import transaction
from app.core.errors import Unprocessable
from app.core.events import record_event
from app.core.hooks import Hooks
from app.core.principal import Principal
from app.invoices.errors import InvoiceStateConflict
from app.invoices.repository import InvoiceRepository
from app.invoices.schemas import InvoiceCreate
from app.models import Invoice, InvoiceLine
from app.tenancy.repository import ClientRepository, ServiceCategoryRepository

INVOICE_NUMBER_FORMAT = "INV-{:06d}"


async def create_invoice(
    sessionmaker: async_sessionmaker[AsyncSession], principal: Principal, data: InvoiceCreate
) -> tuple[Invoice, bool]:
    """A draft with its lines, or the invoice already pushed with this `external_id`.

    Returns the invoice and whether it was created now.
    """
    try:
        async with transaction(sessionmaker) as session:
            return await _create(session, principal, data)
    except IntegrityError:
        # The same external_id pushed twice at once: the other push won; return its invoice.
        if data.external_id is None:
            raise
        async with transaction(sessionmaker) as session:
            existing = await InvoiceRepository(session, principal).by_external_id(data.external_id)
            if existing is None:
                raise
            return existing, False


async def _create(
    session: AsyncSession, principal: Principal, data: InvoiceCreate
) -> tuple[Invoice, bool]:
    invoices = InvoiceRepository(session, principal)
    if data.external_id is not None:
        existing = await invoices.by_external_id(data.external_id)
        if existing is not None:
            return existing, False
    if await ClientRepository(session, principal).get(data.client_id) is None:
        raise Unprocessable("No such client.", loc=("body", "client_id"))
    wanted = {line.service_category_id for line in data.lines}
    known = await ServiceCategoryRepository(session, principal).existing_ids(wanted)
    for index, line in enumerate(data.lines):
        if line.service_category_id not in known:
            raise Unprocessable(
                "No such service category.", loc=("body", "lines", index, "service_category_id")
            )
    invoice = Invoice(
        tenant_id=principal.tenant_id,
        client_id=data.client_id,
        status="draft",
        currency=data.currency,
        due_date=data.due_date,
        memo=data.memo,
        external_id=data.external_id,
        total=data.subtotal + data.tax_total,
        tax_total=data.tax_total,
        amount_paid=0,
        amount_reserved=0,
    )
    invoices.add(invoice)
    await session.flush()
    invoices.add_lines(
        [
            InvoiceLine(
                invoice_id=invoice.id,
                position=position,
                description=line.description,
                service_category_id=line.service_category_id,
                quantity=line.quantity,
                unit_amount=line.unit_amount,
                amount=line.amount,
                tax_amount=line.tax_amount,
                tax_label=line.tax_label,
            )
            for position, line in enumerate(data.lines)
        ]
    )
    record_event(
        session,
        tenant_id=principal.tenant_id,
        client_id=invoice.client_id,
        type="invoice.created",
        subject_type="invoice",
        subject_id=invoice.id,
        data={"total": invoice.total, "currency": invoice.currency},
    )
    await session.flush()
    return invoice, True


async def issue_invoice(
    session: AsyncSession, principal: Principal, invoice: Invoice, hooks: Hooks
) -> Invoice:
    """`draft → open` (or straight to `paid` when there is nothing to pay); `invoice` comes
    row-locked from the caller's transaction."""
    invoices = InvoiceRepository(session, principal)
    if invoice.status != "draft":
        raise InvoiceStateConflict(f"Only a draft can be issued; this invoice is {invoice.status}.")
    tenant = await invoices.tenant()
    invoice.number = INVOICE_NUMBER_FORMAT.format(await invoices.next_number())
    invoice.issued_on = today_in(tenant.timezone)
    # Nothing to pay (a zero total) is settled the moment it is issued.
    invoice.status = "paid" if invoice.total == 0 else "open"
    invoice.updated_at = utcnow()
    await session.flush()
    record_event(
        session,
        tenant_id=principal.tenant_id,
        client_id=invoice.client_id,
        type="invoice.issued",
        subject_type="invoice",
        subject_id=invoice.id,
        data={"number": invoice.number, "total": invoice.total},
    )
    await hooks.run_invoice_issued(session, principal, invoice)
    await session.flush()
    return invoice


async def void_invoice(
    session: AsyncSession, principal: Principal, invoice: Invoice, hooks: Hooks
) -> Invoice:
    """Only with nothing paid or held; `invoice` comes row-locked from the caller."""
    if invoice.status == "void":
        raise InvoiceStateConflict("The invoice is already void.")
    if invoice.status == "paid" or invoice.amount_paid > 0:
        raise InvoiceStateConflict(
            "Only an invoice with nothing paid can be voided: refund its payments first."
        )
    if invoice.amount_reserved > 0:
        raise InvoiceStateConflict("A payment on this invoice is being processed; retry shortly.")
    invoice.status = "void"
    invoice.voided_at = utcnow()
    invoice.updated_at = invoice.voided_at
    record_event(
        session,
        tenant_id=principal.tenant_id,
        client_id=invoice.client_id,
        type="invoice.voided",
        subject_type="invoice",
        subject_id=invoice.id,
    )
    await hooks.run_invoice_voided(session, principal, invoice)
    await session.flush()
    return invoice
