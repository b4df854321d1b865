"""Billing disputes: an open `billing_dispute` ticket about an invoice holds its scheduled and
AutoPay payments (`on_hold`, `disputed`); the runner skips them and the preview says so;
closing the ticket (the last one open about it) resumes them, a day now past being due at the
next pass, and they are paid. A support ticket holds nothing."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import FrozenClock
from app.gateways.fake import FakeGateway
from app.models import Ticket
from app.scheduler.runner import PaymentRunner
from tests.autopay.helpers import rule, set_rules
from tests.disputes.helpers import closed, dispute, open_ticket
from tests.factories import assert_problem
from tests.rescue.helpers import try_now
from tests.scheduling.helpers import (
    INVOICES,
    SCHEDULED,
    TODAY,
    Scene,
    event_types,
    invoice_row,
    scheduled_for_invoice,
)

DUE = TODAY + timedelta(days=4)


async def states(
    sessionmaker: async_sessionmaker[AsyncSession], invoice_id: str
) -> list[tuple[str, str, str | None]]:
    """(origin, status, hold_reason) of each of the invoice's scheduled payments, sorted."""
    rows = await scheduled_for_invoice(sessionmaker, invoice_id)
    return sorted((r.origin, r.status, r.hold_reason) for r in rows)


async def disputed_invoice(scene: Scene) -> dict[str, object]:
    """AutoPay on for hosting (paying on the due date) and an invoice with an AutoPay payment
    and a payment of the client's own, for today."""
    await set_rules(scene, rule(scene.card, scene.hosting))
    invoice = await scene.invoice((scene.hosting, 4_000), (scene.helpdesk, 1_000), due=DUE)
    await scene.scheduled(invoice["id"], 1_000, TODAY)
    return invoice


async def test_a_dispute_holds_the_invoices_payments_until_it_is_closed(
    scene: Scene,
    runner: PaymentRunner,
    gateway: FakeGateway,
    clock: FrozenClock,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    invoice = await disputed_invoice(scene)
    other = await scene.invoice((scene.hosting, 700), due=TODAY)

    ticket_id = await dispute(scene, str(invoice["id"]))

    held = [("autopay", "on_hold", "disputed"), ("manual", "on_hold", "disputed")]
    assert await states(sessionmaker, str(invoice["id"])) == held
    assert await states(sessionmaker, other["id"]) == [("autopay", "scheduled", None)]
    listed = await scene.scheduled_list(invoice_id=str(invoice["id"]))
    assert {(i["status"], i["hold_reason"]) for i in listed} == {("on_hold", "disputed")}
    item = (await scene.preview())[str(invoice["id"])]
    assert (item["state"], item["will_pay"]) == ("disputed", False)
    assert "dispute" in item["reason"]

    # The runner passes them by, on their day and after it.
    report = await runner.run_once()
    assert (report.claimed, report.succeeded) == (1, 1)  # the other invoice's
    clock.advance(days=6)
    assert (await runner.run_once()).claimed == 0
    assert (await invoice_row(sessionmaker, str(invoice["id"]))).amount_paid == 0

    await closed(scene, ticket_id)

    # Resumed: both days are past, so both are due at the next pass, and paid.
    assert await states(sessionmaker, str(invoice["id"])) == [
        ("autopay", "scheduled", None),
        ("manual", "scheduled", None),
    ]
    report = await runner.run_once()
    assert (report.claimed, report.succeeded) == (2, 2)
    assert (await invoice_row(sessionmaker, str(invoice["id"]))).status == "paid"
    assert sorted(c.amount for c in gateway.charges) == [700, 1_000, 4_000]
    for row in await scheduled_for_invoice(sessionmaker, str(invoice["id"])):
        assert (await event_types(sessionmaker, row.id))["scheduled_payment.updated"] == 2


async def test_with_two_disputes_closing_one_keeps_the_hold(
    scene: Scene, runner: PaymentRunner, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    invoice = await disputed_invoice(scene)
    first = await dispute(scene, str(invoice["id"]))
    second = await dispute(scene, str(invoice["id"]))

    await closed(scene, first)

    assert {s for _, s, _ in await states(sessionmaker, str(invoice["id"]))} == {"on_hold"}
    assert (await runner.run_once()).claimed == 0
    await closed(scene, second)
    assert {s for _, s, _ in await states(sessionmaker, str(invoice["id"]))} == {"scheduled"}


async def test_a_support_ticket_about_an_invoice_holds_nothing(
    scene: Scene, runner: PaymentRunner, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    invoice = await disputed_invoice(scene)
    response = await open_ticket(scene, str(invoice["id"]), kind="support")
    assert response.status_code == 201, response.text
    assert response.json()["kind"] == "support"

    assert {s for _, s, _ in await states(sessionmaker, str(invoice["id"]))} == {"scheduled"}
    assert (await scene.preview())[str(invoice["id"])]["state"] == "scheduled"
    assert (await runner.run_once()).succeeded == 1  # the client's own, due today


async def test_a_dispute_names_an_invoice_of_the_client(scene: Scene) -> None:
    assert_problem(await open_ticket(scene, None), 422)
    other = await scene.factory.client(scene.tenant, "Globex")
    theirs = await scene.http.post(
        INVOICES,
        json={
            "client_id": str(other.id),
            "currency": "USD",
            "due_date": DUE.isoformat(),
            "lines": [
                {
                    "description": "x",
                    "service_category_id": str(scene.hosting.id),
                    "quantity": 1,
                    "unit_amount": 5,
                }
            ],
        },
        headers=scene.staff,
    )
    assert theirs.status_code == 201, theirs.text
    assert (await open_ticket(scene, theirs.json()["id"])).status_code in (404, 422)


async def test_payments_made_while_disputed_start_on_hold(
    scene: Scene, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    invoice = await scene.invoice((scene.hosting, 3_000), due=DUE)
    await dispute(scene, invoice["id"])

    own = await scene.scheduled(invoice["id"], 500, TODAY)
    await set_rules(scene, rule(scene.card, scene.hosting))

    assert (own["status"], own["hold_reason"]) == ("on_hold", "disputed")
    assert sorted(await states(sessionmaker, invoice["id"])) == [
        ("autopay", "on_hold", "disputed"),
        ("manual", "on_hold", "disputed"),
    ]
    # Replanned while held, AutoPay's stays held.
    await set_rules(scene, rule(scene.card, scene.hosting, days=2))
    rows = await scheduled_for_invoice(sessionmaker, invoice["id"])
    assert [(r.status, r.scheduled_for) for r in rows if r.origin == "autopay"] == [
        ("on_hold", DUE - timedelta(days=2))
    ]


async def test_held_payments_may_be_changed_canceled_but_not_tried_now(
    scene: Scene,
    runner: PaymentRunner,
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    declining = await scene.add_card("tok_chargeDeclined")
    invoice = await scene.invoice((scene.helpdesk, 3_000), due=DUE)
    waiting = await scene.scheduled(invoice["id"], 2_000, TODAY, method_id=declining["id"])
    assert (await runner.run_once()).retrying == 1
    later = await scene.scheduled(invoice["id"], 1_000, DUE)
    await dispute(scene, invoice["id"])

    assert_problem(await try_now(scene, waiting["id"], scene.card["id"]), 409, "invoice-disputed")
    moved = await scene.http.patch(
        f"{SCHEDULED}/{later['id']}", json={"amount": 900}, headers=scene.contact
    )
    assert (moved.status_code, moved.json()["status"]) == (200, "on_hold")
    canceled = await scene.http.post(f"{SCHEDULED}/{later['id']}/cancel", headers=scene.contact)
    assert (canceled.status_code, canceled.json()["status"]) == (200, "canceled")
    assert gateway.summary()["calls"] == 1


async def test_the_runner_holds_a_payment_it_finds_disputed(
    scene: Scene,
    runner: PaymentRunner,
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """A dispute that came in after the payment was taken off the queue (written here behind
    the API's back): the runner holds it when it starts the attempt, giving the attempt back."""
    invoice = await scene.invoice((scene.helpdesk, 3_000), due=DUE)
    sp = await scene.scheduled(invoice["id"], 3_000, TODAY)
    await scene.factory.add(
        Ticket(
            tenant_id=scene.tenant.id,
            client_id=scene.client.id,
            number=99,
            subject="Disputed",
            description="Behind the API's back.",
            kind="billing_dispute",
            invoice_id=uuid.UUID(invoice["id"]),
        )
    )

    report = await runner.run_once()

    assert (report.claimed, report.held) == (1, 1)
    (row,) = await scheduled_for_invoice(sessionmaker, invoice["id"])
    assert (row.id.hex, row.status, row.hold_reason, row.attempts) == (
        sp["id"].replace("-", ""),
        "on_hold",
        "disputed",
        0,
    )
    assert gateway.summary()["calls"] == 0


async def test_voiding_a_disputed_invoice_cancels_its_held_payments(
    scene: Scene, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    invoice = await disputed_invoice(scene)
    await dispute(scene, str(invoice["id"]))

    voided = await scene.http.post(f"{INVOICES}/{invoice['id']}/void", headers=scene.staff)

    assert voided.status_code == 200, voided.text
    assert {s for _, s, _ in await states(sessionmaker, str(invoice["id"]))} == {"canceled"}
