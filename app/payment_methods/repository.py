"""Queries for payment methods and the platform-fee ledger."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime

from sqlalchemy import Select, func, select, update

from app.core.pagination import PageParams
from app.core.repository import Repository, paginate
from app.models import Client, PaymentMethod, PlatformFee
from app.payment_methods.errors import PaymentMethodNotFound


class PaymentMethodRepository(Repository[PaymentMethod]):
    model = PaymentMethod
    not_found = PaymentMethodNotFound

    def readable(self) -> Select[PaymentMethod]:
        return super().readable().where(PaymentMethod.deleted_at.is_(None))

    async def page(
        self, params: PageParams, *, client_id: uuid.UUID | None
    ) -> tuple[list[PaymentMethod], str | None]:
        stmt = self.readable()
        if client_id is not None:
            stmt = stmt.where(PaymentMethod.client_id == client_id)
        return await paginate(
            self.session, stmt, params, [PaymentMethod.created_at, PaymentMethod.id]
        )

    async def lock_client(self, client_id: uuid.UUID) -> None:
        """Take the client's row lock: changes to one client's methods (which is the
        default) then run one at a time, and two at once cannot both make a default."""
        stmt = (
            select(Client.id)
            .where(Client.id == client_id, Client.tenant_id == self.principal.tenant_id)
            .with_for_update()
        )
        await self.session.execute(stmt)

    async def live(self, method_id: uuid.UUID, *, client_id: uuid.UUID) -> PaymentMethod | None:
        """The client's method, unless it was removed."""
        stmt = self.readable().where(
            PaymentMethod.id == method_id, PaymentMethod.client_id == client_id
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def live_with_customers(
        self, method_ids: Collection[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[PaymentMethod, str | None]]:
        """Live methods by id, each with its client's customer reference at the gateway: what
        charges need, in one statement. Whose method it is, the caller checks."""
        stmt = (
            self.readable()
            .add_columns(Client.gateway_customer_reference)
            .join(
                Client,
                (Client.id == PaymentMethod.client_id)
                & (Client.tenant_id == PaymentMethod.tenant_id),
            )
            .where(PaymentMethod.id.in_(method_ids))
        )
        return {m.id: (m, customer) for m, customer in (await self.session.execute(stmt)).all()}

    async def live_for_client(self, client_id: uuid.UUID) -> list[PaymentMethod]:
        stmt = (
            self.readable()
            .where(PaymentMethod.client_id == client_id)
            .order_by(PaymentMethod.created_at.desc(), PaymentMethod.id.desc())
        )
        return list((await self.session.execute(stmt)).scalars())

    async def clear_default(self, client_id: uuid.UUID, *, except_id: uuid.UUID | None) -> None:
        stmt = update(PaymentMethod).where(
            PaymentMethod.client_id == client_id,
            PaymentMethod.tenant_id == self.principal.tenant_id,
            PaymentMethod.is_default.is_(True),
        )
        if except_id is not None:
            stmt = stmt.where(PaymentMethod.id != except_id)
        await self.session.execute(stmt.values(is_default=False))


class PlatformFeeRepository(Repository[PlatformFee]):
    model = PlatformFee

    def filtered(
        self,
        *,
        client_id: uuid.UUID | None,
        since: datetime | None,
        until: datetime | None,
    ) -> Select[PlatformFee]:
        stmt = self.readable()
        if client_id is not None:
            stmt = stmt.where(PlatformFee.client_id == client_id)
        if since is not None:
            stmt = stmt.where(PlatformFee.created_at >= since)
        if until is not None:
            stmt = stmt.where(PlatformFee.created_at < until)
        return stmt

    async def page_with_total(
        self, params: PageParams, stmt: Select[PlatformFee]
    ) -> tuple[list[PlatformFee], str | None, int, int]:
        items, cursor = await paginate(
            self.session, stmt, params, [PlatformFee.created_at, PlatformFee.id]
        )
        sums = stmt.with_only_columns(
            func.coalesce(func.sum(PlatformFee.amount), 0), func.count(PlatformFee.id)
        ).order_by(None)
        total, count = (await self.session.execute(sums)).one()
        return items, cursor, int(total), int(count)

    async def exists_for(self, client_id: uuid.UUID, fingerprint: str) -> bool:
        """A fee was charged for this card or account and client, ever (even if removed)."""
        stmt = self.readable().where(
            PlatformFee.client_id == client_id, PlatformFee.fingerprint == fingerprint
        )
        return (await self.session.execute(stmt.limit(1))).first() is not None
