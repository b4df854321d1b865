"""Consent: the versioned texts, and the record kept each time a client accepts one (saving
a bank account for debits, turning AutoPay on). A request must name the current version."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.consents.repository import ConsentRecordRepository, ConsentTextRepository
from app.consents.schemas import ConsentIn, ConsentKind, ConsentOut, ConsentTextOut
from app.consents.texts import DEFAULT_TEXTS, DEFAULT_VERSION
from app.core.clock import utcnow
from app.core.errors import Unprocessable
from app.core.events import record_event
from app.core.principal import ClientPrincipal, Principal
from app.core.security import sha256_hex
from app.models import ConsentRecord, ConsentText

USER_AGENT_MAX = 500


@dataclass(frozen=True, slots=True)
class Origin:
    """Where an acceptance came from."""

    ip_address: str | None
    user_agent: str | None

    @classmethod
    def of(cls, request: Request) -> Origin:
        agent = request.headers.get("user-agent")
        return cls(
            ip_address=request.client.host if request.client else None,
            user_agent=agent[:USER_AGENT_MAX] if agent else None,
        )


async def current_text(
    session: AsyncSession, principal: Principal, kind: ConsentKind
) -> ConsentTextOut:
    stored = await ConsentTextRepository(session, principal).latest(kind)
    if stored is None:
        return ConsentTextOut(kind=kind, version=DEFAULT_VERSION, text=DEFAULT_TEXTS[kind])
    return ConsentTextOut(kind=kind, version=stored.version, text=stored.text)


async def set_text(
    session: AsyncSession, principal: Principal, kind: ConsentKind, text: str
) -> ConsentTextOut:
    """A new version of the text (the next number); what was accepted before stays as it was."""
    texts = ConsentTextRepository(session, principal)
    latest = await texts.latest(kind)
    version = (latest.version if latest else DEFAULT_VERSION) + 1
    stored = ConsentText(
        tenant_id=principal.tenant_id,
        kind=kind,
        version=version,
        text=text,
        text_sha256=sha256_hex(text),
        created_by_id=principal.user_id,
    )
    texts.add(stored)
    await session.flush()
    shown = ConsentTextOut(kind=kind, version=version, text=text)
    record_event(
        session,
        tenant_id=principal.tenant_id,
        type="consent_text.updated",
        subject_type="consent_text",
        subject_id=stored.id,
        data=shown.model_dump(mode="json"),
    )
    return shown


async def check_consent(
    session: AsyncSession,
    principal: Principal,
    kind: ConsentKind,
    consent: ConsentIn | None,
    *,
    loc: Sequence[str] = ("body", "consent"),
) -> ConsentTextOut:
    """The text the request accepted, or a 422 when it carries no consent or an old version."""
    current = await current_text(session, principal, kind)
    if consent is None:
        raise Unprocessable(
            f"This needs the client's consent: show GET /consent-texts/{kind} (version "
            f"{current.version}) and send consent: {{accepted: true, text_version: "
            f"{current.version}}}.",
            loc=loc,
        )
    if consent.text_version != current.version:
        raise Unprocessable(
            f"Version {consent.text_version} is not the current {kind} text (version "
            f"{current.version}): show the current text and ask again.",
            loc=(*loc, "text_version"),
        )
    return current


async def record_consent(
    session: AsyncSession,
    acting: ClientPrincipal,
    kind: ConsentKind,
    consent: ConsentIn | None,
    origin: Origin,
    *,
    loc: Sequence[str] = ("body", "consent"),
) -> ConsentRecord:
    """Keep the record of this acceptance, or refuse (422) a request without consent or with
    a version that is not the current one."""
    current = await check_consent(session, acting, kind, consent, loc=loc)
    record = ConsentRecord(
        tenant_id=acting.tenant_id,
        client_id=acting.client_id,
        user_id=acting.user_id,
        kind=kind,
        text_version=current.version,
        text_sha256=sha256_hex(current.text),
        accepted_at=utcnow(),
        ip_address=origin.ip_address,
        user_agent=origin.user_agent,
    )
    ConsentRecordRepository(session, acting).add(record)
    await session.flush()
    record_event(
        session,
        tenant_id=acting.tenant_id,
        client_id=acting.client_id,
        type="consent.recorded",
        subject_type="consent",
        subject_id=record.id,
        data=ConsentOut.model_validate(record).model_dump(mode="json"),
    )
    return record
