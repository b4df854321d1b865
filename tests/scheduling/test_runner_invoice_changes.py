"""The payment runner when things changed before the run: the invoice paid, voided (through
the API or behind its back), partly paid, or held by a payment in flight, or the payment
method gone. Each attempt ends as canceled, capped, deferred or failed, never charging twice."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import FrozenClock
from app.gateways.fake import FakeGateway
from app.models import Invoice, PaymentMethod
from app.scheduler.runner import PaymentRunner
from tests.scheduling.helpers import (
    DUE,
    INVOICES,
    TODAY,
    Scene,
    event_types,
    events_of_type,
    invoice_row,
    payments_of,
    scheduled_row,
    scheduled_today,
)


async def test_an_invoice_paid_meanwhile_cancels_the_payment_with_a_reason(
    scene: Scene,
    runner: PaymentRunner,
    gateway: FakeGateway,
    clock: FrozenClock,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    invoice = await scene.invoice((scene.hosting, 10_000), due=DUE)
    sp = await scene.scheduled(invoice["id"], 10_000, TODAY + timedelta(days=3))
    clock.advance(days=1)
    assert (await scene.pay_now(invoice["id"])).status_code == 201

    clock.advance(days=2)
    report = await runner.run_once()

    assert (report.claimed, report.canceled) == (1, 1)
    row = await scheduled_row(sessionmaker, sp["id"])
    assert (row.status, row.cancel_reason) == ("canceled", "the invoice was paid")
    assert await payments_of(sessionmaker, sp["id"]) == []
    assert gateway.summary()["calls"] == 1  # the pay-now only
    assert (await event_types(sessionmaker, sp["id"]))["scheduled_payment.canceled"] == 1
    (event,) = [
        e
        for e in await events_of_type(sessionmaker, "scheduled_payment.canceled")
        if str(e.subject_id) == sp["id"]
    ]
    assert event.details == {"reason": "the invoice was paid"}
    assert event.data["cancel_reason"] == "the invoice was paid"
    assert event.actor_kind == "system"


async def test_voiding_the_invoice_cancels_its_scheduled_payments(
    scene: Scene,
    runner: PaymentRunner,
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    invoice = await scene.invoice((scene.hosting, 2_000), due=DUE)
    sp = await scene.scheduled(invoice["id"], 2_000, TODAY)

    voided = await scene.http.post(f"{INVOICES}/{invoice['id']}/void", headers=scene.staff)

    assert voided.status_code == 200, voided.text
    row = await scheduled_row(sessionmaker, sp["id"])
    assert (row.status, row.cancel_reason) == ("canceled", "the invoice was voided")
    assert (await runner.run_once()).claimed == 0
    assert gateway.summary()["calls"] == 0


async def test_an_invoice_voided_behind_the_runners_back_is_canceled_at_run_time(
    scene: Scene,
    runner: PaymentRunner,
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    invoice_id, sp_id = await scheduled_today(scene, 2_000)
    # A path that does not run the void hook (a direct fix in the database, a PSA sync ...).
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(Invoice).where(Invoice.id == uuid.UUID(invoice_id)).values(status="void")
        )

    report = await runner.run_once()

    assert (report.claimed, report.canceled) == (1, 1)
    row = await scheduled_row(sessionmaker, sp_id)
    assert (row.status, row.cancel_reason) == ("canceled", "the invoice was voided")
    assert gateway.summary()["calls"] == 0


async def test_a_method_gone_behind_the_runners_back_fails_the_payment(
    scene: Scene,
    runner: PaymentRunner,
    gateway: FakeGateway,
    clock: FrozenClock,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    _, sp_id = await scheduled_today(scene, 2_000)
    # The API refuses to delete a method in use; a race or a direct fix could still do it.
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(PaymentMethod)
            .where(PaymentMethod.id == uuid.UUID(scene.card["id"]))
            .values(deleted_at=clock.now)
        )

    report = await runner.run_once()

    assert (report.claimed, report.failed) == (1, 1)
    row = await scheduled_row(sessionmaker, sp_id)
    assert (row.status, row.failure_code, row.lease_expires_at) == (
        "failed",
        "payment_method_unavailable",
        None,
    )
    assert (await event_types(sessionmaker, sp_id))["scheduled_payment.failed"] == 1
    clock.advance(days=1)
    assert (await runner.run_once()).claimed == 0
    assert gateway.summary()["calls"] == 0


async def test_a_partial_payment_meanwhile_caps_the_amount_at_run_time(
    scene: Scene,
    runner: PaymentRunner,
    gateway: FakeGateway,
    clock: FrozenClock,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    invoice = await scene.invoice((scene.hosting, 10_000), due=DUE)
    sp = await scene.scheduled(invoice["id"], 10_000, TODAY + timedelta(days=2))
    clock.advance(days=1)
    assert (await scene.pay_now(invoice["id"], 4_000)).status_code == 201

    clock.advance(days=1)
    assert (await runner.run_once()).succeeded == 1

    (payment,) = await payments_of(sessionmaker, sp["id"])
    assert payment.amount == 6_000
    assert sorted(c.amount for c in gateway.charges) == [4_000, 6_000]
    invoice_after = await invoice_row(sessionmaker, invoice["id"])
    assert (invoice_after.status, invoice_after.amount_paid) == ("paid", 10_000)


async def test_a_payment_in_flight_on_the_invoice_defers_the_attempt(
    scene: Scene,
    runner: PaymentRunner,
    gateway: FakeGateway,
    clock: FrozenClock,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    invoice_id, sp_id = await scheduled_today(scene, 10_000)
    gateway.fail_next(mode="timeout")
    pending = await scene.pay_now(invoice_id)  # its outcome unknown: it holds the balance
    assert pending.status_code == 503, pending.text

    report = await runner.run_once()

    assert (report.claimed, report.deferred) == (1, 1)
    row = await scheduled_row(sessionmaker, sp_id)
    assert (row.status, row.attempts) == ("scheduled", 0)  # not an attempt: nothing was tried
    assert row.next_attempt_at > clock.now
    assert await payments_of(sessionmaker, sp_id) == []
    assert gateway.summary()["calls"] == 1

    # Later the loop settles the pay-now (the gateway works again), and the scheduled
    # payment finds the invoice paid.
    clock.now = row.next_attempt_at
    report = await runner.run_once()
    assert report.reconciled == 1
    assert report.canceled == 1
    row = await scheduled_row(sessionmaker, sp_id)
    assert (row.status, row.cancel_reason) == ("canceled", "the invoice was paid")
    assert len(gateway.charges) == 1
