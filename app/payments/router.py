"""Payment history and refunds."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response, status

from app.auth.dependencies import PrincipalDep, StaffDep
from app.core.deps import GatewayDep, PageDep, SessionDep, SessionmakerDep
from app.core.errors import problem_responses
from app.core.idempotency import IdempotencyKeyDep, run_idempotent
from app.core.pagination import Page
from app.payments.errors import RefundDeclined, RefundPending
from app.payments.refunds import RefundProcessor
from app.payments.repository import PaymentRepository
from app.payments.schemas import PaymentDetail, PaymentOut, RefundCreate, RefundOut

router = APIRouter(tags=["payments"])


@router.get("/payments", operation_id="listPayments", responses=problem_responses(401, 403, 422))
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
    items, cursor = await PaymentRepository(session, principal).page(
        page,
        client_id=principal.client_scope(client_id),
        status=status_filter,
        invoice_id=invoice_id,
    )
    return Page(items=items, next_cursor=cursor)


@router.get(
    "/payments/{payment_id}",
    operation_id="getPayment",
    responses=problem_responses(401, 403, 404, 422),
)
async def get_payment(
    payment_id: uuid.UUID, principal: PrincipalDep, session: SessionDep
) -> PaymentDetail:
    """One payment, with its allocations and refunds."""
    return await PaymentRepository(session, principal).detail(payment_id)


@router.post(
    "/payments/{payment_id}/refunds",
    operation_id="refundPayment",
    status_code=status.HTTP_201_CREATED,
    response_model=RefundOut,
    responses=problem_responses(401, 402, 403, 404, 409, 422, 503),
)
async def refund_payment(
    request: Request,
    payment_id: uuid.UUID,
    body: RefundCreate,
    principal: StaffDep,
    sessionmaker: SessionmakerDep,
    gateway: GatewayDep,
    idempotency_key: IdempotencyKeyDep,
) -> Response:
    """Refund a payment in full or in part; the invoice's balance reopens by the amount."""

    async def run() -> RefundOut:
        processor = RefundProcessor(sessionmaker, gateway)
        key = f"{principal.actor_key}:{idempotency_key}" if idempotency_key else None
        refund = await processor.reserve(principal, payment_id, body.amount, request_key=key)
        refund = await processor.settle(refund.id)
        if refund.status == "failed":
            raise RefundDeclined(
                f"The gateway refused the refund ({refund.failure_code}).",
                extra={"refund_id": str(refund.id), "decline_code": refund.failure_code},
            )
        if refund.status == "pending":
            raise RefundPending(refund.id)
        return RefundOut.model_validate(refund)

    return await run_idempotent(
        request,
        actor=principal.actor_key,
        key=idempotency_key,
        status_code=status.HTTP_201_CREATED,
        operation=run,
    )
