"""Consent texts (latest version per kind) and the records of acceptance (append-only)."""

from __future__ import annotations

import uuid

from app.core.pagination import PageParams
from app.core.repository import Repository, paginate
from app.models import ConsentRecord, ConsentText


class ConsentTextRepository(Repository[ConsentText]):
    model = ConsentText

    async def latest(self, kind: str) -> ConsentText | None:
        stmt = (
            self.readable()
            .where(ConsentText.kind == kind)
            .order_by(ConsentText.version.desc())
            .limit(1)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()


class ConsentRecordRepository(Repository[ConsentRecord]):
    model = ConsentRecord

    async def page(
        self, params: PageParams, *, client_id: uuid.UUID | None, kind: str | None
    ) -> tuple[list[ConsentRecord], str | None]:
        stmt = self.readable()
        if client_id is not None:
            stmt = stmt.where(ConsentRecord.client_id == client_id)
        if kind is not None:
            stmt = stmt.where(ConsentRecord.kind == kind)
        return await paginate(
            self.session, stmt, params, [ConsentRecord.accepted_at, ConsentRecord.id]
        )
