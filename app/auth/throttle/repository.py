"""The throttle's counters in the database: one row per key, changed only by single
statements that read and write at once (INSERT ... ON CONFLICT DO UPDATE ... RETURNING), so
concurrent attempts can never both read the same count. Keys are keyed hashes: what was
typed as an email is never stored."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import case, delete, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import ThrottleCounter


class ThrottleCounterRepository:
    """Not tenant-scoped: sign-in names no tenant, and the rows hold nothing but hashes."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def hit(self, key: str, *, now: datetime, expires_at: datetime) -> tuple[int, datetime]:
        """Count one attempt on `key`: a new window (count 1, ending `expires_at`) when the
        last one has ended, else one more in it. Returns the count and the window's end."""
        insert: Any = (
            postgresql.insert
            if self.session.get_bind().dialect.name == "postgresql"
            else sqlite.insert
        )
        table = ThrottleCounter.__table__
        ended = table.c.expires_at <= now
        # Typed as the column, so the new window's end is stored the way the column stores it.
        new_end = literal(expires_at, table.c.expires_at.type)
        stmt = (
            insert(table)
            .values(key=key, count=1, expires_at=expires_at)
            .on_conflict_do_update(
                index_elements=[table.c.key],
                set_={
                    "count": case((ended, 1), else_=table.c.count + 1),
                    "expires_at": case((ended, new_end), else_=table.c.expires_at),
                },
            )
            .returning(table.c.count, table.c.expires_at)
        )
        row = (await self.session.execute(stmt)).one()
        count, end = row
        return int(count), end

    async def refund(self, key: str, *, now: datetime) -> None:
        """Take back one counted attempt, if its window is still open."""
        await self.session.execute(
            update(ThrottleCounter)
            .where(
                ThrottleCounter.key == key,
                ThrottleCounter.expires_at > now,
                ThrottleCounter.count > 0,
            )
            .values(count=ThrottleCounter.count - 1)
        )

    async def current(self, key: str, *, now: datetime) -> int:
        stmt = select(ThrottleCounter.count).where(
            ThrottleCounter.key == key, ThrottleCounter.expires_at > now
        )
        return int((await self.session.execute(stmt)).scalar_one_or_none() or 0)

    async def clear(self, key: str) -> None:
        await self.session.execute(delete(ThrottleCounter).where(ThrottleCounter.key == key))

    async def forget_ended(self, now: datetime, *, batch: int = 100) -> None:
        """Delete some ended windows. Rows another attempt holds are skipped (SKIP LOCKED on
        PostgreSQL): cleaning up must never wait on, or deadlock with, a live attempt."""
        ended = select(ThrottleCounter.key).where(ThrottleCounter.expires_at <= now).limit(batch)
        if self.session.get_bind().dialect.name == "postgresql":
            ended = ended.with_for_update(skip_locked=True)
        await self.session.execute(
            delete(ThrottleCounter).where(ThrottleCounter.key.in_(ended.scalar_subquery()))
        )
