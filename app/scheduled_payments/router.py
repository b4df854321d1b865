"""Payments scheduled for a later date, by the client (or staff for them) or by AutoPay; and
rescuing one that failed."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from app.auth.dependencies import PersonDep
from app.core.db import transaction
from app.core.deps import PageDep, SessionDep, SessionmakerDep
from app.core.errors import problem_responses
from app.core.etag import IfMatchHeader, etag_for
from app.core.idempotency import IdempotentDep
from app.core.openapi import response_headers
from app.core.pagination import Page
from app.core.principal import ClientPrincipal
from app.models import ScheduledPayment
from app.payments.errors import PaymentDeclined, PaymentPending
from app.payments.service import PaymentService
from app.scheduled_payments.charging import Attempts
from app.scheduled_payments.repository import ScheduledPaymentRepository
from app.scheduled_payments.schemas import (
    RetryNow,
    ScheduledPaymentCreate,
    ScheduledPaymentOut,
    ScheduledPaymentUpdate,
    ScheduledStatus,
)
from app.scheduled_payments.service import (
    cancel_scheduled_payment,
    create_scheduled_payment,
    lock_for_change,
    update_scheduled_payment,
)
from app.tenancy.acting import act_for_client

router = APIRouter(tags=["scheduled-payments"])


async def scheduled_payment_from_path(
    scheduled_payment_id: uuid.UUID, principal: PersonDep, session: SessionDep
) -> ScheduledPayment:
    return await ScheduledPaymentRepository(session, principal).get_or_404(scheduled_payment_id)


async def scheduled_payment_for_update(
    scheduled_payment_id: uuid.UUID, principal: PersonDep, session: SessionDep
) -> ScheduledPayment:
    """Row-locked (after its invoice) for the request's transaction: the endpoint is about to
    change it."""
    return await lock_for_change(session, principal, scheduled_payment_id)


ScheduledPaymentDep = Annotated[ScheduledPayment, Depends(scheduled_payment_from_path)]
LockedScheduledPaymentDep = Annotated[ScheduledPayment, Depends(scheduled_payment_for_update)]


def acting_on(principal: PersonDep, payment: ScheduledPayment) -> ClientPrincipal:
    """Whoever may see the payment acts for its client (a contact, or staff)."""
    if isinstance(principal, ClientPrincipal):
        return principal
    return ClientPrincipal.of(principal, payment.client_id)


@router.get(
    "/scheduled-payments",
    operation_id="listScheduledPayments",
    responses=problem_responses(401, 403, 422),
)
async def list_scheduled_payments(
    principal: PersonDep,
    session: SessionDep,
    page: PageDep,
    status_filter: Annotated[ScheduledStatus | None, Query(alias="status")] = None,
    invoice_id: uuid.UUID | None = None,
    client_id: Annotated[uuid.UUID | None, Query(description="Staff: one client's.")] = None,
) -> Page[ScheduledPaymentOut]:
    """Scheduled payments, newest first."""
    items, cursor = await ScheduledPaymentRepository(session, principal).page(
        page,
        client_id=principal.client_scope(client_id),
        status=status_filter,
        invoice_id=invoice_id,
    )
    return Page(items=[ScheduledPaymentOut.model_validate(p) for p in items], next_cursor=cursor)


@router.post(
    "/scheduled-payments",
    operation_id="createScheduledPayment",
    status_code=status.HTTP_201_CREATED,
    response_model=ScheduledPaymentOut,
    responses={**problem_responses(401, 403, 409, 422), 201: response_headers("ETag")},
)
async def create(
    body: ScheduledPaymentCreate,
    principal: PersonDep,
    sessionmaker: SessionmakerDep,
    idempotent: IdempotentDep,
) -> Response:
    """Schedule a payment of an open invoice for a later date (staff: for `client_id`)."""

    async def schedule() -> ScheduledPaymentOut:
        # Committed before the idempotency record keeps the answer.
        async with transaction(sessionmaker) as session:
            acting = await act_for_client(
                session, principal, body.client_id, loc=("body", "client_id")
            )
            payment = await create_scheduled_payment(session, acting, body)
            return ScheduledPaymentOut.model_validate(payment)

    response = await idempotent.respond(principal.actor_key, status.HTTP_201_CREATED, schedule)
    if response.status_code == status.HTTP_201_CREATED:
        response.headers["ETag"] = etag_for(1)
    return response


@router.get(
    "/scheduled-payments/{scheduled_payment_id}",
    operation_id="getScheduledPayment",
    responses={**problem_responses(401, 403, 404, 422), 200: response_headers("ETag")},
)
async def get_scheduled_payment(
    payment: ScheduledPaymentDep, response: Response
) -> ScheduledPaymentOut:
    """One scheduled payment, with its ETag."""
    response.headers["ETag"] = etag_for(payment.version)
    return ScheduledPaymentOut.model_validate(payment)


@router.patch(
    "/scheduled-payments/{scheduled_payment_id}",
    operation_id="updateScheduledPayment",
    responses={**problem_responses(401, 403, 404, 409, 412, 422), 200: response_headers("ETag")},
)
async def update(
    body: ScheduledPaymentUpdate,
    principal: PersonDep,
    payment: LockedScheduledPaymentDep,
    session: SessionDep,
    response: Response,
    if_match: IfMatchHeader = None,
) -> ScheduledPaymentOut:
    """Move a scheduled payment to another date, change its amount or its payment method."""
    acting = acting_on(principal, payment)
    await update_scheduled_payment(session, acting, payment, body, if_match=if_match)
    response.headers["ETag"] = etag_for(payment.version)
    return ScheduledPaymentOut.model_validate(payment)


@router.post(
    "/scheduled-payments/{scheduled_payment_id}/cancel",
    operation_id="cancelScheduledPayment",
    responses={**problem_responses(401, 403, 404, 409, 422), 200: response_headers("ETag")},
)
async def cancel(
    payment: LockedScheduledPaymentDep, session: SessionDep, response: Response
) -> ScheduledPaymentOut:
    """Cancel a scheduled payment that has not started."""
    await cancel_scheduled_payment(session, payment)
    response.headers["ETag"] = etag_for(payment.version)
    return ScheduledPaymentOut.model_validate(payment)


@router.post(
    "/scheduled-payments/{scheduled_payment_id}/retry",
    operation_id="retryScheduledPayment",
    response_model=ScheduledPaymentOut,
    responses=problem_responses(401, 402, 403, 404, 409, 422, 503),
)
async def retry(
    request: Request,
    scheduled_payment_id: uuid.UUID,
    body: RetryNow,
    principal: PersonDep,
    idempotent: IdempotentDep,
) -> Response:
    """Try a payment that failed, or waits for a retry after a failed attempt, now (optionally
    with another method). It does not use up an automatic attempt; a decline answers 402."""
    # Nothing here reads through the request's session: the attempt commits transactions of
    # its own, which on SQLite must not wait behind the request's.
    state = request.app.state
    attempts = Attempts(
        state.sessionmaker, PaymentService(state.sessionmaker, state.gateway), state.settings
    )

    async def try_now() -> ScheduledPaymentOut:
        row, charge = await attempts.retry_now(
            principal, scheduled_payment_id, body.payment_method_id
        )
        if charge.status == "failed":
            raise PaymentDeclined(
                payment_id=charge.id,
                code=charge.failure_code or "declined",
                message=charge.failure_message or "the payment was declined",
            )
        if charge.status == "pending":
            raise PaymentPending(charge.id)
        return ScheduledPaymentOut.model_validate(row)

    return await idempotent.respond(principal.actor_key, status.HTTP_200_OK, try_now)
