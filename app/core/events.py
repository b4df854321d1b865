"""Recording events in the caller's transaction: an event exists exactly when its change does.

Each event is the audit trail's entry for one change: its `data` is the object after the
change as the API shows it (the list form, so events stay small), `details` what the change
was beyond that (fields before and after, its cause), and the actor, request id and reason come
from the request's audit context (`app/core/audit.py`), so no caller passes them.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.audit import current_audit
from app.core.clock import utcnow
from app.core.ids import time_ordered_uuid
from app.models.events import Event

# Every event type, with what causes it. Webhook endpoints subscribe to these names.
EVENT_TYPES: Mapping[str, str] = {
    "invoice.created": "A draft was created (POST /invoices, or a PSA's PUT by external id).",
    "invoice.updated": "A draft was replaced by its PSA, or a refund reopened an invoice.",
    "invoice.issued": "A draft was issued: it is open (or paid, when its total is zero).",
    "invoice.paid": "Nothing is left to pay on the invoice.",
    "invoice.voided": "The invoice was voided.",
    "payment.pending": "A payment was made and waits for the gateway's answer.",
    "payment.succeeded": "The gateway took the payment; it is applied to its invoices.",
    "payment.failed": "The gateway declined the payment.",
    "payment.refunded": "Some or all of a payment was refunded.",
    "refund.failed": "The gateway refused a refund.",
    "payment_method.added": "A client's card or bank account was saved.",
    "payment_method.updated": "A payment method's nickname or default changed.",
    "payment_method.removed": "A payment method was removed.",
    "autopay.updated": "A client's AutoPay setting or rules were replaced.",
    "scheduled_payment.created": "A payment was scheduled (by the client, staff or AutoPay).",
    "scheduled_payment.updated": "A scheduled payment changed (date, amount, method, hold).",
    "scheduled_payment.retry_scheduled": "An attempt was declined; another is scheduled.",
    "scheduled_payment.canceled": "A scheduled payment was canceled.",
    "scheduled_payment.succeeded": "A scheduled payment was paid.",
    "scheduled_payment.failed": "A scheduled payment failed for good.",
    "ticket.created": "A client opened a ticket.",
    "ticket.updated": "A ticket got an update, or its status, assignee or priority changed.",
    "ticket.closed": "A ticket was closed.",
    "client.created": "A client company was added.",
    "client.updated": "A client company's name, billing email or address changed.",
    "user.invited": "A contact of a client was invited, or an existing contact was given "
    "another of the tenant's clients.",
    "user.updated": "A contact's full name was changed by staff.",
    "user.deactivated": "A person's account was deactivated: sign-in refused, sessions ended.",
    "user.reactivated": "A deactivated account may sign in again.",
    "user.password_reset": "A password was reset: by staff (a new temporary password) or by "
    "the person through an emailed link. Every session of the person ended.",
    "service_category.created": "A kind of service was added.",
    "tenant.updated": "The MSP's profile or logo changed.",
    "api_key.created": "An integration key was created.",
    "api_key.revoked": "An integration key was revoked.",
    "consent.recorded": "A client accepted a consent text (bank debits, AutoPay).",
    "consent_text.updated": "Staff set a new version of a consent text.",
    "webhook_endpoint.created": "A webhook endpoint was added.",
    "webhook_endpoint.updated": "A webhook endpoint was changed, or its secret rotated.",
    "webhook_endpoint.disabled": "A webhook endpoint failing for 5 days was turned off.",
    "webhook_endpoint.deleted": "A webhook endpoint was deleted.",
}


def record_event(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    type: str,
    subject_type: str,
    subject_id: uuid.UUID,
    client_id: uuid.UUID | None = None,
    data: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
) -> Event:
    assert type in EVENT_TYPES, f"{type} is not in the event catalogue"
    audit = current_audit()
    event = Event(
        id=time_ordered_uuid(),
        created_at=utcnow(),
        tenant_id=tenant_id,
        client_id=client_id,
        type=type,
        subject_type=subject_type,
        subject_id=subject_id,
        data=data or {},
        details=details or None,
        actor_kind=audit.actor.kind,
        actor_id=audit.actor.id,
        request_id=audit.request_id,
        reason=audit.reason,
    )
    session.add(event)
    return event
