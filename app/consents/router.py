"""Consent texts (staff set them, everyone reads them) and the records of acceptance."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from app.auth.dependencies import PersonDep, StaffDep
from app.consents.repository import ConsentRecordRepository
from app.consents.schemas import ConsentKind, ConsentOut, ConsentTextIn, ConsentTextOut
from app.consents.service import current_text, set_text
from app.core.deps import PageDep, SessionDep
from app.core.errors import problem_responses
from app.core.pagination import Page

router = APIRouter(tags=["consents"])


@router.get(
    "/consent-texts/{kind}",
    operation_id="getConsentText",
    responses=problem_responses(401, 403, 422),
)
async def get_consent_text(
    kind: ConsentKind, principal: PersonDep, session: SessionDep
) -> ConsentTextOut:
    """The current text a client is shown before saving a bank account (`ach_debit`) or turning
    AutoPay on (`autopay`); requests send back its version."""
    return await current_text(session, principal, kind)


@router.put(
    "/consent-texts/{kind}",
    operation_id="setConsentText",
    responses=problem_responses(401, 403, 422),
)
async def put_consent_text(
    kind: ConsentKind, body: ConsentTextIn, principal: StaffDep, session: SessionDep
) -> ConsentTextOut:
    """A new version of the text (numbered after the last); consents given before keep theirs."""
    return await set_text(session, principal, kind, body.text)


@router.get("/consents", operation_id="listConsents", responses=problem_responses(401, 403, 422))
async def list_consents(
    principal: PersonDep,
    session: SessionDep,
    page: PageDep,
    client_id: Annotated[uuid.UUID | None, Query(description="Staff: one client's.")] = None,
    kind: ConsentKind | None = None,
) -> Page[ConsentOut]:
    """What clients agreed to, newest first: who, which text version (and its SHA-256), when,
    from which address and browser."""
    items, cursor = await ConsentRecordRepository(session, principal).page(
        page, client_id=principal.client_scope(client_id), kind=kind
    )
    return Page(items=[ConsentOut.model_validate(r) for r in items], next_cursor=cursor)
