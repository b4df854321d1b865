"""Pay now: a client pays an invoice with a method on file, through the processor."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.db import transaction
from app.core.principal import Principal
from app.gateways.base import PaymentGateway
from app.payments.errors import PaymentDeclined, PaymentPending
from app.payments.processor import PaymentProcessor, PaymentRequest
from app.payments.repository import PaymentRepository
from app.payments.schemas import PaymentDetail


async def pay_invoice_now(
    sessionmaker: async_sessionmaker[AsyncSession],
    gateway: PaymentGateway,
    principal: Principal,
    *,
    invoice_id: uuid.UUID,
    payment_method_id: uuid.UUID,
    amount: int | None,
    idempotency_key: str | None,
) -> PaymentDetail:
    assert principal.client_id is not None
    request = PaymentRequest(
        tenant_id=principal.tenant_id,
        client_id=principal.client_id,
        invoice_id=invoice_id,
        payment_method_id=payment_method_id,
        amount=amount,
        origin="pay_now",
        # A retry after a lost response resumes this payment instead of making another.
        request_key=f"{principal.actor_key}:{idempotency_key}" if idempotency_key else None,
    )
    payment = await PaymentProcessor(sessionmaker, gateway).pay(request)
    if payment.status == "failed":
        raise PaymentDeclined(
            payment_id=payment.id,
            code=payment.failure_code or "declined",
            message=payment.failure_message or "the card was declined",
        )
    if payment.status == "pending":
        raise PaymentPending(payment.id)
    async with transaction(sessionmaker) as session:
        return await PaymentRepository(session, principal).detail(payment.id)
