"""AutoPay: which services a client's invoices are paid automatically for, how and when."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from app.auth.dependencies import PersonDep
from app.autopay.preview import autopay_preview
from app.autopay.repository import AutopayRepository
from app.autopay.schemas import AutopayIn, AutopayOut, AutopayPreview
from app.autopay.service import present, replace_setting
from app.consents.service import Origin
from app.core.deps import SessionDep
from app.core.errors import Unprocessable, problem_responses
from app.core.etag import IfMatchHeader, etag_for
from app.core.openapi import response_headers
from app.tenancy.acting import act_for_client
from app.tenancy.repository import ClientRepository

router = APIRouter(tags=["autopay"])

ClientIdQuery = Annotated[
    uuid.UUID | None, Query(description="Staff: the client whose AutoPay this is (required).")
]


async def client_in_question(
    principal: PersonDep, session: SessionDep, client_id: ClientIdQuery = None
) -> uuid.UUID:
    """A client user's own client; for staff, the one named by `?client_id=` (404 if unknown)."""
    if principal.client_id is not None:
        return principal.client_id
    if client_id is None:
        raise Unprocessable("Name the client with ?client_id=.", loc=("query", "client_id"))
    client = await ClientRepository(session, principal).get_or_404(client_id)
    return client.id


ClientIdDep = Annotated[uuid.UUID, Depends(client_in_question)]


@router.get(
    "/autopay",
    operation_id="getAutopay",
    responses={**problem_responses(401, 403, 404, 422), 200: response_headers("ETag")},
)
async def get_autopay(
    principal: PersonDep, client_id: ClientIdDep, session: SessionDep, response: Response
) -> AutopayOut:
    """The AutoPay setting with its rules, and its ETag."""
    view = await AutopayRepository(session, principal).view(client_id)
    response.headers["ETag"] = etag_for(view.setting.version if view.setting else 0)
    return present(client_id, view)


@router.put(
    "/autopay",
    operation_id="replaceAutopay",
    responses={**problem_responses(401, 403, 404, 409, 412, 422), 200: response_headers("ETag")},
)
async def put_autopay(
    request: Request,
    body: AutopayIn,
    principal: PersonDep,
    session: SessionDep,
    response: Response,
    client_id: ClientIdQuery = None,
    if_match: IfMatchHeader = None,
) -> AutopayOut:
    """Replace the AutoPay setting (staff: for the client named by `?client_id=`, and `locked`);
    every open invoice of the client is planned again under the new rules. Turning AutoPay on
    needs the client's `consent`."""
    acting = await act_for_client(session, principal, client_id, loc=("query", "client_id"))
    view = await replace_setting(
        session, acting, body, if_match=if_match, origin=Origin.of(request)
    )
    response.headers["ETag"] = etag_for(view.setting.version if view.setting else 0)
    return present(acting.client_id, view)


@router.get(
    "/autopay/preview",
    operation_id="previewAutopay",
    responses=problem_responses(401, 403, 404, 422),
)
async def preview(
    principal: PersonDep, client_id: ClientIdDep, session: SessionDep
) -> AutopayPreview:
    """For each open invoice: what AutoPay will pay, when and with which method, or why not."""
    return await autopay_preview(session, principal, client_id)
