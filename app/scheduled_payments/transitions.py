"""A scheduled payment's life, with one writer: every change of its status, version, attempts
and next attempt goes through `transition` (the runner, AutoPay, disputes and the API all call
the functions of this package; nothing else writes those fields).

    scheduled ──claim──▶ processing ──▶ succeeded
      │  ▲  ▲                │ ├──────▶ failed     (hard decline, retries used up, method gone)
      │  │  └─retry / defer / hand back┘ └──────▶ canceled   (invoice paid or void meanwhile)
      │  └──────resume── on_hold ◀── hold (an open billing dispute on the invoice)
      └──────────────────────────────────────────▶ canceled   (client, AutoPay off, invoice void)
    failed ──try now──▶ processing (a manual attempt; declined, it goes back to failed)

`scheduled → scheduled` is a change that keeps it waiting (moved, new amount or method, AutoPay's
rules changed); `processing → processing` parks an attempt whose payment's outcome is unknown
until reconciliation settles it. Succeeded and canceled are final.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, cast

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import utcnow
from app.core.events import record_event
from app.models import ScheduledPayment
from app.scheduled_payments.errors import ScheduledPaymentLocked
from app.scheduled_payments.schemas import ScheduledPaymentOut

Status = Literal["scheduled", "processing", "on_hold", "succeeded", "failed", "canceled"]
STATUSES: tuple[Status, ...] = (
    "scheduled",
    "processing",
    "on_hold",
    "succeeded",
    "failed",
    "canceled",
)

# Every allowed change of status, and what it means. Anything else is refused.
TRANSITIONS: Mapping[tuple[Status, Status], str] = {
    ("scheduled", "scheduled"): "changed while waiting",
    ("scheduled", "processing"): "an attempt starts (the runner's, or a manual one)",
    ("scheduled", "on_hold"): "held: its invoice is disputed",
    ("scheduled", "canceled"): "canceled before it started",
    ("on_hold", "scheduled"): "resumed: the dispute is closed",
    ("on_hold", "on_hold"): "changed while held",
    ("on_hold", "canceled"): "canceled while held",
    ("processing", "processing"): "its payment's outcome is unknown: wait for reconciliation",
    ("processing", "scheduled"): "waiting again: a retry, a deferral or a claim handed back",
    ("processing", "on_hold"): "held at run time: its invoice is disputed",
    ("processing", "succeeded"): "paid",
    ("processing", "failed"): "failed for good",
    ("processing", "canceled"): "nothing left to pay",
    ("failed", "processing"): "a manual attempt after it failed",
}


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
    if to != "on_hold":
        payment.hold_reason = None
    for name, value in changes.items():
        setattr(payment, name, value)
    payment.version += 1
    payment.updated_at = utcnow()
    if event is not None:
        scheduled_event(session, payment, event, **(event_data or {}))


def scheduled_event(
    session: AsyncSession, payment: ScheduledPayment, type_: str, **details: object
) -> None:
    """The payment as the API shows it after the change; `details` say why or how."""
    record_event(
        session,
        tenant_id=payment.tenant_id,
        client_id=payment.client_id,
        type=type_,
        subject_type="scheduled_payment",
        subject_id=payment.id,
        data=ScheduledPaymentOut.model_validate(payment).model_dump(mode="json"),
        details=dict(details) or None,
    )
