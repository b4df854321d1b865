"""Scheduled-payment queries, scoped to the caller."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from app.core.pagination import PageParams, paginate
from app.core.repository import Repository
from app.models import ScheduledPayment
from app.scheduled_payments.errors import ScheduledPaymentNotFound

OPEN_STATUSES = ("scheduled", "processing")


class ScheduledPaymentRepository(Repository[ScheduledPayment]):
    model = ScheduledPayment
    not_found = ScheduledPaymentNotFound

    async def page(
        self,
        params: PageParams,
        *,
        client_id: uuid.UUID | None,
        status: str | None,
        invoice_id: uuid.UUID | None,
    ) -> tuple[list[ScheduledPayment], str | None]:
        stmt = self.readable()
        if client_id is not None:
            stmt = stmt.where(ScheduledPayment.client_id == client_id)
        if status is not None:
            stmt = stmt.where(ScheduledPayment.status == status)
        if invoice_id is not None:
            stmt = stmt.where(ScheduledPayment.invoice_id == invoice_id)
        return await paginate(
            self.session, stmt, params, [ScheduledPayment.created_at, ScheduledPayment.id]
        )

    async def autopay_pending(self, client_id: uuid.UUID) -> list[ScheduledPayment]:
        """AutoPay's payments that have not started, locked for change."""
        stmt = (
            self.readable()
            .where(
                ScheduledPayment.client_id == client_id,
                ScheduledPayment.origin == "autopay",
                ScheduledPayment.status == "scheduled",
            )
            .with_for_update()
        )
        return list((await self.session.execute(stmt)).scalars())

    async def for_invoice(
        self, invoice_id: uuid.UUID, *, statuses: tuple[str, ...] | None = None
    ) -> list[ScheduledPayment]:
        stmt = self.readable().where(ScheduledPayment.invoice_id == invoice_id)
        if statuses is not None:
            stmt = stmt.where(ScheduledPayment.status.in_(statuses))
        stmt = stmt.order_by(ScheduledPayment.created_at)
        return list((await self.session.execute(stmt)).scalars())

    async def uses_method(self, method_id: uuid.UUID) -> bool:
        stmt = (
            select(ScheduledPayment.id)
            .where(
                ScheduledPayment.payment_method_id == method_id,
                ScheduledPayment.status.in_(OPEN_STATUSES),
            )
            .limit(1)
        )
        return (await self.session.execute(stmt)).first() is not None
