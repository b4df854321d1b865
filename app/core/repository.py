"""The repository base: every query starts from what the caller may read.

`readable()` is already filtered to the caller's tenant, and to the caller's client for a
client user, so a query cannot forget either; a row outside it is simply not found (404).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import Select, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.core.errors import NotFound
from app.core.pagination import PageParams, keyset_statement, page_of
from app.core.principal import Principal
from app.models.base import Base

M = TypeVar("M", bound=Base)
Row = TypeVar("Row")

# The caller's ids, as `readable_once` passes them: bind parameters, not literals.
_PRINCIPAL_IDS = ("tenant_id", "user_id", "client_id", "api_key_id")
_ONCE: dict[tuple[Any, ...], Any] = {}


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

    def readable_once(
        self, name: str, build: Callable[[Select[M]], Select[Any]]
    ) -> tuple[Select[Any], dict[str, Any]]:
        """`build(self.readable())`, built once for each repository, `name` and shape of
        caller (kind, which ids it has), and its parameters for this caller: a hot read skips
        building the statement and computing its cache key (both memoized on it).

        It is built for a stand-in principal whose ids are bind parameters
        (`principal_tenant_id`, ...), so `readable()` scopes it exactly as it scopes any other
        query, and nothing of the first caller stays in it. `build` must take its own values
        as bind parameters too, and pass them with the parameters this returns."""
        principal = self.principal
        present = tuple(f for f in _PRINCIPAL_IDS if getattr(principal, f) is not None)
        key = (type(self), name, type(principal), principal.kind, present)
        stmt = _ONCE.get(key)
        if stmt is None:
            ids: dict[str, Any] = {f: bindparam(f"principal_{f}") for f in present}
            stand_in = dataclasses.replace(principal, **ids)
            stmt = _ONCE[key] = build(type(self)(self.session, stand_in).readable())
        return stmt, {f"principal_{f}": getattr(principal, f) for f in present}

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
