"""Drafting, replacing, issuing and voiding invoices. Totals are computed here, never trusted.

A PSA pushes invoices under its own id (`external_id`): the same id with the same content is the
same invoice, whatever the route; other content replaces a draft (`PUT`) and is refused once the
invoice is issued (409), since an issued invoice is the client's to pay as it was sent.
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import today_in, utcnow
from app.core.db import transaction
from app.core.errors import Unprocessable
from app.core.hooks import Hooks
from app.core.money import within_maximum
from app.core.principal import Principal
from app.invoices.errors import ExternalIdConflict, InvoiceStateConflict
from app.invoices.events import record_invoice_event
from app.invoices.repository import InvoiceRepository
from app.invoices.schemas import InvoiceCreate, InvoiceUpsert
from app.models import Invoice, InvoiceLine
from app.tenancy.repository import ClientRepository, ServiceCategoryRepository

INVOICE_NUMBER_FORMAT = "INV-{:06d}"
Upserted = Literal["created", "replaced", "unchanged"]


async def create_invoice(
    sessionmaker: async_sessionmaker[AsyncSession], principal: Principal, data: InvoiceCreate
) -> tuple[Invoice, bool]:
    """A draft with its lines, or the invoice already pushed with this `external_id` and the
    same content (another content is 409).

    Returns the invoice and whether it was created now.
    """
    try:
        async with transaction(sessionmaker) as session:
            return await _create_or_find(session, principal, data)
    except IntegrityError:
        # The same external_id pushed twice at once: the other push won; this one is the same
        # invoice if it says the same.
        if data.external_id is None:
            raise
        async with transaction(sessionmaker) as session:
            found = await _create_or_find(session, principal, data)
            if found[1]:
                raise
            return found


async def upsert_invoice(
    sessionmaker: async_sessionmaker[AsyncSession],
    principal: Principal,
    external_id: str,
    data: InvoiceUpsert,
) -> tuple[Invoice, Upserted]:
    """Create the PSA's invoice, or replace its draft; an issued one only if nothing differs."""
    try:
        async with transaction(sessionmaker) as session:
            return await _upsert(session, principal, external_id, data)
    except IntegrityError:
        # Created by another push at the same moment: now it exists, replace it.
        async with transaction(sessionmaker) as session:
            return await _upsert(session, principal, external_id, data)


async def _create_or_find(
    session: AsyncSession, principal: Principal, data: InvoiceCreate
) -> tuple[Invoice, bool]:
    if data.external_id is not None:
        existing = await InvoiceRepository(session, principal).by_external_id(data.external_id)
        if existing is not None:
            if not await _says_the_same(session, principal, existing, data):
                raise ExternalIdConflict(
                    f"An invoice with external_id {data.external_id!r} exists with other "
                    "content. Replace a draft with PUT /invoices/by-external-id/{external_id}."
                )
            return existing, False
    return await _create(session, principal, data, data.external_id), True


async def _upsert(
    session: AsyncSession, principal: Principal, external_id: str, data: InvoiceUpsert
) -> tuple[Invoice, Upserted]:
    invoices = InvoiceRepository(session, principal)
    existing = await invoices.by_external_id(external_id, for_update=True)
    if existing is None:
        return await _create(session, principal, data, external_id), "created"
    if await _says_the_same(session, principal, existing, data):
        return existing, "unchanged"
    if existing.status != "draft":
        raise ExternalIdConflict(
            f"The invoice with external_id {external_id!r} is {existing.status}: an issued "
            "invoice cannot be replaced."
        )
    await _check_references(session, principal, data)
    previous_total = existing.total
    existing.client_id = data.client_id
    existing.currency = data.currency
    existing.due_date = data.due_date
    existing.memo = data.memo
    existing.total = within_maximum(data.subtotal + data.tax_total, what="An invoice's total")
    existing.tax_total = data.tax_total
    existing.updated_at = utcnow()
    await invoices.replace_lines(existing.id, _lines(existing, data))
    await session.flush()
    details = {"replaced_by": "external_id", "previous_total": previous_total}
    await record_invoice_event(session, principal, existing, "invoice.updated", details)
    return existing, "replaced"


async def _create(
    session: AsyncSession, principal: Principal, data: InvoiceUpsert, external_id: str | None
) -> Invoice:
    invoices = InvoiceRepository(session, principal)
    await _check_references(session, principal, data)
    invoice = Invoice(
        tenant_id=principal.tenant_id,
        client_id=data.client_id,
        status="draft",
        currency=data.currency,
        due_date=data.due_date,
        memo=data.memo,
        external_id=external_id,
        total=within_maximum(data.subtotal + data.tax_total, what="An invoice's total"),
        tax_total=data.tax_total,
        amount_paid=0,
        amount_reserved=0,
    )
    invoices.add(invoice)
    await session.flush()
    invoices.add_lines(_lines(invoice, data))
    await session.flush()
    await record_invoice_event(session, principal, invoice, "invoice.created")
    return invoice


async def _check_references(
    session: AsyncSession, principal: Principal, data: InvoiceUpsert
) -> None:
    if await ClientRepository(session, principal).get(data.client_id) is None:
        raise Unprocessable("No such client.", loc=("body", "client_id"))
    wanted = {line.service_category_id for line in data.lines}
    known = await ServiceCategoryRepository(session, principal).existing_ids(wanted)
    for index, line in enumerate(data.lines):
        if line.service_category_id not in known:
            raise Unprocessable(
                "No such service category.", loc=("body", "lines", index, "service_category_id")
            )


def _lines(invoice: Invoice, data: InvoiceUpsert) -> list[InvoiceLine]:
    return [
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


async def _says_the_same(
    session: AsyncSession, principal: Principal, invoice: Invoice, data: InvoiceUpsert
) -> bool:
    """The invoice has exactly the content `data` gives it."""
    lines = await InvoiceRepository(session, principal).lines(invoice.id)
    stored = (invoice.client_id, invoice.currency, invoice.due_date, invoice.memo)
    given = (data.client_id, data.currency, data.due_date, data.memo)
    return stored == given and [_line_content(x) for x in lines] == [
        _line_content(x) for x in data.lines
    ]


def _line_content(line: Any) -> tuple[Any, ...]:
    return (
        line.description,
        line.service_category_id,
        line.quantity,
        line.unit_amount,
        line.tax_amount,
        line.tax_label,
    )


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
    await record_invoice_event(session, principal, invoice, "invoice.issued")
    if invoice.status == "paid":
        await record_invoice_event(session, principal, invoice, "invoice.paid")
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
    await session.flush()
    await record_invoice_event(session, principal, invoice, "invoice.voided")
    await hooks.run_invoice_voided(session, principal, invoice)
    await session.flush()
    return invoice
