"""Invoices: the MSP drafts and issues them (staff or a PSA's API key); clients see, download
and pay them."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response, status
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from app.auth.dependencies import Scoped, StaffDep, StaffOrKey
from app.core.clock import today_in
from app.core.db import transaction
from app.core.deps import HooksDep, PageDep, SessionDep, SessionmakerDep, SettingsDep
from app.core.errors import problem_responses
from app.core.idempotency import IdempotentDep, Outcome
from app.core.pagination import Page
from app.core.principal import Principal
from app.invoices.dependencies import InvoiceDep, LockedInvoiceDep
from app.invoices.presenter import invoice_detail, invoice_document, invoice_out
from app.invoices.repository import InvoiceRepository
from app.invoices.schemas import InvoiceCreate, InvoiceDetail, InvoiceOut, InvoiceUpsert
from app.invoices.service import create_invoice, issue_invoice, upsert_invoice, void_invoice

router = APIRouter(tags=["invoices"])

# People by their role; integration keys by their scope.
InvoiceReader = Annotated[Principal, Scoped("invoices:read")]
InvoiceWriter = Annotated[Principal, StaffOrKey("invoices:write")]


@router.get("/invoices", operation_id="listInvoices", responses=problem_responses(401, 403, 422))
async def list_invoices(
    principal: InvoiceReader,
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
        200: {
            "model": InvoiceDetail,
            "description": "An invoice with this external_id and this content exists.",
        },
        **problem_responses(401, 403, 409, 422),
    },
)
async def create(
    body: InvoiceCreate,
    principal: InvoiceWriter,
    sessionmaker: SessionmakerDep,
    idempotent: IdempotentDep,
) -> Response:
    """Draft an invoice with its lines; the same `external_id` with the same content returns
    the same invoice (200), with other content it is 409."""

    async def create_draft() -> Outcome:
        invoice, created = await create_invoice(sessionmaker, principal, body)
        async with transaction(sessionmaker) as session:
            detail = await invoice_detail(session, principal, invoice)
        return Outcome(status.HTTP_201_CREATED if created else status.HTTP_200_OK, detail)

    return await idempotent.respond(principal.actor_key, status.HTTP_201_CREATED, create_draft)


@router.put(
    "/invoices/by-external-id/{external_id}",
    operation_id="upsertInvoiceByExternalId",
    response_model=InvoiceDetail,
    responses={
        201: {"model": InvoiceDetail, "description": "Created: a new draft."},
        200: {"description": "Replaced (a draft), or unchanged: it already says this."},
        **problem_responses(401, 403, 409, 422),
    },
)
async def upsert_by_external_id(
    external_id: Annotated[str, Path(min_length=1, max_length=200)],
    body: InvoiceUpsert,
    principal: InvoiceWriter,
    sessionmaker: SessionmakerDep,
) -> Response:
    """Create or replace the draft a PSA knows by its own id: 201 created, 200 replaced or
    unchanged; once issued, other content is 409 (the same content is 200, unchanged)."""
    invoice, outcome = await upsert_invoice(sessionmaker, principal, external_id, body)
    async with transaction(sessionmaker) as session:
        detail = await invoice_detail(session, principal, invoice)
    status_code = status.HTTP_201_CREATED if outcome == "created" else status.HTTP_200_OK
    return JSONResponse(jsonable_encoder(detail), status_code=status_code)


@router.get(
    "/invoices/{invoice_id}",
    operation_id="getInvoice",
    responses=problem_responses(401, 403, 404, 422),
)
async def get_invoice(
    invoice_id: uuid.UUID, principal: InvoiceReader, session: SessionDep
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
    principal: InvoiceReader, invoice: InvoiceDep, session: SessionDep, settings: SettingsDep
) -> Response:
    """The invoice as a PDF."""
    pdf, filename = await invoice_document(session, principal, invoice, settings)
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
    principal: InvoiceWriter, invoice: LockedInvoiceDep, session: SessionDep, hooks: HooksDep
) -> InvoiceDetail:
    """Issue a draft (`draft → open`): it gets its number, and AutoPay schedules it."""
    await issue_invoice(session, principal, invoice, hooks)
    return await invoice_detail(session, principal, invoice)


@router.post(
    "/invoices/{invoice_id}/void",
    operation_id="voidInvoice",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def void(
    principal: StaffDep, invoice: LockedInvoiceDep, session: SessionDep, hooks: HooksDep
) -> InvoiceDetail:
    """Void an invoice nothing has been paid on."""
    await void_invoice(session, principal, invoice, hooks)
    return await invoice_detail(session, principal, invoice)
