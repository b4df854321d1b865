"""Mass assignment: no body can set a role, tenant, client, id or any other field the
caller does not own. Unknown fields are refused (422) and nothing changes."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from httpx import AsyncClient

from app.models import ApiKey, Client, ServiceCategory, User
from tests.factories import (
    PASSWORD,
    Factory,
    World,
    api_key_for,
    assert_problem,
    bearer,
    count_rows,
    fetch,
)


# What an attacker would add to a body, with values pointing at someone else.
def smuggled(other: World) -> list[dict[str, Any]]:
    return [
        {"role": "staff"},
        {"tenant_id": str(other.tenant.id)},
        {"client_id": str(other.client.id)},
        {"id": str(uuid.uuid4())},
        {"must_change_password": False},
        {"is_active": True},
        {"token_version": 99},
        {"password_hash": "x"},
        {"created_at": "2020-01-01T00:00:00Z"},
        {"prefix": "bpk_000000000000"},
        {"secret_hash": "0" * 64},
        {"revoked_at": None},
    ]


def extra_field(response: Any, field: str) -> None:
    body = assert_problem(response, 422, "validation-error")
    assert any(e["loc"] == ["body", field] for e in body["errors"]), body


@pytest.fixture
async def worlds(factory: Factory) -> tuple[World, World]:
    return await factory.world("Mine"), await factory.world("Theirs")


async def test_create_client(
    client: AsyncClient, factory: Factory, worlds: tuple[World, World]
) -> None:
    mine, theirs = worlds
    for extra in smuggled(theirs):
        body = {"name": "Smuggler Inc", **extra}
        response = await client.post("/api/v1/clients", headers=mine.staff.headers, json=body)
        extra_field(response, next(iter(extra)))
    assert await count_rows(factory, Client, Client.name == "Smuggler Inc") == 0


async def test_update_client(
    client: AsyncClient, factory: Factory, worlds: tuple[World, World]
) -> None:
    mine, theirs = worlds
    url = f"/api/v1/clients/{mine.client.id}"
    for extra in [*smuggled(theirs), {"gateway_customer_reference": "cus_evil"}]:
        response = await client.patch(
            url, headers=mine.staff.headers, json={"name": "Renamed", **extra}
        )
        extra_field(response, next(iter(extra)))
    stored = await fetch(factory, Client, mine.client.id)
    assert stored.name == mine.client.name
    assert stored.tenant_id == mine.tenant.id
    assert stored.gateway_customer_reference is None


async def test_invite_cannot_make_staff_or_pick_a_tenant_client_or_password(
    client: AsyncClient, factory: Factory, worlds: tuple[World, World]
) -> None:
    mine, theirs = worlds
    url = f"/api/v1/clients/{mine.client.id}/users"
    extras = [*smuggled(theirs), {"password": "chosen by the staff member"}]
    for extra in extras:
        body = {"email": "smuggled@example.com", "full_name": "Smuggled", **extra}
        response = await client.post(url, headers=mine.staff.headers, json=body)
        extra_field(response, next(iter(extra)))
    assert await count_rows(factory, User, User.email == "smuggled@example.com") == 0


async def test_create_service_category(
    client: AsyncClient, factory: Factory, worlds: tuple[World, World]
) -> None:
    mine, theirs = worlds
    for extra in smuggled(theirs):
        response = await client.post(
            "/api/v1/service-categories",
            headers=mine.staff.headers,
            json={"name": "Smuggled", **extra},
        )
        extra_field(response, next(iter(extra)))
    assert await count_rows(factory, ServiceCategory) == 0


async def test_create_api_key(
    client: AsyncClient, factory: Factory, worlds: tuple[World, World]
) -> None:
    mine, theirs = worlds
    for extra in [*smuggled(theirs), {"secret": "bpk_000000000000.mine"}, {"created_by_id": None}]:
        response = await client.post(
            "/api/v1/api-keys", headers=mine.staff.headers, json={"name": "Smuggled", **extra}
        )
        extra_field(response, next(iter(extra)))
    assert await count_rows(factory, ApiKey) == 0


async def test_change_password_cannot_change_anything_else(
    client: AsyncClient, factory: Factory, worlds: tuple[World, World]
) -> None:
    mine, theirs = worlds
    for extra in [*smuggled(theirs), {"email": "new@example.com"}, {"full_name": "Boss"}]:
        response = await client.post(
            "/api/v1/me/password",
            headers=mine.contact.headers,
            json={
                "current_password": PASSWORD,
                "new_password": "an entirely new passphrase",
                **extra,
            },
        )
        extra_field(response, next(iter(extra)))
    stored = await fetch(factory, User, mine.contact.id)
    assert stored.role == "client"
    assert stored.client_id == mine.client.id
    assert stored.tenant_id == mine.tenant.id
    assert stored.password_hash == mine.contact.user.password_hash
    assert stored.token_version == mine.contact.user.token_version


async def test_refresh_and_logout_bodies(
    client: AsyncClient, factory: Factory, worlds: tuple[World, World]
) -> None:
    mine, theirs = worlds
    tokens = await factory.sign_in(mine.contact.user.email)
    for extra in smuggled(theirs):
        body = {"refresh_token": tokens["refresh_token"], **extra}
        response = await client.post("/api/v1/auth/refresh", json=body)
        extra_field(response, next(iter(extra)))
        response = await client.post(
            "/api/v1/auth/logout", headers=bearer(tokens["access_token"]), json=body
        )
        extra_field(response, next(iter(extra)))
    # The token was neither spent nor revoked by any of that.
    assert (
        await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    ).status_code == 200


async def test_sign_in_form_extras_grant_nothing(
    client: AsyncClient, factory: Factory, worlds: tuple[World, World]
) -> None:
    """The OAuth2 form has fixed fields; extra ones change nothing about who you are."""
    mine, theirs = worlds
    response = await client.post(
        "/api/v1/auth/token",
        data={
            "username": mine.contact.user.email,
            "password": PASSWORD,
            "scope": "staff admin",
            "role": "staff",
            "tenant_id": str(theirs.tenant.id),
            "client_id": str(theirs.client.id),
        },
    )
    assert response.status_code == 200, response.text
    me = await client.get("/api/v1/me", headers=bearer(response.json()["access_token"]))
    assert me.json()["role"] == "client"
    assert me.json()["tenant_id"] == str(mine.tenant.id)
    assert me.json()["client_id"] == str(mine.client.id)


async def test_an_api_key_cannot_smuggle_either(
    client: AsyncClient, factory: Factory, worlds: tuple[World, World]
) -> None:
    mine, theirs = worlds
    _key, secret = await api_key_for(factory, mine.tenant, scopes=["clients:read"])
    response = await client.get(
        "/api/v1/clients",
        headers=bearer(secret),
        params={"tenant_id": str(theirs.tenant.id), "client_id": str(theirs.client.id)},
    )
    assert response.status_code == 200
    assert [c["id"] for c in response.json()["items"]] == [str(mine.client.id)]
