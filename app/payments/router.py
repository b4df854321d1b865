"""Paying invoices, payment history and refunds."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, status

from app.auth.dependencies import ClientDep, PrincipalDep, StaffDep
from app.core.db import transaction
from app.core.deps import PageDep, SessionDep, SessionmakerDep
from app.core.errors import problem_responses
from app.core.idempotency import IdempotentDep
from app.core.pagination import Page
from app.models import Payment
from app.payments.charges import PaymentOrder
from app.payments.errors import PaymentDeclined, PaymentPending, RefundDeclined, RefundPending
from app.payments.presenter import payment_detail, present_payments
from app.payments.repository import PaymentRepository, RefundRepository
from app.payments.schemas import PayInvoice, PaymentDetail, PaymentOut, RefundCreate, RefundOut
from app.payments.service import PaymentService

router = APIRouter()


def get_payment_service(request: Request) -> PaymentService:
    return PaymentService(request.app.state.sessionmaker, request.app.state.gateway)


PaymentServiceDep = Annotated[PaymentService, Depends(get_payment_service)]


async def payment_from_path(
    payment_id: uuid.UUID, principal: PrincipalDep, session: SessionDep
) -> Payment:
    return await PaymentRepository(session, principal).get_or_404(payment_id)


PaymentDep = Annotated[Payment, Depends(payment_from_path)]


@router.post(
    "/invoices/{invoice_id}/pay",
    operation_id="payInvoice",
    tags=["invoices"],
    status_code=status.HTTP_201_CREATED,
    response_model=PaymentDetail,
    responses=problem_responses(401, 402, 403, 404, 409, 422, 503),
)
async def pay(
    invoice_id: uuid.UUID,
    body: PayInvoice,
    principal: ClientDep,
    payments: PaymentServiceDep,
    sessionmaker: SessionmakerDep,
    idempotent: IdempotentDep,
) -> Response:
    """Pay an invoice now, in full or in part; a decline answers 402."""
    order = PaymentOrder(
        payment_method_id=body.payment_method_id,
        invoice_ids=(invoice_id,),
        amount=body.amount,
        request_key=idempotent.request_key(principal.actor_key),
    )

    async def pay() -> PaymentDetail:
        payment = await payments.pay(principal, order)
        if payment.status == "failed":
            raise PaymentDeclined(
                payment_id=payment.id,
                code=payment.failure_code or "declined",
                message=payment.failure_message or "the card was declined",
            )
        if payment.status == "pending":
            raise PaymentPending(payment.id)
        async with transaction(sessionmaker) as session:
            return await payment_detail(
                PaymentRepository(session, principal), RefundRepository(session, principal), payment
            )

    return await idempotent.respond(principal.actor_key, status.HTTP_201_CREATED, pay)


@router.get(
    "/payments",
    operation_id="listPayments",
    tags=["payments"],
    responses=problem_responses(401, 403, 422),
)
async def list_payments(
    principal: PrincipalDep,
    session: SessionDep,
    page: PageDep,
    status_filter: Annotated[
        Literal["pending", "succeeded", "failed"] | None, Query(alias="status")
    ] = None,
    invoice_id: uuid.UUID | None = None,
    client_id: Annotated[uuid.UUID | None, Query(description="Staff: one client's.")] = None,
) -> Page[PaymentOut]:
    """Payment history, newest first, with what each payment paid."""
    repo = PaymentRepository(session, principal)
    items, cursor = await repo.page(
        page,
        client_id=principal.client_scope(client_id),
        status=status_filter,
        invoice_id=invoice_id,
    )
    return Page(items=await present_payments(repo, items), next_cursor=cursor)


@router.get(
    "/payments/{payment_id}",
    operation_id="getPayment",
    tags=["payments"],
    responses=problem_responses(401, 403, 404, 422),
)
async def get_payment(
    payment: PaymentDep, principal: PrincipalDep, session: SessionDep
) -> PaymentDetail:
    """One payment, with its allocations and refunds."""
    return await payment_detail(
        PaymentRepository(session, principal), RefundRepository(session, principal), payment
    )


@router.post(
    "/payments/{payment_id}/refunds",
    operation_id="refundPayment",
    tags=["payments"],
    status_code=status.HTTP_201_CREATED,
    response_model=RefundOut,
    responses=problem_responses(401, 402, 403, 404, 409, 422, 503),
)
async def refund_payment(
    payment_id: uuid.UUID,
    body: RefundCreate,
    principal: StaffDep,
    payments: PaymentServiceDep,
    idempotent: IdempotentDep,
) -> Response:
    """Refund a payment in full or in part; the invoice's balance reopens by the amount."""

    async def refund() -> RefundOut:
        key = idempotent.request_key(principal.actor_key)
        done = await payments.refund(principal, payment_id, body.amount, request_key=key)
        if done.status == "failed":
            raise RefundDeclined(
                f"The gateway refused the refund ({done.failure_code}).",
                extra={"refund_id": str(done.id), "decline_code": done.failure_code},
            )
        if done.status == "pending":
            raise RefundPending(done.id)
        return RefundOut.model_validate(done)

    return await idempotent.respond(principal.actor_key, status.HTTP_201_CREATED, refund)
