"""Payment history queries: one query for the page, one each for the methods and the
allocations behind it (no N+1)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import select

from app.core.pagination import PageParams, paginate
from app.core.repository import Repository
from app.models import Invoice, Payment, PaymentAllocation, PaymentMethod, Refund
from app.payments.errors import PaymentNotFound
from app.payments.schemas import (
    AllocationOut,
    PaymentDetail,
    PaymentMethodSummary,
    PaymentOut,
    RefundOut,
)


class PaymentRepository(Repository[Payment]):
    model = Payment
    not_found = PaymentNotFound

    async def page(
        self,
        params: PageParams,
        *,
        client_id: uuid.UUID | None,
        status: str | None,
        invoice_id: uuid.UUID | None,
    ) -> tuple[list[PaymentOut], str | None]:
        stmt = self.readable()
        if client_id is not None:
            stmt = stmt.where(Payment.client_id == client_id)
        if status is not None:
            stmt = stmt.where(Payment.status == status)
        if invoice_id is not None:
            stmt = stmt.where(Payment.invoice_id == invoice_id)
        rows, cursor = await paginate(self.session, stmt, params, [Payment.created_at, Payment.id])
        return await self.present(rows), cursor

    async def detail(self, payment_id: uuid.UUID) -> PaymentDetail:
        payment = await self.get_or_404(payment_id)
        (out,) = await self.present([payment])
        stmt = (
            select(Refund)
            .where(Refund.payment_id == payment.id)
            .order_by(Refund.created_at, Refund.id)
        )
        refunds = [
            RefundOut.model_validate(r) for r in (await self.session.execute(stmt)).scalars()
        ]
        return PaymentDetail(**out.model_dump(), refunds=refunds)

    async def present(self, payments: Sequence[Payment]) -> list[PaymentOut]:
        if not payments:
            return []
        method_ids = {p.payment_method_id for p in payments}
        methods = {
            m.id: m
            for m in (
                await self.session.execute(
                    select(PaymentMethod).where(PaymentMethod.id.in_(method_ids))
                )
            ).scalars()
        }
        allocation_rows = await self.session.execute(
            select(PaymentAllocation, Invoice.number)
            .join(Invoice, Invoice.id == PaymentAllocation.invoice_id)
            .where(PaymentAllocation.payment_id.in_([p.id for p in payments]))
        )
        allocations: dict[uuid.UUID, list[AllocationOut]] = defaultdict(list)
        for allocation, number in allocation_rows.all():
            allocations[allocation.payment_id].append(
                AllocationOut(
                    invoice_id=allocation.invoice_id,
                    invoice_number=number,
                    amount=allocation.amount,
                )
            )
        out = []
        for payment in payments:
            method = methods[payment.payment_method_id]
            out.append(
                PaymentOut(
                    id=payment.id,
                    client_id=payment.client_id,
                    invoice_id=payment.invoice_id,
                    amount=payment.amount,
                    currency=payment.currency,
                    status=payment.status,
                    origin=payment.origin,
                    scheduled_payment_id=payment.scheduled_payment_id,
                    payment_method=PaymentMethodSummary(
                        id=method.id,
                        type=method.type,
                        brand=method.brand,
                        last4=method.last4,
                    ),
                    amount_refunded=payment.amount_refunded,
                    failure_code=payment.failure_code,
                    failure_message=payment.failure_message,
                    created_at=payment.created_at,
                    settled_at=payment.settled_at,
                    allocations=allocations[payment.id],
                )
            )
        return out
