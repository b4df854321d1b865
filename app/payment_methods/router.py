"""A client's cards and bank accounts on file, and the platform fees they cost the MSP."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from app.auth.dependencies import PersonDep, StaffDep
from app.consents.service import Origin
from app.core.db import transaction
from app.core.deps import GatewayDep, HooksDep, PageDep, SessionDep, SessionmakerDep
from app.core.errors import problem_responses
from app.core.idempotency import IdempotentDep
from app.core.instants import QueryInstant
from app.core.pagination import Page
from app.models import PaymentMethod
from app.models.billing import PAYMENT_METHOD_FEE_CURRENCY
from app.payment_methods.repository import PaymentMethodRepository, PlatformFeeRepository
from app.payment_methods.schemas import (
    PaymentMethodCreate,
    PaymentMethodOut,
    PaymentMethodUpdate,
    PlatformFeeOut,
    PlatformFeePage,
)
from app.payment_methods.service import (
    PaymentMethodService,
    delete_payment_method,
    update_payment_method,
)
from app.tenancy.acting import act_for_client

router = APIRouter(tags=["payment-methods"])


async def payment_method_from_path(
    payment_method_id: uuid.UUID, principal: PersonDep, session: SessionDep
) -> PaymentMethod:
    return await PaymentMethodRepository(session, principal).get_or_404(payment_method_id)


PaymentMethodDep = Annotated[PaymentMethod, Depends(payment_method_from_path)]


@router.get(
    "/payment-methods",
    operation_id="listPaymentMethods",
    responses=problem_responses(401, 403, 422),
)
async def list_payment_methods(
    principal: PersonDep,
    session: SessionDep,
    page: PageDep,
    client_id: Annotated[uuid.UUID | None, Query(description="Staff: one client's.")] = None,
) -> Page[PaymentMethodOut]:
    """The client's payment methods (staff: every client's, or one with `client_id`)."""
    repo = PaymentMethodRepository(session, principal)
    items, cursor = await repo.page(page, client_id=principal.client_scope(client_id))
    return Page(items=[PaymentMethodOut.model_validate(m) for m in items], next_cursor=cursor)


@router.post(
    "/payment-methods",
    operation_id="createPaymentMethod",
    status_code=status.HTTP_201_CREATED,
    response_model=PaymentMethodOut,
    responses=problem_responses(401, 403, 409, 422, 503),
)
async def create_payment_method(
    request: Request,
    body: PaymentMethodCreate,
    principal: PersonDep,
    sessionmaker: SessionmakerDep,
    gateway: GatewayDep,
    hooks: HooksDep,
    idempotent: IdempotentDep,
) -> Response:
    """Keep a card or bank account on file, from a gateway token (staff: for `client_id`). A
    bank account needs the client's `consent` to debits."""

    async def add() -> PaymentMethodOut:
        async with transaction(sessionmaker) as session:
            acting = await act_for_client(
                session, principal, body.client_id, loc=("body", "client_id")
            )
        service = PaymentMethodService(sessionmaker, acting, gateway, hooks)
        method = await service.add(body, Origin.of(request))
        return PaymentMethodOut.model_validate(method)

    return await idempotent.respond(principal.actor_key, status.HTTP_201_CREATED, add)


@router.get(
    "/payment-methods/{payment_method_id}",
    operation_id="getPaymentMethod",
    responses=problem_responses(401, 403, 404, 422),
)
async def get_payment_method(method: PaymentMethodDep) -> PaymentMethodOut:
    """One payment method."""
    return PaymentMethodOut.model_validate(method)


@router.patch(
    "/payment-methods/{payment_method_id}",
    operation_id="updatePaymentMethod",
    responses=problem_responses(401, 403, 404, 422),
)
async def update_method(
    payment_method_id: uuid.UUID,
    body: PaymentMethodUpdate,
    principal: PersonDep,
    session: SessionDep,
) -> PaymentMethodOut:
    """Rename a payment method or make it the default."""
    method = await update_payment_method(session, principal, payment_method_id, body)
    return PaymentMethodOut.model_validate(method)


@router.delete(
    "/payment-methods/{payment_method_id}",
    operation_id="deletePaymentMethod",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def delete_method(
    payment_method_id: uuid.UUID, principal: PersonDep, session: SessionDep, hooks: HooksDep
) -> Response:
    """Remove a payment method (refused while AutoPay or a scheduled payment uses it)."""
    await delete_payment_method(session, principal, payment_method_id, hooks)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/platform-fees",
    operation_id="listPlatformFees",
    tags=["platform-fees"],
    responses=problem_responses(401, 403, 422),
)
async def list_platform_fees(
    principal: StaffDep,
    session: SessionDep,
    page: PageDep,
    client_id: uuid.UUID | None = None,
    since: Annotated[
        QueryInstant | None, Query(description="From this instant (inclusive).")
    ] = None,
    until: Annotated[QueryInstant | None, Query(description="Before this instant.")] = None,
) -> PlatformFeePage:
    """The platform-fee ledger, with the total of everything the filters match."""
    repo = PlatformFeeRepository(session, principal)
    stmt = repo.filtered(client_id=client_id, since=_aware(since), until=_aware(until))
    items, cursor, total, count = await repo.page_with_total(page, stmt)
    return PlatformFeePage(
        items=[PlatformFeeOut.model_validate(f) for f in items],
        next_cursor=cursor,
        total=total,
        count=count,
        currency=PAYMENT_METHOD_FEE_CURRENCY,
    )


def _aware(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)
