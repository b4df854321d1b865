"""Payment events: the payment as the API lists it, after the change."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.events import record_event
from app.core.principal import Principal
from app.models import Payment, Refund
from app.payments.presenter import present_payments
from app.payments.repository import PaymentRepository
from app.payments.schemas import PaymentOut, RefundOut


async def record_payment_event(
    session: AsyncSession,
    principal: Principal,
    payment: Payment,
    type_: str,
    *,
    shown: PaymentOut | None = None,
    **details: Any,
) -> None:
    """`shown`: the payment as presented, when the caller has what that takes in hand
    (`present_payment`); otherwise it is read."""
    if shown is None:
        await session.flush()
        (shown,) = await present_payments(PaymentRepository(session, principal), [payment])
    record_event(
        session,
        tenant_id=payment.tenant_id,
        client_id=payment.client_id,
        type=type_,
        subject_type="payment",
        subject_id=payment.id,
        data=shown.model_dump(mode="json"),
        details=details or None,
    )


def record_refund_event(
    session: AsyncSession, refund: Refund, payment: Payment, type_: str
) -> None:
    record_event(
        session,
        tenant_id=refund.tenant_id,
        client_id=payment.client_id,
        type=type_,
        subject_type="refund",
        subject_id=refund.id,
        data=RefundOut.model_validate(refund).model_dump(mode="json"),
    )
