"""Scheduling payments: what clients (and staff for them), AutoPay and disputes do to a
scheduled payment. Every change goes through `transitions.transition`; the runner's side is in
`attempts.py`.

The scheduled payments of one invoice never add up to more than what it still owes (AutoPay's
included): creating or growing one locks the invoice and checks the sum.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import today_in, utcnow
from app.core.errors import Unprocessable
from app.core.etag import check_if_match
from app.core.principal import ClientPrincipal, Principal
from app.invoices.repository import InvoiceRepository
from app.models import Invoice, PaymentMethod, ScheduledPayment
from app.payment_methods.repository import PaymentMethodRepository
from app.scheduled_payments.errors import ScheduledPaymentLocked, ScheduledPaymentNotFound
from app.scheduled_payments.repository import OPEN_STATUSES, ScheduledPaymentRepository
from app.scheduled_payments.rules import start_of_day
from app.scheduled_payments.schemas import ScheduledPaymentCreate, ScheduledPaymentUpdate
from app.scheduled_payments.transitions import Status, scheduled_event, transition
from app.tenancy.repository import TenantRepository
from app.tickets.repository import TicketRepository

DISPUTED = "disputed"


class OverScheduled(Unprocessable):
    type_slug = "scheduled-over-balance"
    title = "More scheduled than owed"

    def __init__(self, balance: int, scheduled: int) -> None:
        super().__init__(
            f"The invoice's scheduled payments would add up to more than it owes ({balance}); "
            f"{scheduled} is scheduled already (AutoPay's included).",
            loc=("body", "amount"),
        )


def schedule(
    session: AsyncSession,
    *,
    invoice: Invoice,
    method_id: uuid.UUID,
    amount: int,
    day: date,
    timezone: str,
    origin: str,
    rule_id: uuid.UUID | None = None,
    disputed: bool = False,
    event_data: Mapping[str, object] | None = None,
) -> ScheduledPayment:
    """A new scheduled payment (on hold from the start when its invoice is disputed)."""
    now = utcnow()
    payment = ScheduledPayment(
        id=uuid.uuid4(),
        tenant_id=invoice.tenant_id,
        client_id=invoice.client_id,
        invoice_id=invoice.id,
        payment_method_id=method_id,
        amount=amount,
        currency=invoice.currency,
        scheduled_for=day,
        status="on_hold" if disputed else "scheduled",
        hold_reason=DISPUTED if disputed else None,
        origin=origin,
        rule_id=rule_id,
        attempts=0,
        manual_attempts=0,
        next_attempt_at=start_of_day(day, timezone),
        version=1,
        created_at=now,
        updated_at=now,
    )
    session.add(payment)
    scheduled_event(session, payment, "scheduled_payment.created", **(event_data or {}))
    return payment


async def create_scheduled_payment(
    session: AsyncSession, acting: ClientPrincipal, data: ScheduledPaymentCreate
) -> ScheduledPayment:
    invoice = await _payable_invoice(session, acting, data.invoice_id)
    await live_method(session, acting, data.payment_method_id)
    timezone = (await TenantRepository(session, acting).current()).timezone
    _check_date(data.scheduled_for, timezone)
    await _check_fits(session, acting, invoice, data.amount)
    disputed = bool(await TicketRepository(session, acting).open_disputes([invoice.id]))
    payment = schedule(
        session,
        invoice=invoice,
        method_id=data.payment_method_id,
        amount=data.amount,
        day=data.scheduled_for,
        timezone=timezone,
        origin="manual",
        disputed=disputed,
    )
    await session.flush()
    return payment


async def lock_for_change(
    session: AsyncSession, principal: Principal, payment_id: uuid.UUID
) -> ScheduledPayment:
    """One of the caller's scheduled payments, row-locked after its invoice: the order the
    runner, AutoPay's replanning and disputes take them in. Locking the payment first, a
    change or a try-now beside a replanning each held a row the other waited for."""
    repo = ScheduledPaymentRepository(session, principal)
    invoice_id = await repo.invoice_of(payment_id)
    if invoice_id is None:
        raise ScheduledPaymentNotFound()
    await InvoiceRepository(session, principal).lock_one(invoice_id)
    return await repo.get_or_404(payment_id, for_update=True)


async def update_scheduled_payment(
    session: AsyncSession,
    acting: ClientPrincipal,
    payment: ScheduledPayment,
    data: ScheduledPaymentUpdate,
    *,
    if_match: str | None,
) -> ScheduledPayment:
    """A new date, amount or method while it waits. `payment` comes row-locked."""
    check_if_match(if_match, payment.version)
    if payment.status not in ("scheduled", "on_hold"):
        raise ScheduledPaymentLocked(
            f"Only a scheduled payment can be changed; this one is {payment.status}."
        )
    given = data.model_dump(exclude_unset=True)
    changes: dict[str, Any] = {}
    if given.get("amount") is not None:
        invoice = await InvoiceRepository(session, acting).lock_one(payment.invoice_id)
        await _check_fits(session, acting, invoice, given["amount"], leaving_out=payment.id)
        changes["amount"] = given["amount"]
    if given.get("scheduled_for") is not None:
        timezone = (await TenantRepository(session, acting).current()).timezone
        _check_date(given["scheduled_for"], timezone)
        changes["scheduled_for"] = given["scheduled_for"]
        changes["next_attempt_at"] = start_of_day(given["scheduled_for"], timezone)
    if given.get("payment_method_id") not in (None, payment.payment_method_id):
        await live_method(session, acting, given["payment_method_id"])
        changes["payment_method_id"] = given["payment_method_id"]
        if _waiting_for_retry(payment) and "next_attempt_at" not in changes:
            changes["next_attempt_at"] = utcnow()  # a new method: try it at the next pass
    if changes:
        status = cast(Status, payment.status)
        transition(session, payment, status, event="scheduled_payment.updated", **changes)
    await session.flush()
    return payment


async def cancel_scheduled_payment(
    session: AsyncSession, payment: ScheduledPayment
) -> ScheduledPayment:
    """`payment` comes row-locked from the caller's transaction."""
    if payment.status == "canceled":
        return payment
    if payment.status not in ("scheduled", "on_hold"):
        raise ScheduledPaymentLocked(
            f"Processing has started (status {payment.status}); it can no longer be canceled."
        )
    cancel(session, payment, "canceled by the client")
    await session.flush()
    return payment


def cancel(session: AsyncSession, payment: ScheduledPayment, reason: str) -> None:
    transition(
        session,
        payment,
        "canceled",
        event="scheduled_payment.canceled",
        event_data={"reason": reason},
        cancel_reason=reason,
        lease_expires_at=None,
    )


def follow_autopay(
    session: AsyncSession,
    payment: ScheduledPayment,
    *,
    amount: int,
    day: date,
    starts_at: datetime,
    method_id: uuid.UUID,
    event_data: Mapping[str, object] | None = None,
) -> None:
    """AutoPay's rules changed: its waiting payment follows. One waiting for a retry keeps its
    retry time, unless its method changed: a new method is tried at the next pass."""
    if payment.attempts == 0:
        next_attempt = starts_at
    elif method_id != payment.payment_method_id:
        next_attempt = utcnow()
    else:
        next_attempt = max(payment.next_attempt_at, starts_at)
    transition(
        session,
        payment,
        cast(Status, payment.status),
        event="scheduled_payment.updated",
        event_data={"reason": "autopay changed", **(event_data or {})},
        amount=amount,
        scheduled_for=day,
        next_attempt_at=next_attempt,
        payment_method_id=method_id,
    )


async def retry_on_new_method(
    session: AsyncSession, principal: Principal, method: PaymentMethod
) -> None:
    """A client added a payment method: AutoPay's payments waiting for a retry move to it and
    are tried at the next runner pass, not days later."""
    waiting = await ScheduledPaymentRepository(session, principal).waiting_for_retry(
        method.client_id, origin="autopay"
    )
    for payment in waiting:
        transition(
            session,
            payment,
            "scheduled",
            event="scheduled_payment.updated",
            event_data={"reason": "a new payment method was added"},
            payment_method_id=method.id,
            next_attempt_at=utcnow(),
        )


async def hold_for_dispute(
    session: AsyncSession, principal: Principal, invoice_id: uuid.UUID
) -> None:
    """An open billing dispute: the invoice's waiting payments are held (AutoPay's and the
    client's own); one being charged right now is held by the runner when it ends."""
    await _one_dispute_change_at_a_time(session, principal, invoice_id)
    waiting = await ScheduledPaymentRepository(session, principal).for_invoices(
        [invoice_id], statuses=("scheduled",), for_update=True
    )
    for payment in waiting:
        transition(
            session,
            payment,
            "on_hold",
            event="scheduled_payment.updated",
            event_data={"reason": "the invoice is disputed"},
            hold_reason=DISPUTED,
        )


async def release_dispute(
    session: AsyncSession, principal: Principal, invoice_id: uuid.UUID
) -> None:
    """The dispute is closed (and no other is open): held payments wait again; a date now past
    is simply due at the next runner pass."""
    await _one_dispute_change_at_a_time(session, principal, invoice_id)
    if await TicketRepository(session, principal).open_disputes([invoice_id]):
        return
    held = await ScheduledPaymentRepository(session, principal).for_invoices(
        [invoice_id], statuses=("on_hold",), for_update=True
    )
    for payment in held:
        if payment.hold_reason == DISPUTED:
            transition(
                session,
                payment,
                "scheduled",
                event="scheduled_payment.updated",
                event_data={"reason": "the dispute is closed"},
            )


async def _one_dispute_change_at_a_time(
    session: AsyncSession, principal: Principal, invoice_id: uuid.UUID
) -> None:
    """Lock the invoice: of two disputes about it closed at once, the second to take the lock
    sees the first closed (and resumes the payments); without it, each saw the other still
    open and the payments stayed on hold for good."""
    await InvoiceRepository(session, principal).lock_one(invoice_id)


async def live_method(
    session: AsyncSession,
    acting: ClientPrincipal,
    method_id: uuid.UUID,
    *,
    loc: Sequence[str | int] = ("body", "payment_method_id"),
) -> None:
    """The client's payment method exists, or a 422 naming the field (a body reference)."""
    method = await PaymentMethodRepository(session, acting).live(
        method_id, client_id=acting.client_id
    )
    if method is None:
        raise Unprocessable("No such payment method.", loc=loc)


def _waiting_for_retry(payment: ScheduledPayment) -> bool:
    return payment.status == "scheduled" and payment.attempts > 0


async def _payable_invoice(
    session: AsyncSession, acting: ClientPrincipal, invoice_id: uuid.UUID
) -> Invoice:
    invoice = await InvoiceRepository(session, acting).lock_one(invoice_id)
    if invoice is None or invoice.status == "draft":
        raise Unprocessable("No such invoice.", loc=("body", "invoice_id"))
    if invoice.status != "open":
        raise Unprocessable(
            f"The invoice is {invoice.status}; only open invoices can be paid.",
            loc=("body", "invoice_id"),
        )
    return invoice


async def _check_fits(
    session: AsyncSession,
    principal: Principal,
    invoice: Invoice | None,
    amount: int,
    *,
    leaving_out: uuid.UUID | None = None,
) -> None:
    """The invoice's open scheduled payments plus `amount` stay within its balance."""
    assert invoice is not None, "a scheduled payment's invoice exists"
    others = await ScheduledPaymentRepository(session, principal).for_invoices(
        [invoice.id], statuses=OPEN_STATUSES
    )
    scheduled = sum(p.amount for p in others if p.id != leaving_out)
    if amount > invoice.balance:
        raise Unprocessable(
            f"The amount is more than the invoice's balance ({invoice.balance}).",
            loc=("body", "amount"),
        )
    if scheduled + amount > invoice.balance:
        raise OverScheduled(invoice.balance, scheduled)


def _check_date(day: date, timezone: str) -> None:
    today = today_in(timezone)
    if day < today:
        raise Unprocessable(
            f"scheduled_for must be today ({today.isoformat()}) or later.",
            loc=("body", "scheduled_for"),
        )
