"""The runner's claims taken at one moment are reserved together and recorded together (group
commit, `app/core/group_commit.py`): a few statements for the group instead of a dozen per
payment, the same rows and events as one at a time, and a group that fails leaves each of its
claims to be done alone, never charged twice."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.gateways.fake import FakeGateway
from app.models import Event, Invoice, Payment
from app.payments.reconcile import reconcile
from app.payments.service import PaymentService
from app.scheduled_payments.repository import Claim
from app.scheduler.runner import PaymentRunner
from tests.disputes.helpers import dispute
from tests.perf.test_statements_per_request import counting
from tests.scheduling.helpers import (
    DUE,
    TODAY,
    Scene,
    build_scene,
    invoice_row,
    many_scheduled_today,
    payments_of,
    scheduled_row,
)

# A group of eight of one tenant: reserve (rows with disputes, invoices, methods, holds,
# payments, allocations, events, rows: 8) and record (payments, invoices locked, invoices paid,
# payments, allocations, events, rows locked, their events, rows: 9), against 16 each alone.
GROUP_OF_EIGHT = 17
# Reconciliation of six: what is pending (payments, refunds), then the settles' groups.
SIX_SETTLES = 9


async def process_together(runner: PaymentRunner, claims: list[Claim]) -> list[str]:
    """The claims started at the same moment, as the work queue starts a batch."""
    return list(await asyncio.gather(*(runner.process(claim) for claim in claims)))


async def paid_in_full(
    sessionmaker: async_sessionmaker[AsyncSession], gateway: FakeGateway, ids: list[str]
) -> None:
    """Each scheduled payment succeeded with exactly one payment and one charge, its invoice
    paid, and the events each payment makes, once each."""
    for sp_id in ids:
        row = await scheduled_row(sessionmaker, sp_id)
        assert (row.status, row.attempts, row.lease_expires_at) == ("succeeded", 1, None)
        (payment,) = await payments_of(sessionmaker, sp_id)
        assert (payment.status, payment.gateway_attempts) == ("succeeded", 1)
        assert payment.gateway_idempotency_key == f"scheduled_{sp_id}_1"
        assert row.last_payment_id == payment.id
        invoice = await invoice_row(sessionmaker, row.invoice_id)
        assert (invoice.status, invoice.amount_paid, invoice.amount_reserved) == (
            "paid",
            payment.amount,
            0,
        )
        async with sessionmaker() as session:
            subjects = [payment.id, row.id, invoice.id]
            events = (
                await session.execute(
                    select(Event.type, Event.data).where(Event.subject_id.in_(subjects))
                )
            ).all()
        types = Counter(t for t, _ in events)
        assert types == Counter(
            {
                "payment.pending": 1,
                "payment.succeeded": 1,
                "invoice.paid": 1,
                "scheduled_payment.created": 1,
                "scheduled_payment.succeeded": 1,
                "invoice.created": 1,
                "invoice.issued": 1,
            }
        ), types
        (shown,) = [data for t, data in events if t == "payment.succeeded"]
        assert shown["allocations"] == [
            {
                "invoice_id": str(invoice.id),
                "invoice_number": invoice.number,
                "amount": payment.amount,
            }
        ]
    keys = [charge.idempotency_key for charge in gateway.charges]
    assert len(keys) == len(set(keys)) == len(ids)


async def test_claims_taken_together_cost_a_few_statements_for_the_group(
    app: Any,
    scene: Scene,
    runner: PaymentRunner,
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    warm = await many_scheduled_today(scene, 2)
    assert await process_together(runner, await runner.claim(10)) == ["succeeded"] * 2
    ids = await many_scheduled_today(scene, 8)
    claims = await runner.claim(10)
    assert len(claims) == 8

    with counting(app.state.engine) as count:
        outcomes = await process_together(runner, claims)

    assert outcomes == ["succeeded"] * 8
    assert count.n <= GROUP_OF_EIGHT, "\n".join(s[:120] for s in count.statements)
    # One transaction to reserve the group, one to record it.
    assert count.checkouts == 2
    await paid_in_full(sessionmaker, gateway, warm + ids)


async def test_a_group_across_tenants_charges_each_tenants_payments_once(
    scene: Scene,
    runner: PaymentRunner,
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    other = await build_scene(scene.factory, scene.http, name="Other MSP")
    ids = await many_scheduled_today(scene, 3) + await many_scheduled_today(other, 3)
    claims = await runner.claim(10)
    assert {c.tenant_id for c in claims} == {scene.tenant.id, other.tenant.id}

    assert await process_together(runner, claims) == ["succeeded"] * 6

    await paid_in_full(sessionmaker, gateway, ids)


@pytest.mark.parametrize("step", ["reserve_many", "record_many"])
async def test_a_group_that_fails_leaves_each_claim_to_be_done_alone(
    scene: Scene,
    runner: PaymentRunner,
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
    step: str,
) -> None:
    """A group's transaction fails (a deadlock, a lost connection): it rolled back whole, so
    each claim is reserved, or its outcome recorded, alone; the gateway is not asked twice."""
    ids = await many_scheduled_today(scene, 4)
    claims = await runner.claim(10)
    real = getattr(PaymentService, step)
    failures = []

    async def fail_once(self: PaymentService, session: AsyncSession, *args: Any) -> Any:
        result = await real(self, session, *args)
        if not failures:
            failures.append(step)
            await session.flush()  # the group's writes were sent, then the transaction fails
            raise ConnectionResetError("the group's connection was lost")
        return result

    monkeypatch.setattr(PaymentService, step, fail_once)

    assert await process_together(runner, claims) == ["succeeded"] * 4

    assert failures == [step]
    assert gateway.summary()["calls"] == 4
    await paid_in_full(sessionmaker, gateway, ids)


async def test_a_group_with_claims_that_cannot_be_charged_does_the_rest(
    scene: Scene,
    runner: PaymentRunner,
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Plain claims are reserved together; a disputed invoice, an invoice voided behind the
    runner's back and a declined card are each handled as they would be alone."""
    plain = await many_scheduled_today(scene, 2)
    disputed = await scene.invoice((scene.hosting, 3_000), due=DUE)
    held = (await scene.scheduled(disputed["id"], 3_000, TODAY))["id"]
    voided = await scene.invoice((scene.hosting, 4_000), due=DUE)
    canceled = (await scene.scheduled(voided["id"], 4_000, TODAY))["id"]
    async with sessionmaker() as session, session.begin():
        stmt = update(Invoice).where(Invoice.id == uuid.UUID(voided["id"]))
        await session.execute(stmt.values(status="void"))
    poor = await scene.add_card("tok_chargeDeclined")
    owed = await scene.invoice((scene.hosting, 5_000), due=DUE)
    declined = (await scene.scheduled(owed["id"], 5_000, TODAY, method_id=poor["id"]))["id"]
    claims = await runner.claim(10)
    # Disputed once the runner holds it (before, the dispute would hold it at once).
    await dispute(scene, disputed["id"])
    by_id = {str(c.id): c for c in claims}
    order = [*plain, held, canceled, declined]

    outcomes = await process_together(runner, [by_id[i] for i in order])

    assert outcomes == ["succeeded", "succeeded", "held", "canceled", "retrying"]
    await paid_in_full(sessionmaker, gateway, plain)
    assert (await scheduled_row(sessionmaker, held)).status == "on_hold"
    assert (await scheduled_row(sessionmaker, canceled)).status == "canceled"
    row = await scheduled_row(sessionmaker, declined)
    assert (row.status, row.attempts, row.failure_code) == ("scheduled", 1, "card_declined")
    (payment,) = await payments_of(sessionmaker, declined)
    assert payment.status == "failed"
    assert (await invoice_row(sessionmaker, owed["id"])).amount_reserved == 0
    async with sessionmaker() as session:
        held_or_canceled = [uuid.UUID(held), uuid.UUID(canceled)]
        stmt = select(Payment.id).where(Payment.scheduled_payment_id.in_(held_or_canceled))
        assert (await session.execute(stmt)).first() is None
    assert gateway.summary()["calls"] == 3


async def test_settles_running_at_once_are_read_and_recorded_together(
    app: Any,
    scene: Scene,
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Reconciliation's settles meet in groups too: six pending payments settled with a few
    statements, each charged once (the gateway finds the charge its lost answer was about)."""
    invoices = [await scene.invoice((scene.hosting, 2_000 + n), due=DUE) for n in range(6)]
    gateway.fail_next(6, mode="lost_response")
    for invoice in invoices:
        assert (await scene.pay_now(invoice["id"])).status_code == 503
    assert gateway.summary()["charges"] == 6

    with counting(app.state.engine) as count:
        report = await reconcile(sessionmaker, gateway, older_than=timedelta(0))

    assert (report.payments_checked, report.payments_settled) == (6, 6)
    # Alone, each settle costs 8 statements (48); in groups, the lot costs 9.
    assert count.n <= SIX_SETTLES, "\n".join(s[:120] for s in count.statements)
    assert gateway.summary()["charges"] == 6
    for invoice in invoices:
        row = await invoice_row(sessionmaker, invoice["id"])
        assert (row.status, row.amount_reserved) == ("paid", 0)
