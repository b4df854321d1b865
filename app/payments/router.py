"""Paying invoices, payment history and refunds."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.dependencies import PersonDep, PrincipalDep, Scoped, StaffDep
from app.core.db import transaction
from app.core.deps import PageDep, SessionDep, SessionmakerDep
from app.core.errors import Unprocessable, problem_responses
from app.core.idempotency import IdempotentDep, IdempotentRequest
from app.core.pagination import Page
from app.core.principal import ClientPrincipal, Principal
from app.invoices.repository import InvoiceRepository
from app.models import Payment
from app.payments.charges import PaymentOrder, oldest_first
from app.payments.errors import PaymentDeclined, PaymentPending, RefundDeclined, RefundPending
from app.payments.presenter import payment_detail, present_payments
from app.payments.repository import PaymentRepository, RefundRepository
from app.payments.schemas import (
    PayInvoice,
    PaymentDetail,
    PaymentOut,
    PaySeveral,
    RefundCreate,
    RefundOut,
)
from app.payments.service import PaymentService
from app.tenancy.acting import act_for_client

router = APIRouter()


async def get_payment_service(request: Request) -> PaymentService:
    return PaymentService(request.app.state.sessionmaker, request.app.state.gateway)


PaymentServiceDep = Annotated[PaymentService, Depends(get_payment_service)]


async def payment_from_path(
    payment_id: uuid.UUID, principal: PrincipalDep, session: SessionDep
) -> Payment:
    return await PaymentRepository(session, principal).get_or_404(payment_id)


PaymentDep = Annotated[Payment, Depends(payment_from_path)]
PaymentReader = Annotated[Principal, Scoped("payments:read")]


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
    principal: PersonDep,
    payments: PaymentServiceDep,
    sessionmaker: SessionmakerDep,
    idempotent: IdempotentDep,
) -> Response:
    """Pay an invoice now, in full or in part (staff: for its client); a decline answers 402."""

    async def pay_now() -> PaymentDetail:
        async with transaction(sessionmaker) as session:
            acting = await _payer_of(session, principal, invoice_id, body.client_id)
        order = PaymentOrder(
            payment_method_id=body.payment_method_id,
            invoice_ids=(invoice_id,),
            amount=body.amount,
            request_key=idempotent.request_key(principal.actor_key),
        )
        return await _charged(payments, sessionmaker, acting, order)

    return await idempotent.respond(
        principal.actor_key,
        status.HTTP_201_CREATED,
        pay_now,
        settled=_settled(payments, sessionmaker, principal, idempotent),
    )


@router.post(
    "/payments",
    operation_id="createPayment",
    tags=["payments"],
    status_code=status.HTTP_201_CREATED,
    response_model=PaymentDetail,
    responses=problem_responses(401, 402, 403, 409, 422, 503),
)
async def pay_several(
    body: PaySeveral,
    principal: PersonDep,
    payments: PaymentServiceDep,
    sessionmaker: SessionmakerDep,
    idempotent: IdempotentDep,
) -> Response:
    """Pay several invoices with one charge (all open ones when `invoice_ids` is left out),
    oldest due date first; a smaller `amount` pays the oldest in full and the last in part."""

    async def pay_them() -> PaymentDetail:
        async with transaction(sessionmaker) as session:
            acting = await act_for_client(
                session, principal, body.client_id, loc=("body", "client_id")
            )
            invoice_ids = await oldest_first(session, acting, body.invoice_ids)
        order = PaymentOrder(
            payment_method_id=body.payment_method_id,
            invoice_ids=invoice_ids,
            amount=body.amount,
            request_key=idempotent.request_key(principal.actor_key),
        )
        return await _charged(payments, sessionmaker, acting, order)

    return await idempotent.respond(
        principal.actor_key,
        status.HTTP_201_CREATED,
        pay_them,
        settled=_settled(payments, sessionmaker, principal, idempotent),
    )


async def _payer_of(
    session: AsyncSession,
    principal: Principal,
    invoice_id: uuid.UUID,
    client_id: uuid.UUID | None,
) -> ClientPrincipal:
    """A client pays its own invoices; staff pay for the invoice's client."""
    if isinstance(principal, ClientPrincipal) and principal.is_client:
        return await act_for_client(session, principal, client_id, loc=("body", "client_id"))
    invoice = await InvoiceRepository(session, principal).get_or_404(invoice_id)
    if client_id not in (None, invoice.client_id):
        raise Unprocessable("The invoice is another client's.", loc=("body", "client_id"))
    return await act_for_client(session, principal, invoice.client_id, loc=("body", "client_id"))


async def _charged(
    payments: PaymentService,
    sessionmaker: async_sessionmaker[AsyncSession],
    acting: ClientPrincipal,
    order: PaymentOrder,
) -> PaymentDetail:
    """The payment made, as the API shows it; a decline is 402, an unknown outcome 503."""
    made = await payments.pay(acting, order)
    return await _answer(sessionmaker, acting, made.payment, made.shown)


def _settled(
    payments: PaymentService,
    sessionmaker: async_sessionmaker[AsyncSession],
    principal: Principal,
    idempotent: IdempotentRequest,
) -> Callable[[], Awaitable[PaymentDetail | None]]:
    """For a retry that finds the first request still in flight: its payment's answer, once
    the payment is settled (the first request's process may have died after the charge)."""

    async def answer() -> PaymentDetail | None:
        key = idempotent.request_key(principal.actor_key)
        payment = await payments.settled(principal, key) if key else None
        return None if payment is None else await _answer(sessionmaker, principal, payment)

    return answer


async def _answer(
    sessionmaker: async_sessionmaker[AsyncSession],
    principal: Principal,
    payment: Payment,
    shown: PaymentOut | None = None,
) -> PaymentDetail:
    """The payment as the API shows it (`shown`: as its record just presented it, so nothing
    is read again; a payment that has just succeeded has no refunds yet)."""
    if payment.status == "failed":
        raise PaymentDeclined(
            payment_id=payment.id,
            code=payment.failure_code or "declined",
            message=payment.failure_message or "the card was declined",
        )
    if payment.status == "pending":
        raise PaymentPending(payment.id)
    if shown is not None:
        return PaymentDetail(**dict(shown), refunds=[])
    async with transaction(sessionmaker) as session:
        return await payment_detail(
            PaymentRepository(session, principal), RefundRepository(session, principal), payment
        )


@router.get(
    "/payments",
    operation_id="listPayments",
    tags=["payments"],
    responses=problem_responses(401, 403, 422),
)
async def list_payments(
    principal: PaymentReader,
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
    payment_id: uuid.UUID, principal: PaymentReader, session: SessionDep
) -> PaymentDetail:
    """One payment, with its allocations and refunds."""
    return await payment_detail(
        PaymentRepository(session, principal), RefundRepository(session, principal), payment_id
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
