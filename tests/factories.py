"""Builders for test data. People are written straight to the database (one password
hash, computed once) and signed in with real tokens; the API itself is what tests call."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import cache
from typing import Any

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.security import create_access_token, hash_password
from app.models import Client, ServiceCategory, Tenant, User

PASSWORD = "correct horse battery staple"


@cache
def password_hash() -> str:
    return hash_password(PASSWORD)


@dataclass
class Person:
    user: User
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def id(self) -> uuid.UUID:
        return self.user.id


@dataclass
class World:
    """A tenant with one staff member and one client with one contact."""

    tenant: Tenant
    staff: Person
    client: Client
    contact: Person


class Factory:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        http: AsyncClient,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.http = http

    async def add(self, *objects: Any) -> None:
        async with self.sessionmaker() as session, session.begin():
            session.add_all(objects)

    async def tenant(self, name: str = "Test MSP", timezone: str = "UTC") -> Tenant:
        tenant = Tenant(name=name, timezone=timezone)
        await self.add(tenant)
        return tenant

    async def client(self, tenant: Tenant, name: str = "Acme Corp") -> Client:
        client = Client(tenant_id=tenant.id, name=name, billing_email="billing@acme.example")
        await self.add(client)
        return client

    async def user(
        self,
        tenant: Tenant,
        *,
        client: Client | None = None,
        email: str | None = None,
        must_change_password: bool = False,
        full_name: str | None = None,
    ) -> Person:
        role = "client" if client else "staff"
        user = User(
            tenant_id=tenant.id,
            client_id=client.id if client else None,
            email=email or f"{role}-{uuid.uuid4().hex[:10]}@example.com",
            full_name=full_name or f"Test {role.title()}",
            role=role,
            password_hash=password_hash(),
            must_change_password=must_change_password,
        )
        await self.add(user)
        return Person(user, self.token_for(user))

    def token_for(self, user: User) -> str:
        return create_access_token(
            self.settings,
            user_id=user.id,
            tenant_id=user.tenant_id,
            token_version=user.token_version,
            session_id=uuid.uuid4(),
        )

    async def staff(self, tenant: Tenant) -> Person:
        return await self.user(tenant)

    async def contact(self, tenant: Tenant, client: Client) -> Person:
        return await self.user(tenant, client=client)

    async def world(self, name: str = "Test MSP") -> World:
        tenant = await self.tenant(name)
        client = await self.client(tenant)
        return World(
            tenant=tenant,
            staff=await self.staff(tenant),
            client=client,
            contact=await self.contact(tenant, client),
        )

    async def category(self, tenant: Tenant, name: str = "Hosting") -> ServiceCategory:
        category = ServiceCategory(tenant_id=tenant.id, name=name)
        await self.add(category)
        return category

    async def sign_in(self, email: str, password: str = PASSWORD) -> dict[str, Any]:
        response = await self.http.post(
            "/api/v1/auth/token", data={"username": email, "password": password}
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body
