"""The links of password reset and invitation, end to end: asked for through the API, mailed
by the outbox to a real SMTP server, followed from the message, and good exactly once."""

from __future__ import annotations

import re

from tests.factories import assert_problem
from tests.notifications.conftest import PUBLIC_URL, Mail
from tests.notifications.smtp_server import parts

API = "/api/v1"
NEW_PASSWORD = "a brand new passphrase 2026"


def link_token(text: str, path: str) -> str:
    found = re.search(re.escape(f"{PUBLIC_URL}{path}?token=") + r"([A-Za-z0-9_\-%.~]+)", text)
    assert found, f"no {path} link in:\n{text}"
    return found.group(1)


async def sign_in(mail: Mail, email: str, password: str) -> int:
    response = await mail.http.post(
        f"{API}/auth/token", data={"username": email, "password": password}
    )
    return response.status_code


async def test_a_reset_link_arrives_by_email_and_works_once(mail: Mail) -> None:
    world = await mail.factory.world("Bright IT")
    email = world.contact.user.email
    asked = await mail.http.post(f"{API}/auth/password-reset", json={"email": email})
    assert asked.status_code == 202
    unknown = await mail.http.post(
        f"{API}/auth/password-reset", json={"email": "nobody@nowhere.example"}
    )
    assert unknown.status_code == 202

    assert await mail.send() == {"sent": 1}
    (message,) = mail.mailbox.to(email)
    assert message["X-Billing-Kind"] == "password_reset"
    text, html = parts(message)
    token = link_token(text, "/reset-password")
    assert token in html

    body = {"token": token, "new_password": NEW_PASSWORD}
    confirmed = await mail.http.post(f"{API}/auth/password-reset/confirm", json=body)
    assert confirmed.status_code == 204, confirmed.text
    assert await sign_in(mail, email, NEW_PASSWORD) == 200
    again = await mail.http.post(f"{API}/auth/password-reset/confirm", json=body)
    assert_problem(again, 422, "invalid-reset-token")
    # Nothing of the link is kept in the outbox once it has been sent.
    (row,) = [r for r in await mail.rows() if r.kind == "password_reset"]
    assert token not in (row.body_text or "") and token not in (row.body_html or "")


async def test_an_invitation_mails_a_sign_in_link_not_a_password(mail: Mail) -> None:
    world = await mail.factory.world("Bright IT")
    invited = await mail.http.post(
        f"{API}/clients/{world.client.id}/users",
        headers=world.staff.headers,
        json={"email": "dana@acme.example", "full_name": "Dana"},
    )
    assert invited.status_code == 201, invited.text
    temporary = invited.json()["temporary_password"]

    assert await mail.send() == {"sent": 1}
    (message,) = mail.mailbox.to("dana@acme.example")
    assert message["X-Billing-Kind"] == "invitation"
    text, html = parts(message)
    assert temporary not in text and temporary not in html
    token = link_token(text, "/accept-invitation")

    body = {"token": token, "new_password": NEW_PASSWORD}
    accepted = await mail.http.post(f"{API}/auth/password-reset/confirm", json=body)
    assert accepted.status_code == 204, accepted.text
    assert await sign_in(mail, "dana@acme.example", NEW_PASSWORD) == 200
    again = await mail.http.post(f"{API}/auth/password-reset/confirm", json=body)
    assert_problem(again, 422, "invalid-reset-token")
