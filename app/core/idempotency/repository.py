"""Idempotency records: one per (caller, key), read and written in transactions of their own."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import IdempotencyRecord


class IdempotencyRepository:
    """Not tenant-scoped: records belong to a caller (`actor`), which already names the tenant's
    user or key, and a caller only ever reaches its own."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def locked(self, actor: str, key: str) -> IdempotencyRecord | None:
        stmt = (
            select(IdempotencyRecord)
            .where(IdempotencyRecord.actor == actor, IdempotencyRecord.key == key)
            .with_for_update()
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def by_id(self, record_id: uuid.UUID) -> IdempotencyRecord | None:
        return await self.session.get(IdempotencyRecord, record_id)

    async def remove(self, record: IdempotencyRecord) -> None:
        await self.session.delete(record)
        await self.session.flush()

    async def add(self, record: IdempotencyRecord) -> IdempotencyRecord:
        self.session.add(record)
        await self.session.flush()
        return record

    async def complete(self, record_id: uuid.UUID, status: int, body: Any) -> None:
        record = await self.by_id(record_id)
        if record is not None:
            record.state = "completed"
            record.response_status = status
            record.response_body = body

    async def unlock(self, record_id: uuid.UUID, at: datetime) -> None:
        record = await self.by_id(record_id)
        if record is not None:
            record.locked_until = at

    async def purge_expired(self, now: datetime) -> int:
        result = await self.session.execute(
            delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= now)
        )
        return int(getattr(result, "rowcount", 0) or 0)
