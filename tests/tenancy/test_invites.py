"""Inviting a client's contact: a temporary password shown once, stored hashed."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from httpx import AsyncClient

from app.core.security import verify_password
from app.models import User
from tests.factories import (
    Factory,
    World,
    api_key_for,
    assert_problem,
    bearer,
    count_rows,
    fetch,
    stored_anywhere,
)

INVITE_FIELDS = {
    "id",
    "email",
    "full_name",
    "role",
    "client_id",
    "must_change_password",
    "is_active",
    "created_at",
    "last_login_at",
    "temporary_password",
}


def users_url(client_id: Any) -> str:
    return f"/api/v1/clients/{client_id}/users"


async def invite(
    client: AsyncClient, world: World, email: str = "Dana.Contact@Acme.Example"
) -> Any:
    return await client.post(
        users_url(world.client.id),
        headers=world.staff.headers,
        json={"email": email, "full_name": " Dana Contact "},
    )


async def test_invite_a_contact(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    response = await invite(client, world)
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == INVITE_FIELDS
    assert body["email"] == "dana.contact@acme.example"
    assert body["full_name"] == "Dana Contact"
    assert body["role"] == "client"
    assert body["client_id"] == str(world.client.id)
    assert body["must_change_password"] is True
    assert body["is_active"] is True
    assert body["last_login_at"] is None
    temporary = body["temporary_password"]
    assert len(temporary) >= 12

    async with factory.sessionmaker() as session:
        user = await session.get(User, uuid.UUID(body["id"]))
    assert user is not None
    assert user.tenant_id == world.tenant.id
    assert user.must_change_password is True
    # Stored hashed (argon2id), never as it was shown.
    assert user.password_hash.startswith("$argon2id$")
    assert temporary not in user.password_hash
    assert verify_password(temporary, user.password_hash)


async def test_the_temporary_password_is_nowhere_in_the_database(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    temporary = (await invite(client, world)).json()["temporary_password"]
    assert await stored_anywhere(factory, temporary) == []


async def test_each_invite_gets_its_own_temporary_password(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    first = (await invite(client, world, "one@acme.example")).json()["temporary_password"]
    second = (await invite(client, world, "two@acme.example")).json()["temporary_password"]
    assert first != second


async def test_the_contact_signs_in_with_it(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    body = (await invite(client, world)).json()
    response = await client.post(
        "/api/v1/auth/token",
        data={"username": body["email"], "password": body["temporary_password"]},
    )
    assert response.status_code == 200, response.text
    assert response.json()["must_change_password"] is True
    me = await client.get("/api/v1/me", headers=bearer(response.json()["access_token"]))
    assert me.json()["client_id"] == str(world.client.id)
    assert me.json()["role"] == "client"


async def test_list_the_clients_contacts(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    other_company = await factory.client(world.tenant, "Other Co")
    await factory.contact(world.tenant, other_company)
    invited = (await invite(client, world)).json()
    response = await client.get(users_url(world.client.id), headers=world.staff.headers)
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [u["id"] for u in items] == [invited["id"], str(world.contact.id)]
    assert all("temporary_password" not in u for u in items)
    assert all("password_hash" not in u for u in items)
    assert all(u["client_id"] == str(world.client.id) for u in items)


@pytest.mark.parametrize(
    "email",
    [
        "taken@example.com",
        "TAKEN@example.com",
        " Taken@Example.com ",
    ],
)
async def test_an_email_in_use_is_409(client: AsyncClient, factory: Factory, email: str) -> None:
    world = await factory.world()
    await factory.user(world.tenant, email="taken@example.com")
    response = await invite(client, world, email)
    assert_problem(response, 409, "email-taken")
    assert await count_rows(factory, User) == 3


async def test_an_email_used_in_another_tenant_reveals_nothing(
    client: AsyncClient, factory: Factory
) -> None:
    """Accounts belong to one tenant: inviting an email another tenant uses answers exactly
    as for an unknown one (a new account here), and leaves the other tenant's alone."""
    world = await factory.world()
    other = await factory.world("Other MSP")
    response = await invite(client, world, other.contact.user.email)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["id"] != str(other.contact.id)
    assert body["temporary_password"]
    assert set(body) == INVITE_FIELDS
    theirs = await fetch(factory, User, other.contact.id)
    assert theirs.tenant_id == other.tenant.id and theirs.must_change_password is False
    # Each account signs in with its own password, into its own tenant.
    mine = await factory.sign_in(body["email"], body["temporary_password"])
    me = await client.get("/api/v1/me", headers=bearer(mine["access_token"]))
    assert me.json()["tenant_id"] == str(world.tenant.id)
    theirs_signed_in = await factory.sign_in(body["email"])
    me = await client.get("/api/v1/me", headers=bearer(theirs_signed_in["access_token"]))
    assert me.json()["tenant_id"] == str(other.tenant.id)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"email": "a@acme.example"},
        {"full_name": "No Email"},
        {"email": "not-an-email", "full_name": "X"},
        {"email": "a@acme.example", "full_name": ""},
        {"email": "a@acme.example", "full_name": "   "},
        {"email": "a@acme.example", "full_name": "x" * 201},
    ],
)
async def test_invite_validation(
    client: AsyncClient, factory: Factory, body: dict[str, Any]
) -> None:
    world = await factory.world()
    response = await client.post(users_url(world.client.id), headers=world.staff.headers, json=body)
    assert_problem(response, 422, "validation-error")
    assert await count_rows(factory, User) == 2


async def test_inviting_to_an_unknown_client_is_404(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    response = await client.post(
        users_url(uuid.uuid4()),
        headers=world.staff.headers,
        json={"email": "x@acme.example", "full_name": "X"},
    )
    assert_problem(response, 404)
    response = await client.get(users_url(uuid.uuid4()), headers=world.staff.headers)
    assert_problem(response, 404)
    assert await count_rows(factory, User) == 2


async def test_only_staff_invite(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    _key, secret = await api_key_for(factory, world.tenant)
    body = {"email": "x@acme.example", "full_name": "X"}
    for headers in (world.contact.headers, bearer(secret)):
        response = await client.post(users_url(world.client.id), headers=headers, json=body)
        assert_problem(response, 403)
        response = await client.get(users_url(world.client.id), headers=headers)
        assert_problem(response, 403)
    assert await count_rows(factory, User) == 2
