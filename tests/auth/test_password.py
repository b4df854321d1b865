"""POST /me/password: the policy, what a change revokes, and the temporary-password gate."""

from __future__ import annotations

from typing import Any

import pytest
from httpx import AsyncClient, Response

from app.auth.dependencies import TEMPORARY_PASSWORD_OPERATIONS
from app.core.security import verify_password
from app.models import User
from tests.factories import (
    PASSWORD,
    Factory,
    Person,
    api_key_for,
    assert_problem,
    authenticated_operations,
    bearer,
    fetch,
    fill_path,
    update_row,
)

CHANGE = "/api/v1/me/password"
NEW_PASSWORD = "a much better passphrase"


async def change(
    client: AsyncClient, token: str, current: str = PASSWORD, new: str = NEW_PASSWORD
) -> Response:
    return await client.post(
        CHANGE, headers=bearer(token), json={"current_password": current, "new_password": new}
    )


async def refresh(client: AsyncClient, token: str) -> Response:
    return await client.post("/api/v1/auth/refresh", json={"refresh_token": token})


async def sign_in(client: AsyncClient, email: str, password: str) -> Response:
    return await client.post("/api/v1/auth/token", data={"username": email, "password": password})


# --- the policy -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("new", "why"),
    [
        ("short-pass1", "11 characters"),
        ("", "empty"),
        ("x" * 129, "129 characters"),
    ],
)
async def test_length_policy(client: AsyncClient, factory: Factory, new: str, why: str) -> None:
    world = await factory.world()
    response = await change(client, world.staff.token, new=new)
    body = assert_problem(response, 422, "validation-error")
    assert ["body", "new_password"] in [e["loc"] for e in body["errors"]], why
    await assert_password_unchanged(factory, world.staff)


@pytest.mark.parametrize("length", [12, 128])
async def test_the_length_limits_are_inclusive(
    client: AsyncClient, factory: Factory, length: int
) -> None:
    world = await factory.world()
    new = ("pass-" * 30)[:length]
    response = await change(client, world.staff.token, new=new)
    assert response.status_code == 204, response.text
    stored = await fetch(factory, User, world.staff.id)
    assert verify_password(new, stored.password_hash)


async def test_a_very_long_password_is_a_validation_error(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    assert_problem(await change(client, world.staff.token, new="y" * 5000), 422)


@pytest.mark.parametrize(
    "variant",
    [
        lambda email: email,
        lambda email: email.upper(),
        lambda email: f"  {email}  ",
        lambda email: email.split("@")[0],
        lambda email: email.split("@")[0].title(),
    ],
)
async def test_the_email_is_not_a_password(
    client: AsyncClient, factory: Factory, variant: Any
) -> None:
    tenant = await factory.tenant()
    person = await factory.user(tenant, email="margaret.hamilton@example.com")
    response = await change(client, person.token, new=variant(person.user.email))
    body = assert_problem(response, 422, "validation-error")
    assert body["errors"][0]["loc"] == ["body", "new_password"]
    assert "email" in body["detail"]
    await assert_password_unchanged(factory, person)


async def test_a_wrong_current_password_is_refused(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    response = await change(client, world.staff.token, current="not my password at all")
    body = assert_problem(response, 422)
    assert body["errors"][0]["loc"] == ["body", "current_password"]
    await assert_password_unchanged(factory, world.staff)
    # Nothing was revoked: the token still works.
    assert (await client.get("/api/v1/me", headers=world.staff.headers)).status_code == 200


async def test_the_new_password_must_differ(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    response = await change(client, world.staff.token, new=PASSWORD)
    body = assert_problem(response, 422)
    assert body["errors"][0]["loc"] == ["body", "new_password"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"current_password": PASSWORD},
        {"new_password": NEW_PASSWORD},
        {"current_password": PASSWORD, "new_password": None},
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "role": "staff"},
    ],
)
async def test_the_body_is_validated(
    client: AsyncClient, factory: Factory, body: dict[str, Any]
) -> None:
    world = await factory.world()
    response = await client.post(CHANGE, headers=world.contact.headers, json=body)
    assert_problem(response, 422, "validation-error")
    await assert_password_unchanged(factory, world.contact)


async def test_an_api_key_has_no_password(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    _key, secret = await api_key_for(factory, world.tenant)
    response = await change(client, secret)
    assert_problem(response, 403)


async def test_a_password_change_needs_a_token(client: AsyncClient) -> None:
    response = await client.post(
        CHANGE, json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    )
    assert_problem(response, 401)


# --- what a change does -----------------------------------------------------------------


async def test_a_change_replaces_the_password(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    response = await change(client, world.contact.token)
    assert response.status_code == 204, response.text
    assert response.content == b""
    assert_problem(await sign_in(client, world.contact.user.email, PASSWORD), 401)
    assert (await sign_in(client, world.contact.user.email, NEW_PASSWORD)).status_code == 200
    stored = await fetch(factory, User, world.contact.id)
    assert stored.password_hash.startswith("$argon2id$")
    assert NEW_PASSWORD not in stored.password_hash


async def test_a_change_ends_other_sessions_but_keeps_the_callers(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    mine = await factory.sign_in(world.contact.user.email)
    laptop = await factory.sign_in(world.contact.user.email)
    phone = await factory.sign_in(world.contact.user.email)
    # Someone else's sessions are no business of this change.
    colleague = await factory.sign_in(world.staff.user.email)

    assert (await change(client, mine["access_token"])).status_code == 204

    assert_problem(await refresh(client, laptop["refresh_token"]), 401, "invalid-refresh-token")
    assert_problem(await refresh(client, phone["refresh_token"]), 401, "invalid-refresh-token")
    assert (await refresh(client, colleague["refresh_token"])).status_code == 200

    # Access tokens issued before the change stop working, the caller's own included ...
    for token in (mine["access_token"], laptop["access_token"], world.contact.token):
        assert_problem(await client.get("/api/v1/me", headers=bearer(token)), 401)
    # ... but the caller's session survives: its refresh token gets a working pair.
    renewed = await refresh(client, mine["refresh_token"])
    assert renewed.status_code == 200, renewed.text
    me = await client.get("/api/v1/me", headers=bearer(renewed.json()["access_token"]))
    assert me.status_code == 200
    assert me.json()["must_change_password"] is False


# --- temporary passwords ----------------------------------------------------------------


async def test_an_invited_contact_must_change_the_temporary_password(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    invite = await client.post(
        f"/api/v1/clients/{world.client.id}/users",
        headers=world.staff.headers,
        json={"email": "new.contact@acme.example", "full_name": "New Contact"},
    )
    assert invite.status_code == 201, invite.text
    temporary = invite.json()["temporary_password"]

    signed = await sign_in(client, "new.contact@acme.example", temporary)
    assert signed.status_code == 200, signed.text
    tokens = signed.json()
    assert tokens["must_change_password"] is True
    access = bearer(tokens["access_token"])

    blocked = await client.get("/api/v1/service-categories", headers=access)
    assert_problem(blocked, 403, "password-change-required")
    me = await client.get("/api/v1/me", headers=access)
    assert me.status_code == 200
    assert me.json()["must_change_password"] is True

    assert (await change(client, tokens["access_token"], current=temporary)).status_code == 204
    renewed = (await refresh(client, tokens["refresh_token"])).json()
    assert renewed["must_change_password"] is False
    access = bearer(renewed["access_token"])
    assert (await client.get("/api/v1/service-categories", headers=access)).status_code == 200
    assert (await client.get("/api/v1/me", headers=access)).json()["must_change_password"] is False
    # The gate is gone, and the role's own limits remain.
    assert_problem(await client.get("/api/v1/clients", headers=access), 403, "forbidden")
    assert_problem(await sign_in(client, "new.contact@acme.example", temporary), 401)


@pytest.mark.parametrize("role", ["client", "staff"])
async def test_a_temporary_password_opens_only_me_password_and_logout(
    client: AsyncClient, factory: Factory, app: Any, role: str
) -> None:
    tenant = await factory.tenant()
    company = await factory.client(tenant)
    person = await factory.user(
        tenant, client=company if role == "client" else None, must_change_password=True
    )
    operations = authenticated_operations(app)
    gated = [op for op in operations if op[2] not in TEMPORARY_PASSWORD_OPERATIONS]
    assert len(gated) >= 10  # the tenancy endpoints at least
    assert {op[2] for op in operations} >= TEMPORARY_PASSWORD_OPERATIONS
    for method, path, operation_id in gated:
        url = fill_path(path)
        body: dict[str, Any] | None = {} if method in {"POST", "PUT", "PATCH"} else None
        response = await client.request(method, url, headers=person.headers, json=body)
        assert response.status_code == 403, f"{operation_id} {method} {url}: {response.text}"
        assert_problem(response, 403, "password-change-required")

    me = await client.get("/api/v1/me", headers=person.headers)
    assert me.status_code == 200
    tokens = await factory.sign_in(person.user.email)
    logout = await client.post(
        "/api/v1/auth/logout",
        headers=person.headers,
        json={"refresh_token": tokens["refresh_token"]},
    )
    assert logout.status_code == 204, logout.text
    assert (await change(client, person.token)).status_code == 204
    stored = await fetch(factory, User, person.id)
    assert stored.must_change_password is False


async def test_the_gate_is_on_the_user_not_on_the_token(
    client: AsyncClient, factory: Factory
) -> None:
    """A token minted before staff reset the password is held at the gate as well."""
    world = await factory.world()
    await update_row(factory, User, world.contact.id, must_change_password=True)
    response = await client.get("/api/v1/service-categories", headers=world.contact.headers)
    assert_problem(response, 403, "password-change-required")


async def assert_password_unchanged(factory: Factory, person: Person) -> None:
    stored = await fetch(factory, User, person.id)
    assert stored.password_hash == person.user.password_hash
    assert stored.token_version == person.user.token_version
