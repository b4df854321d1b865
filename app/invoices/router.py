"""Invoices: the MSP drafts and issues them (staff or a PSA's API key); clients see, download
and pay them."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response, status

from app.auth.dependencies import ClientDep, PrincipalDep, StaffDep, StaffOrKeyDep
from app.core.clock import today_in
from app.core.db import transaction
from app.core.deps import GatewayDep, PageDep, SessionDep, SessionmakerDep
from app.core.errors import problem_responses
from app.core.idempotency import IdempotencyKeyDep, Outcome, run_idempotent
from app.core.pagination import Page
from app.invoices.presenter import invoice_detail, invoice_document, invoice_out
from app.invoices.repository import InvoiceRepository
from app.invoices.schemas import InvoiceCreate, InvoiceDetail, InvoiceOut, PayInvoice
from app.invoices.service import create_invoice, issue_invoice, void_invoice
from app.payments.pay_now import pay_invoice_now
from app.payments.schemas import PaymentDetail

router = APIRouter(tags=["invoices"])


@router.get("/invoices", operation_id="listInvoices", responses=problem_responses(401, 403, 422))
async def list_invoices(
    principal: PrincipalDep,
    session: SessionDep,
    page: PageDep,
    status_filter: Annotated[
        Literal["draft", "open", "paid", "void"] | None, Query(alias="status")
    ] = None,
    overdue: Annotated[bool, Query(description="Only open invoices past their due date.")] = False,
    client_id: Annotated[uuid.UUID | None, Query(description="Staff: one client's.")] = None,
) -> Page[InvoiceOut]:
    """Invoices, newest first (`?status=paid` is the invoice history)."""
    repo = InvoiceRepository(session, principal)
    today = today_in((await repo.tenant()).timezone)
    items, cursor = await repo.page(
        page,
        client_id=principal.client_scope(client_id),
        status=status_filter,
        overdue_on=today if overdue else None,
    )
    return Page(items=[invoice_out(i, today) for i in items], next_cursor=cursor)


@router.post(
    "/invoices",
    operation_id="createInvoice",
    status_code=status.HTTP_201_CREATED,
    response_model=InvoiceDetail,
    responses={
        200: {"description": "An invoice with this external_id exists: it is returned."},
        **problem_responses(401, 403, 409, 422),
    },
)
async def create(
    request: Request,
    body: InvoiceCreate,
    principal: StaffOrKeyDep,
    sessionmaker: SessionmakerDep,
    idempotency_key: IdempotencyKeyDep,
) -> Response:
    """Draft an invoice with its lines; the same `external_id` returns the same invoice."""

    async def run() -> Outcome:
        invoice, created = await create_invoice(sessionmaker, principal, body)
        async with transaction(sessionmaker) as session:
            detail = await invoice_detail(session, principal, invoice.id)
        return Outcome(status.HTTP_201_CREATED if created else status.HTTP_200_OK, detail)

    return await run_idempotent(
        request,
        actor=principal.actor_key,
        key=idempotency_key,
        status_code=status.HTTP_201_CREATED,
        operation=run,
    )


@router.get(
    "/invoices/{invoice_id}",
    operation_id="getInvoice",
    responses=problem_responses(401, 403, 404, 422),
)
async def get_invoice(
    invoice_id: uuid.UUID, principal: PrincipalDep, session: SessionDep
) -> InvoiceDetail:
    """One invoice with its lines and the payments applied to it."""
    return await invoice_detail(session, principal, invoice_id)


@router.get(
    "/invoices/{invoice_id}/pdf",
    operation_id="getInvoicePdf",
    response_class=Response,
    responses={
        200: {"content": {"application/pdf": {}}, "description": "The invoice as a PDF."},
        **problem_responses(401, 403, 404, 422),
    },
)
async def get_invoice_pdf(
    invoice_id: uuid.UUID, principal: PrincipalDep, session: SessionDep
) -> Response:
    """The invoice as a PDF."""
    pdf, filename = await invoice_document(session, principal, invoice_id)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{filename}"'},
    )


@router.post(
    "/invoices/{invoice_id}/issue",
    operation_id="issueInvoice",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def issue(
    invoice_id: uuid.UUID, principal: StaffOrKeyDep, session: SessionDep
) -> InvoiceDetail:
    """Issue a draft (`draft → open`): it gets its number, and AutoPay schedules it."""
    await issue_invoice(session, principal, invoice_id)
    return await invoice_detail(session, principal, invoice_id)


@router.post(
    "/invoices/{invoice_id}/void",
    operation_id="voidInvoice",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def void(invoice_id: uuid.UUID, principal: StaffDep, session: SessionDep) -> InvoiceDetail:
    """Void an invoice nothing has been paid on."""
    await void_invoice(session, principal, invoice_id)
    return await invoice_detail(session, principal, invoice_id)


@router.post(
    "/invoices/{invoice_id}/pay",
    operation_id="payInvoice",
    status_code=status.HTTP_201_CREATED,
    response_model=PaymentDetail,
    responses=problem_responses(401, 402, 403, 404, 409, 422, 503),
)
async def pay(
    request: Request,
    invoice_id: uuid.UUID,
    body: PayInvoice,
    principal: ClientDep,
    sessionmaker: SessionmakerDep,
    gateway: GatewayDep,
    idempotency_key: IdempotencyKeyDep,
) -> Response:
    """Pay an invoice now, in full or in part; a decline answers 402."""

    async def run() -> PaymentDetail:
        return await pay_invoice_now(
            sessionmaker,
            gateway,
            principal,
            invoice_id=invoice_id,
            payment_method_id=body.payment_method_id,
            amount=body.amount,
            idempotency_key=idempotency_key,
        )

    return await run_idempotent(
        request,
        actor=principal.actor_key,
        key=idempotency_key,
        status_code=status.HTTP_201_CREATED,
        operation=run,
    )
