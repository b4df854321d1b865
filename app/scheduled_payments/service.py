"""Scheduling, moving and canceling payments; the rules are in `rules.py`."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import today_in, utcnow
from app.core.errors import Unprocessable
from app.core.etag import check_if_match
from app.core.events import record_event
from app.core.principal import Principal
from app.models import Invoice, PaymentMethod, ScheduledPayment, Tenant
from app.scheduled_payments.errors import ScheduledPaymentLocked
from app.scheduled_payments.repository import ScheduledPaymentRepository
from app.scheduled_payments.rules import start_of_day
from app.scheduled_payments.schemas import ScheduledPaymentCreate, ScheduledPaymentUpdate


async def tenant_timezone(session: AsyncSession, tenant_id: uuid.UUID) -> str:
    tenant = await session.get(Tenant, tenant_id)
    assert tenant is not None
    return tenant.timezone


async def live_method(
    session: AsyncSession, principal: Principal, client_id: uuid.UUID, method_id: uuid.UUID
) -> PaymentMethod:
    """The client's payment method, or a 422 naming the field (it is a body reference)."""
    stmt = select(PaymentMethod).where(
        PaymentMethod.id == method_id,
        PaymentMethod.tenant_id == principal.tenant_id,
        PaymentMethod.client_id == client_id,
        PaymentMethod.deleted_at.is_(None),
    )
    method = (await session.execute(stmt)).scalar_one_or_none()
    if method is None:
        raise Unprocessable("No such payment method.", loc=("body", "payment_method_id"))
    return method


def schedule(
    session: AsyncSession,
    *,
    invoice: Invoice,
    method_id: uuid.UUID,
    amount: int,
    day: date,
    timezone: str,
    origin: str,
) -> ScheduledPayment:
    payment = ScheduledPayment(
        id=uuid.uuid4(),
        tenant_id=invoice.tenant_id,
        client_id=invoice.client_id,
        invoice_id=invoice.id,
        payment_method_id=method_id,
        amount=amount,
        currency=invoice.currency,
        scheduled_for=day,
        status="scheduled",
        origin=origin,
        attempts=0,
        next_attempt_at=start_of_day(day, timezone),
    )
    session.add(payment)
    scheduled_event(session, payment, "scheduled_payment.created")
    return payment


async def create_scheduled_payment(
    session: AsyncSession, principal: Principal, data: ScheduledPaymentCreate
) -> ScheduledPayment:
    assert principal.client_id is not None
    invoice = (
        await session.execute(
            select(Invoice).where(
                Invoice.id == data.invoice_id,
                Invoice.tenant_id == principal.tenant_id,
                Invoice.client_id == principal.client_id,
                Invoice.status != "draft",
            )
        )
    ).scalar_one_or_none()
    if invoice is None:
        raise Unprocessable("No such invoice.", loc=("body", "invoice_id"))
    if invoice.status != "open":
        raise Unprocessable(
            f"The invoice is {invoice.status}; only open invoices can be paid.",
            loc=("body", "invoice_id"),
        )
    await live_method(session, principal, principal.client_id, data.payment_method_id)
    _check_amount(data.amount, invoice)
    timezone = await tenant_timezone(session, principal.tenant_id)
    _check_date(data.scheduled_for, timezone)
    payment = schedule(
        session,
        invoice=invoice,
        method_id=data.payment_method_id,
        amount=data.amount,
        day=data.scheduled_for,
        timezone=timezone,
        origin="manual",
    )
    await session.flush()
    return payment


async def update_scheduled_payment(
    session: AsyncSession,
    principal: Principal,
    payment_id: uuid.UUID,
    data: ScheduledPaymentUpdate,
    *,
    if_match: str | None,
) -> ScheduledPayment:
    repo = ScheduledPaymentRepository(session, principal)
    payment = await repo.get_or_404(payment_id, for_update=True)
    check_if_match(if_match, payment.version)
    if payment.status != "scheduled":
        raise ScheduledPaymentLocked(
            f"Only a scheduled payment can be changed; this one is {payment.status}."
        )
    changes = data.model_dump(exclude_unset=True)
    if changes.get("amount") is not None:
        invoice = await session.get(Invoice, payment.invoice_id)
        assert invoice is not None
        _check_amount(changes["amount"], invoice)
        payment.amount = changes["amount"]
    if changes.get("scheduled_for") is not None:
        timezone = await tenant_timezone(session, principal.tenant_id)
        _check_date(changes["scheduled_for"], timezone)
        payment.scheduled_for = changes["scheduled_for"]
        payment.next_attempt_at = start_of_day(payment.scheduled_for, timezone)
    if changes:
        payment.version += 1
        payment.updated_at = utcnow()
        scheduled_event(session, payment, "scheduled_payment.updated")
    await session.flush()
    return payment


async def cancel_scheduled_payment(
    session: AsyncSession, principal: Principal, payment_id: uuid.UUID
) -> ScheduledPayment:
    repo = ScheduledPaymentRepository(session, principal)
    payment = await repo.get_or_404(payment_id, for_update=True)
    if payment.status == "canceled":
        return payment
    if payment.status != "scheduled":
        raise ScheduledPaymentLocked(
            f"Processing has started (status {payment.status}); it can no longer be canceled."
        )
    cancel(session, payment, "canceled by the client")
    await session.flush()
    return payment


def cancel(session: AsyncSession, payment: ScheduledPayment, reason: str) -> None:
    payment.status = "canceled"
    payment.cancel_reason = reason
    payment.lease_expires_at = None
    payment.version += 1
    payment.updated_at = utcnow()
    scheduled_event(session, payment, "scheduled_payment.canceled", reason=reason)


def scheduled_event(
    session: AsyncSession, payment: ScheduledPayment, type_: str, **data: object
) -> None:
    record_event(
        session,
        tenant_id=payment.tenant_id,
        client_id=payment.client_id,
        type=type_,
        subject_type="scheduled_payment",
        subject_id=payment.id,
        data={
            "invoice_id": str(payment.invoice_id),
            "amount": payment.amount,
            "scheduled_for": payment.scheduled_for.isoformat(),
            "origin": payment.origin,
            "status": payment.status,
            **data,
        },
    )


def _check_amount(amount: int, invoice: Invoice) -> None:
    if amount > invoice.balance:
        raise Unprocessable(
            f"The amount is more than the invoice's balance ({invoice.balance}).",
            loc=("body", "amount"),
        )


def _check_date(day: date, timezone: str) -> None:
    today = today_in(timezone)
    if day < today:
        raise Unprocessable(
            f"scheduled_for must be today ({today.isoformat()}) or later.",
            loc=("body", "scheduled_for"),
        )
