"""Builders for test data. People are written straight to the database (one password
hash, computed once) and signed in with real tokens; the API itself is what tests call."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.errors import problem_type_uri
from app.core.security import create_access_token, hash_password
from app.models import AuthSession, Client, Membership, ServiceCategory, Tenant, User

PASSWORD = "correct horse battery staple"
# The built-in consent texts are version 1 until staff set their own.
CONSENT = {"accepted": True, "text_version": 1}


def method_body(token: str, **extra: Any) -> dict[str, Any]:
    """A POST /payment-methods body for a fake-gateway test token (a bank account for the
    `tok_ach...` ones, which needs the client's consent to debits)."""
    if token.startswith("tok_ach"):
        return {"type": "ach", "token": token, "consent": CONSENT, **extra}
    return {"type": "card", "token": token, **extra}


@cache
def password_hash() -> str:
    return hash_password(PASSWORD)


def factory_session_id(user: User) -> uuid.UUID:
    """The id of the session `Factory.user` opens for a person: derived from their id, so
    `token_for` can mint tokens of it without a database round trip."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"factory-session:{user.id}")


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
        extra: list[Any] = [AuthSession(id=factory_session_id(user), user_id=user.id)]
        if client is not None:
            extra[0].client_id = client.id
            extra.append(Membership(tenant_id=tenant.id, user_id=user.id, client_id=client.id))
        await self.add(*extra)
        return Person(user, self.token_for(user))

    def token_for(self, user: User) -> str:
        """A token of the session the factory opened for `user` when it made them (as if
        they had signed in once)."""
        return create_access_token(
            self.settings,
            user_id=user.id,
            tenant_id=user.tenant_id,
            token_version=user.token_version,
            session_id=factory_session_id(user),
            client_id=user.client_id,
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


# --- Helpers for the foundation tests (module-level, so the Factory class stays as it is) ---


async def api_key_for(
    factory: Factory,
    tenant: Tenant,
    name: str = "PSA sync",
    scopes: Sequence[str] | None = None,
) -> tuple[Any, str]:
    """An integration key written straight to the database: (the ApiKey row, its secret), with
    `scopes` (v1's: invoices:write, invoices:read, payments:read, when left out)."""
    from app.core.scopes import V1_SCOPES
    from app.core.security import new_api_key, sha256_hex
    from app.models import ApiKey

    prefix, secret = new_api_key()
    key = ApiKey(
        tenant_id=tenant.id,
        name=name,
        prefix=prefix,
        secret_hash=sha256_hex(secret),
        scopes=list(V1_SCOPES if scopes is None else scopes),
    )
    await factory.add(key)
    return key, secret


async def fetch(factory: Factory, model: Any, id_: uuid.UUID) -> Any:
    """A fresh copy of one row (None when it is gone)."""
    async with factory.sessionmaker() as session:
        return await session.get(model, id_)


async def count_rows(factory: Factory, model: Any, *where: Any) -> int:
    from sqlalchemy import func, select

    async with factory.sessionmaker() as session:
        stmt = select(func.count()).select_from(model).where(*where)
        return int((await session.execute(stmt)).scalar_one())


async def update_row(factory: Factory, model: Any, id_: uuid.UUID, **values: Any) -> None:
    from sqlalchemy import update

    async with factory.sessionmaker() as session, session.begin():
        await session.execute(update(model).where(model.id == id_).values(**values))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_problem(response: Any, status: int, slug: str | None = None) -> dict[str, Any]:
    """The response is RFC 9457 problem+json with this status (and problem type)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json", response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert isinstance(body["title"], str), body
    assert body["title"], body
    assert isinstance(body["detail"], str), body
    assert body["detail"], body
    assert body["type"].startswith("https://"), body
    if slug is not None:
        assert body["type"] == problem_type_uri(slug), body
    if status == 422:
        assert isinstance(body["errors"], list), body
        assert body["errors"], body
        for error in body["errors"]:
            assert isinstance(error["loc"], list), error
            assert isinstance(error["msg"], str), error
    assert "Traceback" not in response.text
    return body


def authenticated_operations(app: Any) -> list[tuple[str, str, str]]:
    """(method, path, operation_id) of every operation that needs a token (or an API key).

    Read from the OpenAPI document: an operation that resolves the caller depends on the
    bearer scheme, so it lists a `security` requirement there.
    """
    return [
        (method.upper(), path, str(operation["operationId"]))
        for path, item in app.openapi()["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and operation.get("security")
    ]


def fill_path(path: str) -> str:
    """A concrete URL for a route path, each parameter a fresh UUID."""
    import re

    return re.sub(r"\{[^}]+\}", lambda _: str(uuid.uuid4()), path)


async def stored_anywhere(factory: Factory, text: str) -> list[str]:
    """Every `table.column` of every table whose value contains `text` (to prove it is not kept)."""
    from sqlalchemy import select

    from app.models import Base

    found: list[str] = []
    async with factory.sessionmaker() as session:
        for table in Base.metadata.sorted_tables:
            for row in (await session.execute(select(table))).mappings():
                found.extend(f"{table.name}.{k}" for k, v in row.items() if text in str(v))
    return found
