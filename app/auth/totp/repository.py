"""Queries of the TOTP second factor: a person's own rows, by their user id."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import RecoveryCode, Tenant, TotpCredential, User


class TotpRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def credential(self, user_id: uuid.UUID) -> TotpCredential | None:
        stmt = select(TotpCredential).where(TotpCredential.user_id == user_id).with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def add(self, credential: TotpCredential) -> None:
        self.session.add(credential)
        await self.session.flush()

    async def remove(self, user_id: uuid.UUID) -> None:
        """The secret and every recovery code with it."""
        await self.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
        await self.session.execute(delete(TotpCredential).where(TotpCredential.user_id == user_id))

    async def replace_recovery_codes(self, user_id: uuid.UUID, hashes: list[str]) -> None:
        await self.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
        self.session.add_all(RecoveryCode(user_id=user_id, code_hash=h) for h in hashes)
        await self.session.flush()

    async def unused_recovery_code(self, user_id: uuid.UUID, code_hash: str) -> RecoveryCode | None:
        stmt = (
            select(RecoveryCode)
            .where(
                RecoveryCode.user_id == user_id,
                RecoveryCode.code_hash == code_hash,
                RecoveryCode.used_at.is_(None),
            )
            .with_for_update()
        )
        return (await self.session.execute(stmt)).scalars().first()

    async def staff_must_use_totp(self, tenant_id: uuid.UUID) -> bool:
        stmt = select(Tenant.staff_totp_required).where(Tenant.id == tenant_id)
        return bool((await self.session.execute(stmt)).scalar_one_or_none())

    async def user(self, user_id: uuid.UUID) -> User | None:
        return await self.session.get(User, user_id)
