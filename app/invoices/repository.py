"""Invoice queries, scoped to the caller; client users never see drafts."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import Select, select, update

from app.core.pagination import PageParams, paginate
from app.core.repository import Repository
from app.invoices.errors import InvoiceNotFound
from app.models import Invoice, InvoiceLine, Payment, PaymentAllocation, Tenant


class InvoiceRepository(Repository[Invoice]):
    model = Invoice
    not_found = InvoiceNotFound

    def readable(self) -> Select[Invoice]:
        stmt = super().readable()
        if self.principal.is_client:
            stmt = stmt.where(Invoice.status != "draft")
        return stmt

    async def page(
        self,
        params: PageParams,
        *,
        client_id: uuid.UUID | None,
        status: str | None,
        overdue_on: date | None,
    ) -> tuple[list[Invoice], str | None]:
        stmt = self.readable()
        if client_id is not None:
            stmt = stmt.where(Invoice.client_id == client_id)
        if status is not None:
            stmt = stmt.where(Invoice.status == status)
        if overdue_on is not None:
            stmt = stmt.where(Invoice.status == "open", Invoice.due_date < overdue_on)
        return await paginate(self.session, stmt, params, [Invoice.created_at, Invoice.id])

    async def by_external_id(self, external_id: str) -> Invoice | None:
        stmt = self.readable().where(Invoice.external_id == external_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def lines(self, invoice_id: uuid.UUID) -> list[InvoiceLine]:
        stmt = (
            select(InvoiceLine)
            .where(InvoiceLine.invoice_id == invoice_id)
            .order_by(InvoiceLine.position)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def allocations(self, invoice_id: uuid.UUID) -> list[tuple[PaymentAllocation, Payment]]:
        stmt = (
            select(PaymentAllocation, Payment)
            .join(Payment, Payment.id == PaymentAllocation.payment_id)
            .where(PaymentAllocation.invoice_id == invoice_id)
            .order_by(PaymentAllocation.created_at, PaymentAllocation.id)
        )
        return [(a, p) for a, p in (await self.session.execute(stmt)).all()]

    async def next_number(self) -> int:
        # One statement, so two invoices issued at once can never share a number.
        stmt = (
            update(Tenant)
            .where(Tenant.id == self.principal.tenant_id)
            .values(next_invoice_number=Tenant.next_invoice_number + 1)
            .returning(Tenant.next_invoice_number - 1)
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def tenant(self) -> Tenant:
        tenant = await self.session.get(Tenant, self.principal.tenant_id)
        assert tenant is not None
        return tenant
