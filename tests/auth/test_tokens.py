"""Access tokens: only an unexpired HS256 token we signed, for us, for a live user, works."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from httpx import AsyncClient
from jose import jwt

from app.core.clock import FrozenClock, utcnow
from app.core.config import Settings
from app.core.security import create_access_token
from app.models import User
from tests.factories import (
    PASSWORD,
    Factory,
    Person,
    assert_problem,
    bearer,
    factory_session_id,
    fetch,
    update_row,
)

ME = "/api/v1/me"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def claims_for(person: Person, settings: Settings, **overrides: Any) -> dict[str, Any]:
    now = int(utcnow().timestamp())
    claims: dict[str, Any] = {
        "sub": str(person.user.id),
        "tid": str(person.user.tenant_id),
        "ver": person.user.token_version,
        "sid": str(factory_session_id(person.user)),
        "cid": str(person.user.client_id) if person.user.client_id else None,
        "typ": "access",
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def sign(claims: dict[str, Any], key: str, algorithm: str = "HS256") -> str:
    return str(jwt.encode(claims, key, algorithm=algorithm))


async def assert_rejected(client: AsyncClient, token: str) -> None:
    response = await client.get(ME, headers=bearer(token))
    assert_problem(response, 401, "invalid-token")
    assert response.headers["www-authenticate"] == "Bearer"


async def test_a_well_formed_token_works(
    client: AsyncClient, factory: Factory, settings: Settings
) -> None:
    world = await factory.world()
    token = sign(claims_for(world.contact, settings), settings.signing_key)
    response = await client.get(ME, headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.json()["id"] == str(world.contact.id)


async def test_missing_or_malformed_authorization_is_401(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    for headers in (
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer not-a-jwt"},
        {"Authorization": "Bearer a.b.c"},
        {"Authorization": f"Basic {world.staff.token}"},
        {"Authorization": f"Token {world.staff.token}"},
        {"Authorization": "Bearer bpk_000000000000.nope"},
    ):
        response = await client.get(ME, headers=headers)
        assert_problem(response, 401)
        assert response.headers["www-authenticate"] == "Bearer", headers


async def test_an_expired_token_is_refused(
    client: AsyncClient, factory: Factory, settings: Settings
) -> None:
    world = await factory.world()
    start = datetime.now(UTC)
    with FrozenClock(start) as clock:
        token = factory.token_for(world.staff.user)
        ok = await client.get(ME, headers=bearer(token))
        assert ok.status_code == 200, ok.text
        clock.advance(seconds=settings.access_token_ttl_seconds - 5)
        still = await client.get(ME, headers=bearer(token))
        assert still.status_code == 200, still.text
        clock.advance(seconds=10)
        await assert_rejected(client, token)


async def test_a_token_that_expired_by_the_wall_clock_is_refused(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    with FrozenClock(datetime.now(UTC) - timedelta(hours=2)):
        token = factory.token_for(world.staff.user)
    await assert_rejected(client, token)


async def test_a_tampered_signature_is_refused(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    header, payload, signature = world.staff.token.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    await assert_rejected(client, f"{header}.{payload}.{flipped}")
    await assert_rejected(client, f"{header}.{payload}.")
    await assert_rejected(client, f"{header}.{payload}")


async def test_a_tampered_payload_is_refused(
    client: AsyncClient, factory: Factory, settings: Settings
) -> None:
    """A client contact rewrites `sub` to a staff member's id, keeping the signature."""
    world = await factory.world()
    header, _payload, signature = world.contact.token.split(".")
    forged = claims_for(world.staff, settings)
    payload = b64url(json.dumps(forged).encode())
    await assert_rejected(client, f"{header}.{payload}.{signature}")


async def test_alg_none_is_refused(
    client: AsyncClient, factory: Factory, settings: Settings
) -> None:
    world = await factory.world()
    payload = b64url(json.dumps(claims_for(world.staff, settings)).encode())
    for alg in ("none", "None", "NONE"):
        header = b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
        await assert_rejected(client, f"{header}.{payload}.")
    # Without a typ, and with a signature segment tacked on: still no.
    header = b64url(json.dumps({"alg": "none"}).encode())
    await assert_rejected(client, f"{header}.{payload}.")
    await assert_rejected(client, f"{header}.{payload}.{b64url(b'sig')}")


async def test_other_algorithms_and_keys_are_refused(
    client: AsyncClient, factory: Factory, settings: Settings
) -> None:
    world = await factory.world()
    claims = claims_for(world.staff, settings)
    await assert_rejected(client, sign(claims, settings.signing_key, "HS512"))
    await assert_rejected(client, sign(claims, settings.signing_key, "HS384"))
    await assert_rejected(client, sign(claims, "another-key-" + "y" * 40))


@pytest.mark.parametrize(
    ("override", "why"),
    [
        ({"aud": "someone-else"}, "wrong audience"),
        ({"aud": None}, "no audience"),
        ({"iss": "evil-issuer"}, "wrong issuer"),
        ({"iss": None}, "no issuer"),
        ({"typ": "refresh"}, "not an access token"),
        ({"typ": None}, "no token type"),
        ({"exp": None}, "no expiry"),
        ({"iat": None}, "no issued-at"),
        ({"sub": None}, "no subject"),
        ({"sub": "not-a-uuid"}, "subject is not a user id"),
        ({"tid": None}, "no tenant"),
        ({"ver": None}, "no token version"),
        ({"nbf": "__future__"}, "not valid yet"),
    ],
)
async def test_claims_are_checked(
    client: AsyncClient,
    factory: Factory,
    settings: Settings,
    override: dict[str, Any],
    why: str,
) -> None:
    world = await factory.world()
    if override.get("nbf") == "__future__":
        override = {"nbf": int(utcnow().timestamp()) + 3600}
    token = sign(claims_for(world.staff, settings, **override), settings.signing_key)
    response = await client.get(ME, headers=bearer(token))
    assert response.status_code == 401, f"{why}: {response.text}"
    assert_problem(response, 401, "invalid-token")


async def test_a_token_naming_another_tenant_is_refused(
    client: AsyncClient, factory: Factory, settings: Settings
) -> None:
    world = await factory.world()
    other = await factory.tenant("Other MSP")
    token = create_access_token(
        settings,
        user_id=world.staff.id,
        tenant_id=other.id,
        token_version=world.staff.user.token_version,
        session_id=uuid.uuid4(),
    )
    await assert_rejected(client, token)


async def test_a_token_of_a_deleted_user_is_refused(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    async with factory.sessionmaker() as session, session.begin():
        user = await session.get(User, world.contact.id)
        assert user is not None
        await session.delete(user)
    await assert_rejected(client, world.contact.token)


async def test_a_token_of_a_deactivated_user_is_refused(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    await update_row(factory, User, world.staff.id, is_active=False)
    await assert_rejected(client, world.staff.token)
    response = await client.get("/api/v1/clients", headers=world.staff.headers)
    assert_problem(response, 401)


async def test_a_token_from_before_a_token_version_bump_is_refused(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    bumped = world.staff.user.token_version + 1
    await update_row(factory, User, world.staff.id, token_version=bumped)
    await assert_rejected(client, world.staff.token)
    # One minted for the new version works.
    world.staff.user.token_version += 1
    fresh = factory.token_for(world.staff.user)
    assert (await client.get(ME, headers=bearer(fresh))).status_code == 200


async def test_tokens_are_rejected_after_a_password_change(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    tokens = await factory.sign_in(world.contact.user.email)
    older = world.contact.token
    change = await client.post(
        "/api/v1/me/password",
        headers=bearer(tokens["access_token"]),
        json={"current_password": PASSWORD, "new_password": "a brand new passphrase"},
    )
    assert change.status_code == 204, change.text
    await assert_rejected(client, older)
    await assert_rejected(client, tokens["access_token"])
    user = await fetch(factory, User, world.contact.id)
    assert user.token_version == world.contact.user.token_version + 1
