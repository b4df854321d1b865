"""POST /auth/token: the OAuth2 password grant, its answers and what it records."""

from __future__ import annotations

from typing import Any

from httpx import AsyncClient, Response
from sqlalchemy import select

from app.core.config import Settings
from app.core.security import decode_access_token
from app.models import RefreshToken, ThrottleCounter, User
from tests.factories import PASSWORD, Factory, assert_problem, bearer, count_rows, fetch, update_row

TOKEN_URL = "/api/v1/auth/token"


async def sign_in(client: AsyncClient, username: str, password: str) -> Response:
    return await client.post(TOKEN_URL, data={"username": username, "password": password})


def without_request_id(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "request_id"}


async def test_sign_in_returns_a_token_pair(
    client: AsyncClient, factory: Factory, settings: Settings
) -> None:
    world = await factory.world()
    response = await sign_in(client, world.staff.user.email, PASSWORD)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) >= {
        "access_token",
        "token_type",
        "expires_in",
        "refresh_token",
        "must_change_password",
    }
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == settings.access_token_ttl_seconds
    assert body["must_change_password"] is False
    assert body["refresh_token"] != body["access_token"]
    claims = decode_access_token(settings, body["access_token"])
    assert claims.user_id == world.staff.id
    assert claims.tenant_id == world.tenant.id

    me = await client.get("/api/v1/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json()["id"] == str(world.staff.id)
    assert me.json()["role"] == "staff"
    assert me.json()["client_id"] is None


async def test_sign_in_records_the_session_and_last_login(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    assert (await fetch(factory, User, world.contact.id)).last_login_at is None
    response = await sign_in(client, world.contact.user.email, PASSWORD)
    assert response.status_code == 200, response.text
    assert (await fetch(factory, User, world.contact.id)).last_login_at is not None
    assert await count_rows(factory, RefreshToken, RefreshToken.user_id == world.contact.id) == 1
    # Only a hash of the refresh token is kept.
    refresh = response.json()["refresh_token"]
    async with factory.sessionmaker() as session:
        hashes = list((await session.execute(select(RefreshToken.token_hash))).scalars())
    assert refresh not in hashes


async def test_email_is_matched_case_insensitively_and_trimmed(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    typed = "  " + world.staff.user.email.upper() + " "
    response = await sign_in(client, typed, PASSWORD)
    assert response.status_code == 200, response.text


async def test_wrong_password_is_401_problem(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    response = await sign_in(client, world.staff.user.email, PASSWORD + "!")
    body = assert_problem(response, 401, "invalid-credentials")
    assert response.headers["www-authenticate"] == "Bearer"
    assert "access_token" not in body


async def test_the_password_is_case_sensitive(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    response = await sign_in(client, world.staff.user.email, PASSWORD.upper())
    assert_problem(response, 401, "invalid-credentials")


async def test_unknown_email_and_wrong_password_look_the_same(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    wrong = await sign_in(client, world.staff.user.email, "not the password at all")
    unknown = await sign_in(client, "nobody-here@example.com", "not the password at all")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.headers["content-type"] == unknown.headers["content-type"]
    assert without_request_id(wrong.json()) == without_request_id(unknown.json())


async def test_a_deactivated_user_cannot_sign_in(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    await update_row(factory, User, world.contact.id, is_active=False)
    inactive = await sign_in(client, world.contact.user.email, PASSWORD)
    unknown = await sign_in(client, "nobody-here@example.com", PASSWORD)
    assert_problem(inactive, 401, "invalid-credentials")
    # Nothing tells an attacker that the account exists but is disabled.
    assert without_request_id(inactive.json()) == without_request_id(unknown.json())
    assert await count_rows(factory, RefreshToken) == 0


async def test_a_failed_sign_in_is_counted_even_though_it_answers_an_error(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    await sign_in(client, world.staff.user.email, "wrong password here")
    # (account, address), account and address: three counters.
    assert await count_rows(factory, ThrottleCounter) == 3
    assert await count_rows(factory, RefreshToken) == 0


async def test_missing_fields_are_a_validation_problem(client: AsyncClient) -> None:
    response = await client.post(TOKEN_URL, data={"username": "someone@example.com"})
    body = assert_problem(response, 422, "validation-error")
    assert ["body", "password"] in [e["loc"] for e in body["errors"]]


async def test_json_instead_of_a_form_is_refused(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    response = await client.post(
        TOKEN_URL, json={"username": world.staff.user.email, "password": PASSWORD}
    )
    assert_problem(response, 422)


async def test_get_on_the_token_endpoint_is_405(client: AsyncClient) -> None:
    response = await client.get(TOKEN_URL)
    assert_problem(response, 405)
    assert "POST" in response.headers["allow"]


async def test_a_temporary_password_signs_in_with_the_flag_set(
    client: AsyncClient, factory: Factory
) -> None:
    tenant = await factory.tenant()
    company = await factory.client(tenant)
    contact = await factory.user(tenant, client=company, must_change_password=True)
    response = await sign_in(client, contact.user.email, PASSWORD)
    assert response.status_code == 200, response.text
    assert response.json()["must_change_password"] is True
