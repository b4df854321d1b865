"""The right kinds to the right people, per trigger, received by a real SMTP server: both
parts present, links into BILLING_PUBLIC_URL, the tenant's name as sender, each message once."""

from __future__ import annotations

import uuid
from email.message import EmailMessage
from email.utils import parseaddr

from app.core.card_numbers import redact_card_numbers
from app.core.clock import FrozenClock
from app.models import PaymentMethod
from tests.factories import PASSWORD, Person, fetch, update_row
from tests.notifications.conftest import PUBLIC_URL, Mail
from tests.notifications.smtp_server import parts
from tests.payments.helpers import (
    add_method,
    billing_world,
    due_in,
    open_invoice,
    pay,
)

API = "/api/v1"


def assert_well_formed(message: EmailMessage, kind: str, sender_name: str, link: str) -> None:
    assert message["X-Billing-Kind"] == kind
    assert parseaddr(message["From"])[0] == sender_name
    text, html = parts(message)
    assert link in text
    assert f'href="{link}"' in html
    assert redact_card_numbers(text) == text and redact_card_numbers(html) == html


async def test_an_issued_invoice_mails_every_contact_of_its_client_and_no_one_else(
    mail: Mail,
) -> None:
    billing = await billing_world(mail.factory, mail.http, name="Bright IT")
    world = billing.world
    second: Person = await mail.factory.contact(world.tenant, world.client)
    other_client = await mail.factory.client(world.tenant, "Other Co")
    outsider = await mail.factory.contact(world.tenant, other_client)

    invoice = await open_invoice(
        mail.http, billing.staff, billing.client_id, billing.category, (1, 12_345)
    )

    assert await mail.send() == {"sent": 2}
    link = f"{PUBLIC_URL}/invoices/{invoice['id']}"
    for person in (world.contact, second):
        (message,) = mail.mailbox.to(person.user.email)
        assert_well_formed(message, "invoice_issued", "Bright IT", link)
        assert invoice["number"] in message["Subject"]
        assert "123.45" in parts(message)[0]
    assert mail.mailbox.to(outsider.user.email) == []
    assert mail.mailbox.to(world.staff.user.email) == []
    # The Message-ID is the outbox row's: stable, and each message is sent once.
    rows = await mail.rows()
    ids = {f"<{row.id}@billing.example.com>" for row in rows}
    assert {m["Message-ID"] for m in mail.mailbox.received} == ids
    assert await mail.send() == {}
    assert len(mail.mailbox.received) == 2


async def test_a_payment_mails_a_receipt_and_a_decline_mails_a_failure(mail: Mail) -> None:
    billing = await billing_world(mail.factory, mail.http, name="Bright IT")
    invoice = await open_invoice(
        mail.http, billing.staff, billing.client_id, billing.category, (1, 5_000)
    )
    paid = await pay(mail.http, billing.contact, invoice["id"], billing.card["id"])
    assert paid.status_code in (200, 201), paid.text
    declining = await add_method(mail.http, billing.contact, "tok_chargeDeclined")
    other = await open_invoice(
        mail.http, billing.staff, billing.client_id, billing.category, (1, 7_000)
    )
    declined = await pay(mail.http, billing.contact, other["id"], declining["id"])
    assert declined.status_code == 402, declined.text

    await mail.send()

    kinds = sorted(m["X-Billing-Kind"] for m in mail.mailbox.to(billing.contact.user.email))
    assert kinds == ["invoice_issued", "invoice_issued", "payment_failed", "payment_receipt"]
    by_kind = {m["X-Billing-Kind"]: m for m in mail.mailbox.received}
    receipt_link = f"{PUBLIC_URL}/payments/{paid.json()['id']}"
    assert_well_formed(by_kind["payment_receipt"], "payment_receipt", "Bright IT", receipt_link)
    failed_link = f"{PUBLIC_URL}/invoices/{other['id']}"
    assert_well_formed(by_kind["payment_failed"], "payment_failed", "Bright IT", failed_link)
    assert "70.00" in parts(by_kind["payment_failed"])[0]
    # Nothing secret in any message: card numbers (checked above), the gateway's token and
    # reference for the card, the card's fingerprint, a password, an access token.
    card = await fetch(mail.factory, PaymentMethod, uuid.UUID(billing.card["id"]))
    secrets = ("tok_", card.gateway_reference, card.fingerprint, PASSWORD, billing.contact.token)
    for message in mail.mailbox.received:
        text, html = parts(message)
        for secret in secrets:
            assert secret not in text and secret not in html and secret not in message["Subject"]


async def test_a_staff_reply_on_a_ticket_mails_the_contacts_and_a_client_reply_does_not(
    mail: Mail,
) -> None:
    world = await mail.factory.world("Bright IT")
    opened = await mail.http.post(
        f"{API}/tickets",
        json={"subject": "Printer", "description": "It jams."},
        headers=world.contact.headers,
    )
    assert opened.status_code == 201, opened.text
    ticket = opened.json()
    updates = f"{API}/tickets/{ticket['id']}/updates"
    mine = await mail.http.post(updates, json={"body": "Still."}, headers=world.contact.headers)
    assert mine.status_code == 201, mine.text
    assert await mail.send() == {}

    reply = await mail.http.post(updates, json={"body": "On it."}, headers=world.staff.headers)
    assert reply.status_code == 201, reply.text
    assert await mail.send() == {"sent": 1}

    (message,) = mail.mailbox.to(world.contact.user.email)
    link = f"{PUBLIC_URL}/tickets/{ticket['id']}"
    assert_well_formed(message, "ticket_updated", "Bright IT", link)
    assert f"#{ticket['number']}" in message["Subject"]


async def test_a_charge_n_days_away_and_a_card_about_to_expire_are_announced_once(
    mail: Mail, clock: FrozenClock
) -> None:
    billing = await billing_world(mail.factory, mail.http, name="Bright IT")
    invoice = await open_invoice(
        mail.http, billing.staff, billing.client_id, billing.category, (1, 9_900)
    )
    scheduled = await mail.http.post(
        f"{API}/scheduled-payments",
        json={
            "invoice_id": invoice["id"],
            "payment_method_id": billing.card["id"],
            "amount": 9_900,
            "scheduled_for": due_in(5),
        },
        headers=billing.contact.headers,
    )
    assert scheduled.status_code == 201, scheduled.text
    # The card ends with this month (31 March; today is 2 March): within 30 days.
    await update_row(
        mail.factory, PaymentMethod, uuid.UUID(billing.card["id"]), exp_month=3, exp_year=2026
    )
    later = await add_method(mail.http, billing.contact, "tok_mastercard")  # ends in May: not yet
    await update_row(
        mail.factory, PaymentMethod, uuid.UUID(later["id"]), exp_month=5, exp_year=2026
    )
    await mail.send()
    assert sorted(m["X-Billing-Kind"] for m in mail.mailbox.received) == [
        "card_expiring",
        "invoice_issued",
    ]

    clock.advance(days=2)  # the charge is 3 days away (BILLING_AUTOPAY_NOTICE_DAYS)
    assert await mail.send() == {"sent": 1}
    upcoming = mail.mailbox.received[-1]
    link = f"{PUBLIC_URL}/scheduled-payments/{scheduled.json()['id']}"
    assert_well_formed(upcoming, "autopay_upcoming", "Bright IT", link)
    assert "99.00" in upcoming["Subject"]
    expiring = next(m for m in mail.mailbox.received if m["X-Billing-Kind"] == "card_expiring")
    assert_well_formed(expiring, "card_expiring", "Bright IT", f"{PUBLIC_URL}/payment-methods")

    clock.advance(days=1)
    assert await mail.send() == {}  # each notice once


async def test_changing_a_scheduled_payment_tells_the_other_contacts_not_the_one_who_did_it(
    mail: Mail,
) -> None:
    billing = await billing_world(mail.factory, mail.http)
    colleague = await mail.factory.contact(billing.world.tenant, billing.world.client)
    invoice = await open_invoice(
        mail.http, billing.staff, billing.client_id, billing.category, (1, 9_900)
    )
    created = await mail.http.post(
        f"{API}/scheduled-payments",
        json={
            "invoice_id": invoice["id"],
            "payment_method_id": billing.card["id"],
            "amount": 9_900,
            "scheduled_for": due_in(20),
        },
        headers=billing.contact.headers,
    )
    assert created.status_code == 201, created.text
    canceled = await mail.http.post(
        f"{API}/scheduled-payments/{created.json()['id']}/cancel",
        headers=billing.contact.headers,
    )
    assert canceled.status_code == 200, canceled.text

    await mail.send()

    changed = [
        m for m in mail.mailbox.received if m["X-Billing-Kind"] == "scheduled_payment_changed"
    ]
    assert [m["To"] for m in changed] == [colleague.user.email]
    assert "canceled" in changed[0]["Subject"]
