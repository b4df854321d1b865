"""Refresh tokens: rotated on every use; a spent one coming back ends its whole family."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from httpx import AsyncClient, Response
from sqlalchemy import select

from app.core.clock import FrozenClock
from app.core.config import Settings
from app.core.security import sha256_hex
from app.models import RefreshToken, User
from tests.factories import Factory, assert_problem, bearer, update_row

REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"


async def refresh(client: AsyncClient, token: str) -> Response:
    return await client.post(REFRESH, json={"refresh_token": token})


async def row_for(factory: Factory, raw: str) -> RefreshToken:
    async with factory.sessionmaker() as session:
        stmt = select(RefreshToken).where(RefreshToken.token_hash == sha256_hex(raw))
        row = (await session.execute(stmt)).scalar_one()
    return row


async def signed_in(factory: Factory) -> tuple[Any, dict[str, Any]]:
    world = await factory.world()
    return world, await factory.sign_in(world.contact.user.email)


async def test_refresh_rotates_the_pair(client: AsyncClient, factory: Factory) -> None:
    world, first = await signed_in(factory)
    response = await refresh(client, first["refresh_token"])
    assert response.status_code == 200, response.text
    second = response.json()
    assert second["token_type"] == "bearer"
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["must_change_password"] is False
    me = await client.get("/api/v1/me", headers=bearer(second["access_token"]))
    assert me.status_code == 200
    assert me.json()["id"] == str(world.contact.id)

    old = await row_for(factory, first["refresh_token"])
    new = await row_for(factory, second["refresh_token"])
    assert old.spent_at is not None
    assert old.revoked_at is None
    assert new.family_id == old.family_id
    assert new.spent_at is None

    # And again: every use rotates.
    third = await refresh(client, second["refresh_token"])
    assert third.status_code == 200, third.text
    assert third.json()["refresh_token"] not in {first["refresh_token"], second["refresh_token"]}


async def test_reusing_a_spent_token_revokes_the_whole_family(
    client: AsyncClient, factory: Factory
) -> None:
    _world, first = await signed_in(factory)
    second = (await refresh(client, first["refresh_token"])).json()
    third = (await refresh(client, second["refresh_token"])).json()

    reuse = await refresh(client, first["refresh_token"])
    body = assert_problem(reuse, 401, "invalid-refresh-token")
    assert "already used" in body["detail"]

    # The newest token of the family, never used, is dead too.
    newest = await refresh(client, third["refresh_token"])
    assert_problem(newest, 401, "invalid-refresh-token")
    family = (await row_for(factory, first["refresh_token"])).family_id
    async with factory.sessionmaker() as session:
        rows = list(
            (
                await session.execute(select(RefreshToken).where(RefreshToken.family_id == family))
            ).scalars()
        )
    assert len(rows) == 3
    assert all(row.revoked_at is not None for row in rows)


async def test_reuse_ends_only_its_own_family(client: AsyncClient, factory: Factory) -> None:
    world, first = await signed_in(factory)
    elsewhere = await factory.sign_in(world.contact.user.email)
    await refresh(client, first["refresh_token"])
    assert (await refresh(client, first["refresh_token"])).status_code == 401
    other = await refresh(client, elsewhere["refresh_token"])
    assert other.status_code == 200, other.text


async def test_unknown_and_malformed_refresh_tokens(client: AsyncClient) -> None:
    assert_problem(await refresh(client, "rt_not-a-real-token"), 401, "invalid-refresh-token")
    assert_problem(await refresh(client, "x"), 401, "invalid-refresh-token")
    assert_problem(await client.post(REFRESH, json={"refresh_token": ""}), 422)
    assert_problem(await client.post(REFRESH, json={}), 422)
    assert_problem(await client.post(REFRESH, json={"refresh_token": "rt_" + "a" * 300}), 422)
    assert_problem(await client.post(REFRESH, json={"refresh_token": 12345}), 422)


async def test_an_access_token_is_not_a_refresh_token(
    client: AsyncClient, factory: Factory
) -> None:
    _world, tokens = await signed_in(factory)
    assert_problem(await refresh(client, tokens["access_token"][:200]), 401)


async def test_an_expired_refresh_token_is_refused(
    client: AsyncClient, factory: Factory, settings: Settings
) -> None:
    world = await factory.world()
    with FrozenClock(datetime.now(UTC)) as clock:
        tokens = await factory.sign_in(world.staff.user.email)
        clock.advance(seconds=settings.refresh_token_ttl_seconds + 1)
        response = await refresh(client, tokens["refresh_token"])
    assert_problem(response, 401, "invalid-refresh-token")


async def test_a_refresh_token_still_works_just_before_it_expires(
    client: AsyncClient, factory: Factory, settings: Settings
) -> None:
    world = await factory.world()
    with FrozenClock(datetime.now(UTC) - timedelta(days=29)) as clock:
        tokens = await factory.sign_in(world.staff.user.email)
        clock.advance(seconds=settings.refresh_token_ttl_seconds - 60)
        response = await refresh(client, tokens["refresh_token"])
    assert response.status_code == 200, response.text


async def test_a_deactivated_user_cannot_refresh(client: AsyncClient, factory: Factory) -> None:
    world, tokens = await signed_in(factory)
    await update_row(factory, User, world.contact.id, is_active=False)
    assert_problem(await refresh(client, tokens["refresh_token"]), 401, "invalid-refresh-token")


async def test_logout_revokes_the_session(client: AsyncClient, factory: Factory) -> None:
    _world, tokens = await signed_in(factory)
    rotated = (await refresh(client, tokens["refresh_token"])).json()
    response = await client.post(
        LOGOUT,
        headers=bearer(rotated["access_token"]),
        json={"refresh_token": rotated["refresh_token"]},
    )
    assert response.status_code == 204, response.text
    assert response.content == b""
    assert_problem(await refresh(client, rotated["refresh_token"]), 401, "invalid-refresh-token")
    row = await row_for(factory, rotated["refresh_token"])
    assert row.revoked_at is not None


async def test_logout_leaves_other_sessions_alone(client: AsyncClient, factory: Factory) -> None:
    world, tokens = await signed_in(factory)
    other = await factory.sign_in(world.contact.user.email)
    response = await client.post(
        LOGOUT,
        headers=bearer(tokens["access_token"]),
        json={"refresh_token": tokens["refresh_token"]},
    )
    assert response.status_code == 204
    assert (await refresh(client, other["refresh_token"])).status_code == 200


async def test_logout_cannot_end_someone_elses_session(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    victim = await factory.sign_in(world.staff.user.email)
    response = await client.post(
        LOGOUT, headers=world.contact.headers, json={"refresh_token": victim["refresh_token"]}
    )
    assert response.status_code == 204  # nothing to tell
    assert (await refresh(client, victim["refresh_token"])).status_code == 200


async def test_logout_with_an_unknown_token_is_quietly_204(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    response = await client.post(
        LOGOUT, headers=world.staff.headers, json={"refresh_token": "rt_unknown"}
    )
    assert response.status_code == 204


async def test_logout_needs_an_access_token(client: AsyncClient, factory: Factory) -> None:
    _world, tokens = await signed_in(factory)
    response = await client.post(LOGOUT, json={"refresh_token": tokens["refresh_token"]})
    assert_problem(response, 401)
    assert (await refresh(client, tokens["refresh_token"])).status_code == 200


async def test_logout_body_is_validated(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    assert_problem(await client.post(LOGOUT, headers=world.staff.headers, json={}), 422)
    assert_problem(
        await client.post(
            LOGOUT,
            headers={**world.staff.headers, "Content-Type": "application/json"},
            content=b"{not json",
        ),
        422,
    )
