"""Tenant-scoped queries for the tenant's profile and logo, clients, contacts, service
categories and API keys."""

from __future__ import annotations

import uuid

from sqlalchemy import Select, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import undefer

from app.core.pagination import PageParams
from app.core.principal import Principal
from app.core.repository import Repository, paginate
from app.models import ApiKey, Client, Membership, ServiceCategory, Tenant, TenantLogo, User
from app.tenancy.errors import ApiKeyNotFound, ClientNotFound


class TenantRepository:
    """The caller's own tenant (the MSP): its profile and its logo."""

    def __init__(self, session: AsyncSession, principal: Principal) -> None:
        self.session = session
        self.principal = principal

    async def current(self) -> Tenant:
        tenant = await self.session.get(Tenant, self.principal.tenant_id)
        assert tenant is not None, "a principal's tenant exists"
        return tenant

    async def logo(self, *, with_image: bool = False) -> TenantLogo | None:
        stmt = select(TenantLogo).where(TenantLogo.tenant_id == self.principal.tenant_id)
        if with_image:
            stmt = stmt.options(undefer(TenantLogo.data))
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def delete_logo(self) -> bool:
        stmt = delete(TenantLogo).where(TenantLogo.tenant_id == self.principal.tenant_id)
        result = await self.session.execute(stmt)
        return bool(getattr(result, "rowcount", 0))


class TenantDirectory:
    """Every tenant: for bootstrapping a database (the command line), never for a request."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def all(self) -> list[Tenant]:
        stmt = select(Tenant).order_by(Tenant.created_at)
        return list((await self.session.execute(stmt)).scalars())

    async def any_people(self) -> bool:
        return (await self.session.execute(select(User.id).limit(1))).first() is not None

    async def create(self, name: str, *, timezone: str = "UTC") -> Tenant:
        tenant = Tenant(name=name, timezone=timezone)
        self.session.add(tenant)
        await self.session.flush()
        return tenant


class ClientRepository(Repository[Client]):
    model = Client
    not_found = ClientNotFound

    def readable(self) -> Select[Client]:
        stmt = select(Client).where(Client.tenant_id == self.principal.tenant_id)
        client_id = self.principal.client_scope()
        if client_id is not None:
            stmt = stmt.where(Client.id == client_id)
        return stmt

    async def page(self, params: PageParams) -> tuple[list[Client], str | None]:
        return await paginate(self.session, self.readable(), params, [Client.created_at, Client.id])


class UserRepository(Repository[User]):
    model = User

    def _contacts_of(self, client_id: uuid.UUID) -> Select[User]:
        return (
            self.readable()
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.client_id == client_id, Membership.tenant_id == User.tenant_id)
        )

    async def page_for_client(
        self, client_id: uuid.UUID, params: PageParams
    ) -> tuple[list[User], str | None]:
        stmt = self._contacts_of(client_id)
        return await paginate(self.session, stmt, params, [User.created_at, User.id])

    async def contact_of(
        self, client_id: uuid.UUID, user_id: uuid.UUID, *, for_update: bool = False
    ) -> User | None:
        stmt = self._contacts_of(client_id).where(User.id == user_id)
        if for_update:
            stmt = stmt.with_for_update(of=User)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def by_email(self, email: str) -> User | None:
        """This tenant's account of `email`: accounts of other tenants are not looked at, so
        an invitation can never tell whether one exists."""
        stmt = self.readable().where(User.email == email)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    def add_membership(self, user: User, client_id: uuid.UUID) -> Membership:
        membership = Membership(tenant_id=user.tenant_id, user_id=user.id, client_id=client_id)
        self.session.add(membership)
        return membership

    async def is_member(self, user: User, client_id: uuid.UUID) -> bool:
        stmt = select(func.count()).where(
            Membership.user_id == user.id,
            Membership.client_id == client_id,
            Membership.tenant_id == self.principal.tenant_id,
        )
        return bool((await self.session.execute(stmt)).scalar_one())

    async def staff_member(self, user_id: uuid.UUID) -> User | None:
        stmt = self.readable().where(User.id == user_id, User.role == "staff")
        return (await self.session.execute(stmt)).scalar_one_or_none()


class ServiceCategoryRepository(Repository[ServiceCategory]):
    model = ServiceCategory

    async def page(self, params: PageParams) -> tuple[list[ServiceCategory], str | None]:
        return await paginate(
            self.session, self.readable(), params, [ServiceCategory.created_at, ServiceCategory.id]
        )

    async def by_name(self, name: str) -> ServiceCategory | None:
        stmt = self.readable().where(func.lower(ServiceCategory.name) == name.lower())
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def existing_ids(self, ids: set[uuid.UUID]) -> set[uuid.UUID]:
        if not ids:
            return set()
        stmt = select(ServiceCategory.id).where(
            ServiceCategory.tenant_id == self.principal.tenant_id, ServiceCategory.id.in_(ids)
        )
        return set((await self.session.execute(stmt)).scalars())


class ApiKeyRepository(Repository[ApiKey]):
    model = ApiKey
    not_found = ApiKeyNotFound

    async def page(self, params: PageParams) -> tuple[list[ApiKey], str | None]:
        return await paginate(self.session, self.readable(), params, [ApiKey.created_at, ApiKey.id])
