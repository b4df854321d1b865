"""AutoPay: which services a client's invoices are paid automatically for, and how."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.auth.dependencies import ClientDep, PersonDep
from app.autopay.preview import autopay_preview
from app.autopay.schemas import AutopayIn, AutopayOut, AutopayPreview
from app.autopay.service import load_setting, present, replace_setting
from app.core.deps import SessionDep
from app.core.errors import Unprocessable, problem_responses
from app.core.etag import IfMatchHeader, etag_for
from app.core.principal import Principal
from app.tenancy.repository import ClientRepository

router = APIRouter(tags=["autopay"])
StaffClientId = Annotated[
    uuid.UUID | None, Query(description="Staff: the client whose AutoPay to read (required).")
]


async def _client_for(
    session: SessionDep, principal: Principal, client_id: uuid.UUID | None
) -> uuid.UUID:
    if principal.is_client:
        assert principal.client_id is not None
        return principal.client_id
    if client_id is None:
        raise Unprocessable("Name the client with ?client_id=.", loc=("query", "client_id"))
    await ClientRepository(session, principal).get_or_404(client_id)
    return client_id


@router.get("/autopay", operation_id="getAutopay", responses=problem_responses(401, 403, 404, 422))
async def get_autopay(
    principal: PersonDep, session: SessionDep, response: Response, client_id: StaffClientId = None
) -> AutopayOut:
    """The AutoPay setting, with its ETag."""
    target = await _client_for(session, principal, client_id)
    setting, categories = await load_setting(session, target)
    response.headers["ETag"] = etag_for(setting.version if setting else 0)
    return present(target, setting, categories)


@router.put(
    "/autopay",
    operation_id="replaceAutopay",
    responses=problem_responses(401, 403, 412, 422),
)
async def put_autopay(
    body: AutopayIn,
    principal: ClientDep,
    session: SessionDep,
    response: Response,
    if_match: IfMatchHeader = None,
) -> AutopayOut:
    """Replace the AutoPay setting; AutoPay's payments not yet started follow it."""
    setting, categories = await replace_setting(session, principal, body, if_match=if_match)
    response.headers["ETag"] = etag_for(setting.version)
    assert principal.client_id is not None
    return present(principal.client_id, setting, categories)


@router.get(
    "/autopay/preview",
    operation_id="previewAutopay",
    responses=problem_responses(401, 403, 404, 422),
)
async def preview(
    principal: PersonDep, session: SessionDep, client_id: StaffClientId = None
) -> AutopayPreview:
    """For each open invoice: what AutoPay will pay, when and with which method, or why not."""
    target = await _client_for(session, principal, client_id)
    return await autopay_preview(session, principal.tenant_id, target)
