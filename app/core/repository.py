"""The repository base: every query starts from what the caller may read.

`readable()` is already filtered to the caller's tenant, and to the caller's client for a
client user, so a query cannot forget either; a row outside it is simply not found (404).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.core.errors import NotFound
from app.core.pagination import PageParams, keyset_statement, page_of
from app.core.principal import Principal
from app.models.base import Base

M = TypeVar("M", bound=Base)
Row = TypeVar("Row")


class Repository(Generic[M]):
    model: ClassVar[type[Base]]
    not_found: ClassVar[type[NotFound]] = NotFound

    def __init__(self, session: AsyncSession, principal: Principal) -> None:
        self.session = session
        self.principal = principal

    def readable(self) -> Select[M]:
        model: Any = self.model
        stmt: Select[M] = select(model).where(model.tenant_id == self.principal.tenant_id)
        client_id = self.principal.client_scope()
        if client_id is not None and hasattr(model, "client_id"):
            stmt = stmt.where(model.client_id == client_id)
        return stmt

    async def get(self, id_: uuid.UUID, *, for_update: bool = False) -> M | None:
        model: Any = self.model
        stmt = self.readable().where(model.id == id_)
        if for_update:
            stmt = stmt.with_for_update()
        result = await self.session.execute(stmt)
        return result.scalar_one_or_none()

    async def get_or_404(self, id_: uuid.UUID, *, for_update: bool = False) -> M:
        found = await self.get(id_, for_update=for_update)
        if found is None:
            raise self.not_found()
        return found

    def add(self, obj: M) -> M:
        self.session.add(obj)
        return obj


async def paginate(
    session: AsyncSession,
    stmt: Select[Row],
    params: PageParams,
    order_by: Sequence[InstrumentedAttribute[Any]],
) -> tuple[list[Row], str | None]:
    """One page of `stmt` ordered by `order_by` (descending), and the next cursor."""
    rows = list((await session.execute(keyset_statement(stmt, params, order_by))).scalars().all())
    return page_of(rows, params, order_by)
