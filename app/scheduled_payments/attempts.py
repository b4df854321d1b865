"""Attempts at a scheduled payment: the runner's automatic ones (claimed from the queue under a
lease) and the manual "try now" ones, which are counted apart and do not use up an automatic
attempt. Every change goes through `transitions.transition`.

Keys: automatic attempt n is `scheduled:<id>:<n>` (request) / `scheduled_<id>_<n>` (gateway);
manual attempt n is `scheduled:<id>:m<n>` / `scheduled_<id>_m<n>`. A row whose attempt's
payment is still pending names it in `last_payment_id`, and is resumed through it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import utcnow
from app.models import Payment, ScheduledPayment
from app.scheduled_payments.errors import ScheduledPaymentLocked
from app.scheduled_payments.repository import Claim, ScheduledPaymentQueue
from app.scheduled_payments.rules import next_retry_at
from app.scheduled_payments.service import DISPUTED
from app.scheduled_payments.transitions import Status, transition

# Another payment on the invoice is in flight: look again after this long.
BUSY_INVOICE_DELAY = timedelta(minutes=15)
# A manual attempt holds its row this long while it runs (the request takes seconds).
MANUAL_LEASE = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class AttemptKeys:
    request_key: str
    gateway_key: str


def automatic_keys(payment: ScheduledPayment, attempt: int) -> AttemptKeys:
    return AttemptKeys(f"scheduled:{payment.id}:{attempt}", f"scheduled_{payment.id}_{attempt}")


def manual_keys(payment: ScheduledPayment) -> AttemptKeys:
    n = payment.manual_attempts
    return AttemptKeys(f"scheduled:{payment.id}:m{n}", f"scheduled_{payment.id}_m{n}")


# -- the runner's queue -----------------------------------------------------------------------


async def claim_due(
    session: AsyncSession, limit: int, *, lease: timedelta, recover_before: datetime | None
) -> list[Claim]:
    """`scheduled → processing` for what is due (a new attempt), and runners' lost claims."""
    now = utcnow()
    return await ScheduledPaymentQueue(session).claim(
        limit, now=now, lease_until=now + lease, recover_before=recover_before
    )


async def backlog(session: AsyncSession) -> tuple[int, timedelta]:
    """How many payments are due and waiting, and how long the oldest has waited."""
    now = utcnow()
    count, oldest = await ScheduledPaymentQueue(session).backlog(now)
    return count, (now - oldest) if oldest is not None else timedelta(0)


async def renew_claims(session: AsyncSession, claims: list[Claim], *, lease: timedelta) -> None:
    await ScheduledPaymentQueue(session).renew(claims, lease_until=utcnow() + lease)


async def hand_back(session: AsyncSession, claims: list[Claim]) -> None:
    """`processing → scheduled` for claims the runner will not start: due again at once."""
    await ScheduledPaymentQueue(session).hand_back(claims, now=utcnow())


# -- one attempt --------------------------------------------------------------------------------


def attempt_started(payment: ScheduledPayment, charge: Payment) -> None:
    """The attempt's payment is reserved (not a change of status)."""
    payment.last_payment_id = charge.id


def start_manual(
    session: AsyncSession, payment: ScheduledPayment, *, method_id: uuid.UUID | None = None
) -> None:
    """A manual attempt takes the row (it is `scheduled` after a failed attempt, or `failed`),
    on a new method when one is given, remembering where to return if it is declined."""
    if not (payment.status == "failed" or (payment.status == "scheduled" and payment.attempts)):
        raise ScheduledPaymentLocked(
            "Only a payment that failed, or waits for a retry after a failed attempt, can be "
            f"tried now; this one is {payment.status}"
            + (" and was never tried." if payment.status == "scheduled" else ".")
        )
    transition(
        session,
        payment,
        "processing",
        event=None,
        resume_status=payment.status,
        manual_attempts=payment.manual_attempts + 1,
        lease_expires_at=utcnow() + MANUAL_LEASE,
        payment_method_id=method_id or payment.payment_method_id,
    )


def defer(session: AsyncSession, payment: ScheduledPayment) -> None:
    """Not an attempt (nothing was tried): the attempt is given back, look again later."""
    if payment.resume_status is not None:
        _end_manual(session, payment, None)
        return
    transition(
        session,
        payment,
        "scheduled",
        event=None,
        attempts=payment.attempts - 1,
        lease_expires_at=None,
        next_attempt_at=utcnow() + BUSY_INVOICE_DELAY,
    )


def hold(session: AsyncSession, payment: ScheduledPayment) -> None:
    """The invoice is disputed: the attempt is given back and the payment waits on hold."""
    attempts = payment.attempts if payment.resume_status else payment.attempts - 1
    transition(
        session,
        payment,
        "on_hold",
        event="scheduled_payment.updated",
        event_data={"reason": "the invoice is disputed"},
        hold_reason=DISPUTED,
        attempts=attempts,
        resume_status=None,
        lease_expires_at=None,
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
        resume_status=None,
    )


def attempt_finished(
    session: AsyncSession,
    payment: ScheduledPayment,
    charge: Payment,
    *,
    method_type: str | None,
    retry_days: list[int],
    pending_wait: timedelta,
) -> str:
    """Record what the attempt's payment came to; returns the outcome's name."""
    payment.last_payment_id = charge.id
    if charge.status == "pending":
        # The gateway's answer is unknown: reconciliation settles the payment, and this row is
        # taken again once this longer lease lapses, and resumed through its payment.
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
            resume_status=None,
        )
        return "succeeded"
    if payment.resume_status is not None:
        return _end_manual(session, payment, charge)
    assert method_type is not None, "a declined payment's method type is read"
    retry_at = next_retry_at(
        utcnow(), payment.attempts, retry_days, charge.failure_code, method_type
    )
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


def _end_manual(session: AsyncSession, payment: ScheduledPayment, charge: Payment | None) -> str:
    """A manual attempt that did not pay: back to where it was (failed, or waiting for its
    automatic retry at the time it had), with what the gateway said."""
    back = cast(Status, payment.resume_status)
    changes: dict[str, object] = {"resume_status": None, "lease_expires_at": None}
    if charge is not None:
        changes |= {
            "failure_code": charge.failure_code,
            "failure_reason": (charge.failure_message or "declined")[:500],
        }
    event = "scheduled_payment.failed" if back == "failed" else "scheduled_payment.updated"
    code = charge.failure_code if charge is not None else None
    transition(session, payment, back, event=event, event_data={"failure_code": code}, **changes)
    return "declined" if charge is not None else "deferred"
