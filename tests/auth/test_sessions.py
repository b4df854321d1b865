"""Sessions end everywhere at once: an access token names its session (`sid`), and the
caller lookup reads that session in the same single query as the account, so logout, a
password change or reset, deactivation and a reused refresh token end the session's access
tokens on their next request, not at expiry."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from httpx import AsyncClient
from sqlalchemy import event, select

from app.models import AuthSession, RefreshToken
from tests.factories import PASSWORD, Factory, assert_problem, bearer

ME = "/api/v1/me"


async def status_of(client: AsyncClient, access_token: str) -> int:
    return (await client.get(ME, headers=bearer(access_token))).status_code


async def test_logout_ends_that_sessions_access_token_and_no_other(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    laptop = await factory.sign_in(world.contact.user.email)
    phone = await factory.sign_in(world.contact.user.email)
    response = await client.post(
        "/api/v1/auth/logout",
        headers=bearer(laptop["access_token"]),
        json={"refresh_token": laptop["refresh_token"]},
    )
    assert response.status_code == 204, response.text
    assert_problem(await client.get(ME, headers=bearer(laptop["access_token"])), 401)
    assert await status_of(client, phone["access_token"]) == 200
    refreshed = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": laptop["refresh_token"]}
    )
    assert_problem(refreshed, 401, "invalid-refresh-token")


async def test_a_reused_refresh_token_ends_its_sessions_access_tokens(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    first = await factory.sign_in(world.staff.user.email)
    other = await factory.sign_in(world.staff.user.email)
    second = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert second.status_code == 200, second.text
    again = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert_problem(again, 401, "invalid-refresh-token")
    assert await status_of(client, second.json()["access_token"]) == 401
    assert await status_of(client, first["access_token"]) == 401
    assert await status_of(client, other["access_token"]) == 200


async def test_a_password_change_ends_every_other_session_at_once(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    here = await factory.sign_in(world.contact.user.email)
    elsewhere = await factory.sign_in(world.contact.user.email)
    response = await client.post(
        "/api/v1/me/password",
        headers=bearer(here["access_token"]),
        json={"current_password": PASSWORD, "new_password": "a brand new passphrase"},
    )
    assert response.status_code == 204, response.text
    assert await status_of(client, elsewhere["access_token"]) == 401
    # The session that changed it lives on: its refresh token gives a working pair.
    refreshed = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": here["refresh_token"]}
    )
    assert refreshed.status_code == 200, refreshed.text
    assert await status_of(client, refreshed.json()["access_token"]) == 200
    gone = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": elsewhere["refresh_token"]}
    )
    assert_problem(gone, 401, "invalid-refresh-token")


async def test_an_ended_session_row_is_what_refuses_the_token(
    client: AsyncClient, factory: Factory
) -> None:
    """Nothing but the session row changes, and the token stops working: the check is live."""
    world = await factory.world()
    pair = await factory.sign_in(world.staff.user.email)
    assert await status_of(client, pair["access_token"]) == 200
    async with factory.sessionmaker() as session, session.begin():
        token = (await session.execute(select(RefreshToken))).scalars().all()
        family = next(t.family_id for t in token if t.user_id == world.staff.id)
        row = await session.get(AuthSession, family)
        assert row is not None
        row.ended_at = row.created_at
    assert await status_of(client, pair["access_token"]) == 401


async def test_a_token_naming_no_session_or_another_persons_is_refused(
    client: AsyncClient, factory: Factory
) -> None:
    from app.core.security import create_access_token

    world = await factory.world()
    stranger = await factory.sign_in(world.staff.user.email)
    async with factory.sessionmaker() as session:
        rows = (await session.execute(select(AuthSession))).scalars().all()
    staff_session = next(r for r in rows if r.user_id == world.staff.id and r.ended_at is None)
    # The contact's identity on the staff member's session: refused.
    forged = create_access_token(
        factory.settings,
        user_id=world.contact.id,
        tenant_id=world.tenant.id,
        token_version=world.contact.user.token_version,
        session_id=staff_session.id,
        client_id=world.client.id,
    )
    assert await status_of(client, forged) == 401
    assert await status_of(client, stranger["access_token"]) == 200


@contextmanager
def statements(engine: Any) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def test_resolving_the_caller_is_one_query(
    app: Any, client: AsyncClient, factory: Factory
) -> None:
    """The account, its session and its membership come back in ONE statement: a session
    check that cost a query of its own on every request would be paid by every request."""
    world = await factory.world()
    with statements(app.state.engine) as seen:
        response = await client.get("/api/v1/service-categories", headers=world.contact.headers)
    assert response.status_code == 200, response.text
    lookups = [s for s in seen if "auth_sessions" in s]
    assert len(lookups) == 1, seen
    assert "users" in lookups[0] and "memberships" in lookups[0]
    selects = [s for s in seen if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 2, seen  # the caller, then the categories
