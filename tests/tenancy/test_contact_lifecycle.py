"""Staff run a contact's account: a new temporary password (shown once, every session ended),
renaming, deactivating (sign-in refused, sessions ended at once) and reactivating."""

from __future__ import annotations

import uuid
from typing import Any

from httpx import AsyncClient
from sqlalchemy import select

from app.core.security import verify_password
from app.models import Event, User
from tests.factories import PASSWORD, Factory, World, assert_problem, bearer, fetch

ME = "/api/v1/me"


def user_url(world: World, user_id: Any = None, client_id: Any = None) -> str:
    return f"/api/v1/clients/{client_id or world.client.id}/users/{user_id or world.contact.id}"


async def events_of(factory: Factory, type_: str) -> list[Event]:
    async with factory.sessionmaker() as session:
        stmt = select(Event).where(Event.type == type_)
        return list((await session.execute(stmt)).scalars())


async def sign_in(client: AsyncClient, email: str, password: str = PASSWORD) -> Any:
    return await client.post("/api/v1/auth/token", data={"username": email, "password": password})


async def test_staff_reset_gives_a_temporary_password_once_and_ends_every_session(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    signed_in = await factory.sign_in(world.contact.user.email)
    response = await client.post(user_url(world) + "/reset-password", headers=world.staff.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    temporary = body["temporary_password"]
    assert body["must_change_password"] is True and body["client_id"] == str(world.client.id)
    stored = await fetch(factory, User, world.contact.id)
    assert temporary not in stored.password_hash and verify_password(
        temporary, stored.password_hash
    )
    # Every session ended: access tokens at once, refresh tokens too.
    assert (await client.get(ME, headers=world.contact.headers)).status_code == 401
    assert (await client.get(ME, headers=bearer(signed_in["access_token"]))).status_code == 401
    refreshed = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": signed_in["refresh_token"]}
    )
    assert_problem(refreshed, 401, "invalid-refresh-token")
    # The old password is gone; the temporary one signs in and must be changed first.
    assert_problem(await sign_in(client, world.contact.user.email), 401, "invalid-credentials")
    fresh = await sign_in(client, world.contact.user.email, temporary)
    assert fresh.status_code == 200 and fresh.json()["must_change_password"] is True
    listed = await client.get(
        f"/api/v1/clients/{world.client.id}/users", headers=world.staff.headers
    )
    assert all("temporary_password" not in u for u in listed.json()["items"])
    [event] = await events_of(factory, "user.password_reset")
    assert event.subject_id == world.contact.id and event.actor_id == world.staff.id
    assert temporary not in str(event.data) + str(event.details)


async def test_deactivation_refuses_sign_in_ends_sessions_and_reactivation_restores(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    signed_in = await factory.sign_in(world.contact.user.email)
    response = await client.patch(
        user_url(world), headers=world.staff.headers, json={"active": False}
    )
    assert response.status_code == 200, response.text
    assert response.json()["is_active"] is False
    assert (await client.get(ME, headers=world.contact.headers)).status_code == 401
    assert (await client.get(ME, headers=bearer(signed_in["access_token"]))).status_code == 401
    assert_problem(await sign_in(client, world.contact.user.email), 401, "invalid-credentials")
    [deactivated] = await events_of(factory, "user.deactivated")
    assert deactivated.subject_id == world.contact.id
    assert deactivated.client_id == world.client.id
    assert deactivated.data["is_active"] is False

    response = await client.patch(
        user_url(world), headers=world.staff.headers, json={"active": True}
    )
    assert response.json()["is_active"] is True
    assert (await sign_in(client, world.contact.user.email)).status_code == 200
    # Sessions ended stay ended: reactivation does not bring old tokens back.
    assert (await client.get(ME, headers=bearer(signed_in["access_token"]))).status_code == 401
    assert len(await events_of(factory, "user.reactivated")) == 1


async def test_renaming_records_user_updated_and_repeating_a_state_records_nothing(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    response = await client.patch(
        user_url(world), headers=world.staff.headers, json={"full_name": "  Dana Renamed "}
    )
    assert response.status_code == 200, response.text
    assert response.json()["full_name"] == "Dana Renamed"
    [updated] = await events_of(factory, "user.updated")
    assert updated.details == {"before": {"full_name": "Test Client", "active": True}}
    await client.patch(user_url(world), headers=world.staff.headers, json={"active": True})
    assert await events_of(factory, "user.reactivated") == []
    assert (await client.get(ME, headers=world.contact.headers)).status_code == 200


async def test_only_staff_and_only_their_clients_contacts(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    other = await factory.world("Other MSP")
    sibling = await factory.client(world.tenant, "Sibling Co")
    cases = [
        # A client user may not manage contacts, even themselves.
        (user_url(world), world.contact.headers, 403),
        # Another tenant's contact, through another tenant's client: 404.
        (user_url(other, other.contact.id, other.client.id), world.staff.headers, 404),
        # Another tenant's contact under one's own client: 404.
        (user_url(world, other.contact.id), world.staff.headers, 404),
        # A contact of the same tenant, but not of the client in the path: 404.
        (user_url(world, world.contact.id, sibling.id), world.staff.headers, 404),
        # Staff are not contacts.
        (user_url(world, world.staff.id), world.staff.headers, 404),
        (user_url(world, uuid.uuid4()), world.staff.headers, 404),
    ]
    for url, headers, status in cases:
        patched = await client.patch(url, headers=headers, json={"active": False})
        assert_problem(patched, status)
        reset = await client.post(url + "/reset-password", headers=headers)
        assert_problem(reset, status)
    assert (await fetch(factory, User, other.contact.id)).is_active is True
    assert (await client.get(ME, headers=other.contact.headers)).status_code == 200
    assert (await client.get(ME, headers=world.contact.headers)).status_code == 200


async def test_bad_patch_bodies_are_422_and_change_nothing(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    for body in (
        {"active": "no"},
        {"active": 0},
        {"full_name": ""},
        {"full_name": "   "},
        {"full_name": "x" * 201},
        {"email": "new@example.com"},
        {"role": "staff"},
    ):
        response = await client.patch(user_url(world), headers=world.staff.headers, json=body)
        assert_problem(response, 422)
    stored = await fetch(factory, User, world.contact.id)
    assert stored.is_active and stored.full_name == "Test Client" and stored.role == "client"
