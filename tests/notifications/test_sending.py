"""Sending: retried with backoff when the server refuses, once when it accepts; the log when no
server is set; any number of senders at once, each message once; the accounts API."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

import pytest

from app.core.clock import FrozenClock, utcnow
from app.core.db import transaction
from app.models import User
from app.notifications.enqueue import enqueue_invitation, enqueue_password_reset
from app.notifications.render import public_link
from app.scheduler.runner import PaymentRunner
from tests.factories import fetch
from tests.notifications.conftest import PUBLIC_URL, Mail
from tests.notifications.smtp_server import parts
from tests.payments.helpers import billing_world, due_in, open_invoice

API = "/api/v1"


async def one_invoice_mail(mail: Mail) -> None:
    billing = await billing_world(mail.factory, mail.http)
    await open_invoice(mail.http, billing.staff, billing.client_id, billing.category)


async def test_a_server_that_refuses_then_accepts_gets_the_message_once(
    mail: Mail, clock: FrozenClock
) -> None:
    await one_invoice_mail(mail)
    mail.mailbox.refuse("451 4.3.0 try again later")

    assert await mail.send() == {"retrying": 1}
    assert mail.mailbox.received == []
    (row,) = await mail.rows()
    assert (row.status, row.attempt) == ("pending", 1)
    assert row.next_attempt_at == utcnow() + timedelta(minutes=1)
    assert row.last_error is not None and "451" in row.last_error
    assert await mail.send() == {}  # not due yet: backoff

    clock.advance(minutes=1)
    assert await mail.send() == {"sent": 1}
    clock.advance(days=1)
    assert await mail.send() == {}
    assert len(mail.mailbox.received) == 1
    (row,) = await mail.rows()
    assert (row.status, row.attempt, row.last_error) == ("sent", 2, None)


async def test_a_permanent_refusal_fails_at_once(mail: Mail) -> None:
    await one_invoice_mail(mail)
    mail.mailbox.refuse("550 5.1.1 no such mailbox")

    assert await mail.send() == {"failed": 1}
    (row,) = await mail.rows()
    assert (row.status, row.next_attempt_at) == ("failed", None)


async def test_an_unreachable_server_is_retried(
    mail: Mail, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mail.settings, "smtp_url", "smtp://127.0.0.1:1")
    await one_invoice_mail(mail)
    assert await mail.send() == {"retrying": 1}


async def test_with_no_smtp_server_the_message_goes_to_the_log(
    mail: Mail, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(mail.settings, "smtp_url", None)
    await one_invoice_mail(mail)
    with caplog.at_level(logging.INFO, logger="billing_portal.email"):
        assert await mail.send() == {"sent": 1}
    (record,) = [r for r in caplog.records if r.name == "billing_portal.email"]
    assert record.__dict__["kind"] == "invoice_issued"
    assert f"{PUBLIC_URL}/invoices/" in record.__dict__["text"]
    assert mail.mailbox.received == []


async def test_senders_at_once_send_each_message_once(mail: Mail) -> None:
    billing = await billing_world(mail.factory, mail.http)
    for _ in range(5):
        await mail.factory.contact(billing.world.tenant, billing.world.client)
    for _ in range(4):
        await open_invoice(mail.http, billing.staff, billing.client_id, billing.category)

    reports = await asyncio.gather(*(mail.sender().run_once() for _ in range(4)))

    assert sum(r.outcomes["sent"] for r in reports) == 24  # 6 contacts x 4 invoices
    ids = [m["Message-ID"] for m in mail.mailbox.received]
    assert len(ids) == 24 and len(set(ids)) == 24
    assert {row.status for row in await mail.rows()} == {"sent"}


async def test_invitation_and_reset_carry_their_link_which_is_not_kept_after_sending(
    mail: Mail,
) -> None:
    world = await mail.factory.world("Bright IT")
    user = await fetch(mail.factory, User, world.contact.id)
    expires = utcnow() + timedelta(minutes=30)
    invite_link = public_link(mail.settings, "/accept-invitation?token=inv-secret-1")
    reset_link = public_link(mail.settings, "/reset-password?token=reset-secret-1")
    async with transaction(mail.sessionmaker) as session:
        await enqueue_invitation(
            session, mail.settings, user=user, link=invite_link, expires_at=expires, key="i1"
        )
        await enqueue_password_reset(
            session, mail.settings, user=user, link=reset_link, expires_at=expires, key="r1"
        )
        # The same key again: no second message.
        again = await enqueue_password_reset(
            session, mail.settings, user=user, link=reset_link, expires_at=expires, key="r1"
        )
        assert again is None

    assert await mail.send() == {"sent": 2}
    by_kind = {m["X-Billing-Kind"]: m for m in mail.mailbox.to(user.email)}
    for kind, link in (("invitation", invite_link), ("password_reset", reset_link)):
        text, html = parts(by_kind[kind])
        assert link in text and f'href="{link}"' in html
        assert "Email preferences" not in text  # account mail cannot be turned off
    assert all(row.body_text is None and row.body_html is None for row in await mail.rows())


async def test_staff_get_a_summary_after_a_run_that_settled_payments(
    mail: Mail, clock: FrozenClock, app: Any
) -> None:
    billing = await billing_world(mail.factory, mail.http, name="Bright IT")
    invoice = await open_invoice(
        mail.http, billing.staff, billing.client_id, billing.category, (1, 9_900)
    )
    created = await mail.http.post(
        f"{API}/scheduled-payments",
        json={
            "invoice_id": invoice["id"],
            "payment_method_id": billing.card["id"],
            "amount": 9_900,
            "scheduled_for": due_in(1),
        },
        headers=billing.contact.headers,
    )
    assert created.status_code == 201, created.text
    clock.advance(days=2)

    report = await PaymentRunner(mail.sessionmaker, app.state.gateway, mail.settings).run_once()

    assert report.succeeded == 1
    (summary,) = mail.mailbox.to(billing.staff.user.email)
    assert summary["X-Billing-Kind"] == "autopay_summary"
    assert "1 paid" in summary["Subject"]
    contact_kinds = sorted(m["X-Billing-Kind"] for m in mail.mailbox.to(billing.contact.user.email))
    assert "payment_receipt" in contact_kinds
    # The runner's own steps on the scheduled payment are not "changes" a client is told of.
    assert "scheduled_payment_changed" not in contact_kinds
