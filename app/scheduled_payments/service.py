"""A scheduled payment's life, with one writer: every change of its status, version, attempts
and next attempt happens here (the runner and AutoPay call in; nothing else writes them).

    scheduled ──claim──▶ processing ──▶ succeeded
        │ ▲                 │  ├──────▶ failed     (hard decline, retries used up, method gone)
        │ └─retry / defer / hand back ┘ └──────▶ canceled   (invoice paid or void meanwhile)
        └──────────────────────────────────────▶ canceled   (client, AutoPay off, invoice void)

`scheduled → scheduled` is a change that keeps it waiting (moved, new amount, AutoPay's rules
changed); `processing → processing` parks an attempt whose payment's outcome is unknown until
reconciliation has settled it. Succeeded, failed and canceled are final.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any, Literal, cast

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import today_in, utcnow
from app.core.errors import Unprocessable
from app.core.etag import check_if_match
from app.core.events import record_event
from app.core.principal import ClientPrincipal, Principal
from app.invoices.repository import InvoiceRepository
from app.models import Invoice, Payment, ScheduledPayment
from app.payment_methods.repository import PaymentMethodRepository
from app.scheduled_payments.errors import ScheduledPaymentLocked
from app.scheduled_payments.repository import Claim, ScheduledPaymentQueue
from app.scheduled_payments.rules import next_retry_at, start_of_day
from app.scheduled_payments.schemas import ScheduledPaymentCreate, ScheduledPaymentUpdate
from app.tenancy.repository import TenantRepository

Status = Literal["scheduled", "processing", "succeeded", "failed", "canceled"]

# Every allowed change of status, and what it means. Anything else is refused.
TRANSITIONS: Mapping[tuple[Status, Status], str] = {
    ("scheduled", "scheduled"): "changed while waiting",
    ("scheduled", "processing"): "claimed by a runner",
    ("scheduled", "canceled"): "canceled before it started",
    ("processing", "processing"): "its payment's outcome is unknown: wait for reconciliation",
    ("processing", "scheduled"): "waiting again: a retry, a deferral or a claim handed back",
    ("processing", "succeeded"): "paid",
    ("processing", "failed"): "failed for good",
    ("processing", "canceled"): "nothing left to pay",
}
STATUSES: tuple[Status, ...] = ("scheduled", "processing", "succeeded", "failed", "canceled")

# Another payment on the invoice is in flight: look again after this long.
BUSY_INVOICE_DELAY = timedelta(minutes=15)


class IllegalTransition(ScheduledPaymentLocked):
    def __init__(self, current: str, wanted: str) -> None:
        super().__init__(f"A {current} scheduled payment cannot become {wanted}.")


def transition(
    session: AsyncSession,
    payment: ScheduledPayment,
    to: Status,
    *,
    event: str | None,
    event_data: Mapping[str, Any] | None = None,
    **changes: Any,
) -> None:
    """The one place a scheduled payment changes: status, the given fields, its version."""
    current = cast(Status, payment.status)
    if (current, to) not in TRANSITIONS:
        raise IllegalTransition(current, to)
    payment.status = to
    for name, value in changes.items():
        setattr(payment, name, value)
    payment.version += 1
    payment.updated_at = utcnow()
    if event is not None:
        scheduled_event(session, payment, event, **(event_data or {}))


# -- what clients (and AutoPay) do ----------------------------------------------------------


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
        version=1,
    )
    session.add(payment)
    scheduled_event(session, payment, "scheduled_payment.created")
    return payment


async def create_scheduled_payment(
    session: AsyncSession, principal: ClientPrincipal, data: ScheduledPaymentCreate
) -> ScheduledPayment:
    invoice = await InvoiceRepository(session, principal).get(data.invoice_id)
    if invoice is None or invoice.status == "draft":
        raise Unprocessable("No such invoice.", loc=("body", "invoice_id"))
    if invoice.status != "open":
        raise Unprocessable(
            f"The invoice is {invoice.status}; only open invoices can be paid.",
            loc=("body", "invoice_id"),
        )
    await live_method(session, principal, data.payment_method_id)
    _check_amount(data.amount, invoice)
    timezone = (await TenantRepository(session, principal).current()).timezone
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
    payment: ScheduledPayment,
    data: ScheduledPaymentUpdate,
    *,
    if_match: str | None,
) -> ScheduledPayment:
    """`payment` comes row-locked from the caller's transaction."""
    check_if_match(if_match, payment.version)
    if payment.status != "scheduled":
        raise ScheduledPaymentLocked(
            f"Only a scheduled payment can be changed; this one is {payment.status}."
        )
    given = data.model_dump(exclude_unset=True)
    changes: dict[str, Any] = {}
    if given.get("amount") is not None:
        invoice = await InvoiceRepository(session, principal).get(payment.invoice_id)
        assert invoice is not None, "a scheduled payment's invoice exists"
        _check_amount(given["amount"], invoice)
        changes["amount"] = given["amount"]
    if given.get("scheduled_for") is not None:
        timezone = (await TenantRepository(session, principal).current()).timezone
        _check_date(given["scheduled_for"], timezone)
        changes["scheduled_for"] = given["scheduled_for"]
        changes["next_attempt_at"] = start_of_day(given["scheduled_for"], timezone)
    if changes:
        transition(session, payment, "scheduled", event="scheduled_payment.updated", **changes)
    await session.flush()
    return payment


async def cancel_scheduled_payment(
    session: AsyncSession, payment: ScheduledPayment
) -> ScheduledPayment:
    """`payment` comes row-locked from the caller's transaction."""
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
) -> None:
    """AutoPay's setting changed: its waiting payment follows. One waiting for a retry keeps
    its retry time: changing the setting must not pull the next attempt ahead of it."""
    transition(
        session,
        payment,
        "scheduled",
        event="scheduled_payment.updated",
        event_data={"reason": "autopay changed"},
        amount=amount,
        scheduled_for=day,
        next_attempt_at=(
            starts_at if payment.attempts == 0 else max(payment.next_attempt_at, starts_at)
        ),
        payment_method_id=method_id,
    )


async def live_method(
    session: AsyncSession, principal: ClientPrincipal, method_id: uuid.UUID
) -> None:
    """The client's payment method exists, or a 422 naming the field (a body reference)."""
    method = await PaymentMethodRepository(session, principal).live(
        method_id, client_id=principal.client_id
    )
    if method is None:
        raise Unprocessable("No such payment method.", loc=("body", "payment_method_id"))


# -- what the runner does -------------------------------------------------------------------


async def claim_due(
    session: AsyncSession, limit: int, *, lease: timedelta, recover_before: datetime | None
) -> list[Claim]:
    """`scheduled → processing` for what is due (a new attempt), and runners' lost claims."""
    now = utcnow()
    return await ScheduledPaymentQueue(session).claim(
        limit, now=now, lease_until=now + lease, recover_before=recover_before
    )


async def renew_claims(session: AsyncSession, claims: list[Claim], *, lease: timedelta) -> None:
    await ScheduledPaymentQueue(session).renew(claims, lease_until=utcnow() + lease)


async def hand_back(session: AsyncSession, claims: list[Claim]) -> None:
    """`processing → scheduled` for claims the runner will not start: due again at once."""
    await ScheduledPaymentQueue(session).hand_back(claims, now=utcnow())


def attempt_started(payment: ScheduledPayment, charge: Payment) -> None:
    """The attempt's payment is reserved (not a change of status)."""
    payment.last_payment_id = charge.id


def defer(session: AsyncSession, payment: ScheduledPayment) -> None:
    """Not an attempt (nothing was tried): the attempt is given back, look again later."""
    transition(
        session,
        payment,
        "scheduled",
        event=None,
        attempts=payment.attempts - 1,
        lease_expires_at=None,
        next_attempt_at=utcnow() + BUSY_INVOICE_DELAY,
    )


def fail(session: AsyncSession, payment: ScheduledPayment, *, code: str, reason: str) -> None:
    transition(
        session,
        payment,
        "failed",
        event="scheduled_payment.failed",
        event_data={"failure_code": code},
        failure_code=code,
        failure_reason=reason[:500],
        lease_expires_at=None,
    )


def attempt_finished(
    session: AsyncSession,
    payment: ScheduledPayment,
    charge: Payment,
    *,
    retry_days: list[int],
    pending_wait: timedelta,
) -> str:
    """Record what the attempt's payment came to; returns the outcome's name."""
    payment.last_payment_id = charge.id
    if charge.status == "pending":
        # The gateway's answer is unknown: reconciliation settles the payment, and this row is
        # taken again (same attempt, same key) once this longer lease lapses.
        transition(
            session, payment, "processing", event=None, lease_expires_at=utcnow() + pending_wait
        )
        return "pending"
    if charge.status == "succeeded":
        transition(
            session,
            payment,
            "succeeded",
            event="scheduled_payment.succeeded",
            event_data={"payment_id": str(charge.id)},
            failure_reason=None,
            failure_code=None,
            lease_expires_at=None,
        )
        return "succeeded"
    retry_at = next_retry_at(utcnow(), payment.attempts, retry_days, charge.failure_code)
    if retry_at is None:
        fail(
            session,
            payment,
            code=charge.failure_code or "declined",
            reason=charge.failure_message or "declined",
        )
        return "failed"
    transition(
        session,
        payment,
        "scheduled",
        event="scheduled_payment.retry_scheduled",
        event_data={"next_attempt_at": retry_at.isoformat(), "attempt": payment.attempts},
        next_attempt_at=retry_at,
        failure_code=charge.failure_code,
        failure_reason=charge.failure_message,
        lease_expires_at=None,
    )
    return "retrying"


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
