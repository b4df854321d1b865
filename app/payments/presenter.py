"""Payments as the API shows them: with their method (brand, last4) and what they paid."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence

from app.models import Payment, PaymentAllocation
from app.payments.repository import PaymentRepository, RefundRepository
from app.payments.schemas import (
    AllocationOut,
    PaymentDetail,
    PaymentMethodSummary,
    PaymentOut,
    RefundOut,
)


async def present_payments(
    repo: PaymentRepository, payments: Sequence[Payment]
) -> list[PaymentOut]:
    if not payments:
        return []
    allocations: dict[uuid.UUID, list[PaymentAllocation]] = defaultdict(list)
    for allocation in await repo.allocations([p.id for p in payments]):
        allocations[allocation.payment_id].append(allocation)
    methods = await repo.methods({p.payment_method_id for p in payments})
    numbers = await repo.invoice_numbers(
        {a.invoice_id for group in allocations.values() for a in group}
    )
    out = []
    for payment in payments:
        method = methods[payment.payment_method_id]
        mine = allocations[payment.id]
        out.append(
            PaymentOut(
                id=payment.id,
                client_id=payment.client_id,
                # The first invoice it pays; `allocations` has every one, once paid.
                invoice_id=mine[0].invoice_id,
                amount=payment.amount,
                currency=payment.currency,
                status=payment.status,
                origin=payment.origin,
                scheduled_payment_id=payment.scheduled_payment_id,
                payment_method=PaymentMethodSummary(
                    id=method.id, type=method.type, brand=method.brand, last4=method.last4
                ),
                amount_refunded=payment.amount_refunded,
                failure_code=payment.failure_code,
                failure_message=payment.failure_message,
                created_at=payment.created_at,
                settled_at=payment.settled_at,
                allocations=[
                    AllocationOut(
                        invoice_id=a.invoice_id,
                        invoice_number=numbers.get(a.invoice_id),
                        amount=a.amount,
                    )
                    for a in mine
                    if a.status == "applied"
                ],
            )
        )
    return out


async def payment_detail(
    payments: PaymentRepository, refunds: RefundRepository, payment: Payment
) -> PaymentDetail:
    (out,) = await present_payments(payments, [payment])
    history = [RefundOut.model_validate(r) for r in await refunds.of_payment(payment.id)]
    return PaymentDetail(**out.model_dump(), refunds=history)
