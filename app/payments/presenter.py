"""Payments as the API shows them: with their method (brand, last4) and what they paid."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence

from app.models import Payment, PaymentAllocation, PaymentMethod, Refund
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
    numbers: dict[uuid.UUID, str | None] = {}
    methods: dict[uuid.UUID, PaymentMethod] = {}
    for allocation, number, method in await repo.shown([p.id for p in payments]):
        allocations[allocation.payment_id].append(allocation)
        numbers[allocation.invoice_id] = number
        methods[method.id] = method
    return [
        present_payment(p, methods[p.payment_method_id], allocations[p.id], numbers)
        for p in payments
    ]


def present_payment(
    payment: Payment,
    method: PaymentMethod,
    allocations: Sequence[PaymentAllocation],
    numbers: Mapping[uuid.UUID, str | None],
) -> PaymentOut:
    """One payment from what is already loaded: its method, its allocations in their order
    and its invoices' numbers (the money path has them in hand and reads nothing more)."""
    return PaymentOut(
        id=payment.id,
        client_id=payment.client_id,
        # The first invoice it pays; `allocations` has every one, once paid.
        invoice_id=allocations[0].invoice_id,
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
                invoice_id=a.invoice_id, invoice_number=numbers.get(a.invoice_id), amount=a.amount
            )
            for a in allocations
            if a.status == "applied"
        ],
    )


async def payment_detail(
    payments: PaymentRepository,
    refunds: RefundRepository,
    payment: Payment | uuid.UUID,
) -> PaymentDetail:
    """The payment with its allocations and refunds. Given an id (a read), the payment is
    loaded with its refunds in one statement, or 404."""
    history: list[Refund]
    if isinstance(payment, uuid.UUID):
        found = await payments.with_refunds(payment)
        if found is None:
            raise payments.not_found()
        payment, history = found
    else:
        history = await refunds.of_payment(payment.id)
    (out,) = await present_payments(payments, [payment])
    return PaymentDetail(**out.model_dump(), refunds=[RefundOut.model_validate(r) for r in history])
