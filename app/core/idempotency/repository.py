"""Idempotency records: one per (caller, key), read and written in transactions of their own."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import IdempotencyRecord


class IdempotencyRepository:
    """Not tenant-scoped: records belong to a caller (`actor`), which already names the tenant's
    user or key, and a caller only ever reaches its own."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_new(
        self,
        actor: str,
        key: str,
        *,
        fingerprint: str,
        locked_until: datetime,
        expires_at: datetime,
    ) -> uuid.UUID | None:
        """A new in-flight record for the key, in one statement; None when the caller already
        has a record for it (INSERT ... ON CONFLICT DO NOTHING: no error, no lost transaction)."""
        insert: Any = (
            postgresql.insert
            if self.session.get_bind().dialect.name == "postgresql"
            else sqlite.insert
        )
        stmt = (
            insert(IdempotencyRecord)
            .values(
                actor=actor,
                key=key,
                request_fingerprint=fingerprint,
                locked_until=locked_until,
                expires_at=expires_at,
            )
            .on_conflict_do_nothing(index_elements=["actor", "key"])
            .returning(IdempotencyRecord.id)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def locked(self, actor: str, key: str) -> IdempotencyRecord | None:
        stmt = (
            select(IdempotencyRecord)
            .where(IdempotencyRecord.actor == actor, IdempotencyRecord.key == key)
            .with_for_update()
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def remove(self, record: IdempotencyRecord) -> None:
        await self.session.delete(record)
        await self.session.flush()

    async def add(self, record: IdempotencyRecord) -> IdempotencyRecord:
        self.session.add(record)
        await self.session.flush()
        return record

    async def complete(self, record_id: uuid.UUID, status: int, body: Any) -> None:
        # One statement, not a read and a write: a record purged meanwhile is simply missed.
        await self.session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.id == record_id)
            .values(state="completed", response_status=status, response_body=body)
            .execution_options(synchronize_session=False)
        )

    async def unlock(self, record_id: uuid.UUID, at: datetime) -> None:
        await self.session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.id == record_id)
            .values(locked_until=at)
            .execution_options(synchronize_session=False)
        )

    async def purge_expired(self, now: datetime) -> int:
        result = await self.session.execute(
            delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= now)
        )
        return int(getattr(result, "rowcount", 0) or 0)
