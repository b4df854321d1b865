"""Self-service password reset: the same 202 for a known and an unknown email, a single-use,
30-minute link token kept only as its hash, every session ended, requests throttled per
(email, address) whether or not the email has an account."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import select

from app.auth import password_reset
from app.auth.messages import AccountMessage
from app.core.clock import FrozenClock, utcnow
from app.models import Event, PasswordResetToken
from tests.factories import PASSWORD, Factory, assert_problem, bearer, count_rows, stored_anywhere

RESET = "/api/v1/auth/password-reset"
CONFIRM = "/api/v1/auth/password-reset/confirm"
NEW = "a fresh passphrase of mine"


@pytest.fixture
def outbox(monkeypatch: pytest.MonkeyPatch) -> list[AccountMessage]:
    """The messages handed to the email hook (the notify outbox plugs in there)."""
    sent: list[AccountMessage] = []

    async def collect(_session: Any, _settings: Any, message: AccountMessage) -> None:
        sent.append(message)

    monkeypatch.setattr(password_reset, "enqueue_account_message", collect)
    return sent


async def sign_in(client: AsyncClient, email: str, password: str) -> Any:
    return await client.post("/api/v1/auth/token", data={"username": email, "password": password})


async def test_known_and_unknown_emails_answer_the_same(
    client: AsyncClient, factory: Factory, outbox: list[AccountMessage]
) -> None:
    world = await factory.world()
    known = await client.post(RESET, json={"email": world.contact.user.email.upper()})
    unknown = await client.post(RESET, json={"email": "nobody@nowhere.example"})
    assert known.status_code == unknown.status_code == 202
    assert known.content == unknown.content == b""
    assert set(known.headers) - {"x-request-id", "date"} == set(unknown.headers) - {
        "x-request-id",
        "date",
    }
    [message] = outbox
    assert message.kind == "password_reset" and message.user.id == world.contact.id
    assert message.expires_at - utcnow() <= timedelta(minutes=30)
    # Kept only as a hash.
    assert not await stored_anywhere(factory, message.token)
    assert await count_rows(factory, PasswordResetToken) == 1


async def test_a_token_works_once_and_ends_every_session(
    client: AsyncClient, factory: Factory, outbox: list[AccountMessage]
) -> None:
    world = await factory.world()
    signed_in = await factory.sign_in(world.contact.user.email)
    await client.post(RESET, json={"email": world.contact.user.email})
    token = outbox[0].token
    response = await client.post(CONFIRM, json={"token": token, "new_password": NEW})
    assert response.status_code == 204, response.text
    assert (
        await client.get("/api/v1/me", headers=bearer(signed_in["access_token"]))
    ).status_code == 401
    assert (await client.get("/api/v1/me", headers=world.contact.headers)).status_code == 401
    assert_problem(await sign_in(client, world.contact.user.email, PASSWORD), 401)
    assert (await sign_in(client, world.contact.user.email, NEW)).status_code == 200
    again = await client.post(
        CONFIRM, json={"token": token, "new_password": "yet another passphrase"}
    )
    assert_problem(again, 422, "invalid-reset-token")
    async with factory.sessionmaker() as session:
        [event] = (
            await session.execute(select(Event).where(Event.type == "user.password_reset"))
        ).scalars()
    assert event.details == {"by": "self_service"} and event.actor_id == world.contact.id


async def test_a_token_expires_after_30_minutes(
    client: AsyncClient, factory: Factory, outbox: list[AccountMessage]
) -> None:
    world = await factory.world()
    with FrozenClock(utcnow()) as clock:
        await client.post(RESET, json={"email": world.contact.user.email})
        clock.advance(minutes=30, seconds=1)
        response = await client.post(CONFIRM, json={"token": outbox[0].token, "new_password": NEW})
    assert_problem(response, 422, "invalid-reset-token")
    assert (await sign_in(client, world.contact.user.email, PASSWORD)).status_code == 200


async def test_a_newer_password_spends_older_links(
    client: AsyncClient, factory: Factory, outbox: list[AccountMessage]
) -> None:
    world = await factory.world()
    await client.post(RESET, json={"email": world.contact.user.email})
    await client.post(RESET, json={"email": world.contact.user.email})
    first, second = (m.token for m in outbox)
    assert (
        await client.post(CONFIRM, json={"token": second, "new_password": NEW})
    ).status_code == 204
    response = await client.post(
        CONFIRM, json={"token": first, "new_password": "other passphrase!"}
    )
    assert_problem(response, 422, "invalid-reset-token")


async def test_bad_tokens_and_passwords_are_422(
    client: AsyncClient, factory: Factory, outbox: list[AccountMessage]
) -> None:
    world = await factory.world()
    await client.post(RESET, json={"email": world.contact.user.email})
    token = outbox[0].token
    for body, slug in (
        ({"token": "prt_forged", "new_password": NEW}, "invalid-reset-token"),
        ({"token": token, "new_password": "short"}, "validation-error"),
        ({"token": token, "new_password": world.contact.user.email}, "validation-error"),
        ({"token": token}, "validation-error"),
        ({"token": "", "new_password": NEW}, "validation-error"),
    ):
        assert_problem(await client.post(CONFIRM, json=body), 422, slug)
    # The token survived the refused attempts.
    assert (
        await client.post(CONFIRM, json={"token": token, "new_password": NEW})
    ).status_code == 204


async def test_a_deactivated_account_gets_no_link(
    client: AsyncClient, factory: Factory, outbox: list[AccountMessage]
) -> None:
    world = await factory.world()
    await client.patch(
        f"/api/v1/clients/{world.client.id}/users/{world.contact.id}",
        headers=world.staff.headers,
        json={"active": False},
    )
    response = await client.post(RESET, json={"email": world.contact.user.email})
    assert response.status_code == 202
    assert outbox == []


async def test_requests_are_throttled_per_email_and_address_whether_or_not_it_exists(
    client: AsyncClient, factory: Factory, outbox: list[AccountMessage]
) -> None:
    world = await factory.world()
    for email in (world.contact.user.email, "nobody@nowhere.example"):
        for _ in range(password_reset.RESET_REQUESTS_PER_WINDOW):
            assert (await client.post(RESET, json={"email": email})).status_code == 202
        throttled = await client.post(RESET, json={"email": email})
        assert_problem(throttled, 429, "password-reset-throttled")
        assert int(throttled.headers["retry-after"]) > 0
    assert len(outbox) == password_reset.RESET_REQUESTS_PER_WINDOW
    # Another email from the same address is not held back.
    assert (await client.post(RESET, json={"email": world.staff.user.email})).status_code == 202


async def test_an_invitation_carries_a_single_use_link_to_set_a_password(
    client: AsyncClient, factory: Factory, outbox: list[AccountMessage]
) -> None:
    world = await factory.world()
    with FrozenClock(utcnow()) as clock:
        invited = await client.post(
            f"/api/v1/clients/{world.client.id}/users",
            headers=world.staff.headers,
            json={"email": "new.contact@acme.example", "full_name": "New Contact"},
        )
        assert invited.status_code == 201, invited.text
        [message] = outbox
        assert message.kind == "invitation" and str(message.user.id) == invited.json()["id"]
        assert "/accept-invitation?token=" in message.link(factory.settings)
        assert message.token not in invited.text
        assert not await stored_anywhere(factory, message.token)
        clock.advance(days=2)
        response = await client.post(CONFIRM, json={"token": message.token, "new_password": NEW})
        assert response.status_code == 204, response.text
    signed_in = await sign_in(client, "new.contact@acme.example", NEW)
    assert signed_in.status_code == 200 and signed_in.json()["must_change_password"] is False
    # The temporary password shown to staff no longer works; the link is spent.
    old = await sign_in(client, "new.contact@acme.example", invited.json()["temporary_password"])
    assert_problem(old, 401)
    again = await client.post(CONFIRM, json={"token": message.token, "new_password": "x" * 20})
    assert_problem(again, 422, "invalid-reset-token")


async def test_an_invitation_link_expires_after_3_days(
    client: AsyncClient, factory: Factory, outbox: list[AccountMessage]
) -> None:
    world = await factory.world()
    with FrozenClock(utcnow()) as clock:
        await client.post(
            f"/api/v1/clients/{world.client.id}/users",
            headers=world.staff.headers,
            json={"email": "late@acme.example", "full_name": "Late Reader"},
        )
        clock.advance(days=3, seconds=1)
        response = await client.post(CONFIRM, json={"token": outbox[0].token, "new_password": NEW})
    assert_problem(response, 422, "invalid-reset-token")
