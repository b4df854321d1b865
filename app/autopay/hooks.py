"""AutoPay's and scheduling's part in other domains' transactions: scheduling on issue,
canceling on void, refusing to delete a payment method still needed, moving retries to a new
method, holding and resuming payments around a billing dispute."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.autopay.service import (
    cancel_for_voided_invoice,
    rules_use_method,
    schedule_for_issued_invoice,
)
from app.core.hooks import Hooks
from app.core.principal import Principal
from app.models import PaymentMethod
from app.scheduled_payments.repository import ScheduledPaymentRepository
from app.scheduled_payments.service import (
    hold_for_dispute,
    release_dispute,
    retry_on_new_method,
)


async def scheduled_payments_use_method(
    session: AsyncSession, principal: Principal, method: PaymentMethod
) -> bool:
    return await ScheduledPaymentRepository(session, principal).method_in_use(method.id)


def register(hooks: Hooks) -> None:
    hooks.invoice_issued.append(schedule_for_issued_invoice)
    hooks.invoice_voided.append(cancel_for_voided_invoice)
    hooks.payment_method_in_use += [rules_use_method, scheduled_payments_use_method]
    hooks.payment_method_added.append(retry_on_new_method)
    hooks.dispute_opened.append(hold_for_dispute)
    hooks.dispute_closed.append(release_dispute)
