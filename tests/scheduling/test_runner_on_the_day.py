"""The payment runner on the day a payment falls due (a frozen clock, never a sleep): one
charge through the money path, not a moment before the day starts in the tenant's zone, and
AutoPay's covered lines only."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import FrozenClock
from app.gateways.fake import FakeGateway
from app.scheduler.runner import PaymentRunner
from tests.factories import Factory
from tests.scheduling.helpers import (
    DUE,
    SCHEDULED,
    START,
    Scene,
    build_scene,
    event_types,
    invoice_row,
    payments_of,
    scheduled_row,
    scheduled_today,
)


async def test_a_due_payment_is_charged_once_through_the_money_path(
    scene: Scene,
    runner: PaymentRunner,
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    invoice_id, sp_id = await scheduled_today(scene, 10_000)

    report = await runner.run_once()

    assert (report.claimed, report.succeeded) == (1, 1)
    row = await scheduled_row(sessionmaker, sp_id)
    assert (row.status, row.attempts, row.lease_expires_at) == ("succeeded", 1, None)
    (payment,) = await payments_of(sessionmaker, sp_id)
    assert row.last_payment_id == payment.id
    assert (payment.status, payment.origin, payment.amount) == ("succeeded", "scheduled", 10_000)
    assert payment.gateway_idempotency_key == f"scheduled_{sp_id}_1"
    (charge,) = gateway.charges
    assert (charge.idempotency_key, charge.amount) == (payment.gateway_idempotency_key, 10_000)
    assert charge.reference == payment.gateway_charge_reference
    invoice = await invoice_row(sessionmaker, invoice_id)
    assert (invoice.status, invoice.amount_paid, invoice.amount_reserved) == ("paid", 10_000, 0)
    assert await event_types(sessionmaker, sp_id) == {
        "scheduled_payment.created": 1,
        "scheduled_payment.succeeded": 1,
    }
    assert (await event_types(sessionmaker, payment.id))["payment.succeeded"] == 1
    # The client sees it in the payment history and on the scheduled payment.
    got = (await scene.http.get(f"{SCHEDULED}/{sp_id}", headers=scene.contact)).json()
    assert (got["status"], got["attempts"], got["last_payment_id"]) == (
        "succeeded",
        1,
        str(payment.id),
    )
    history = (await scene.http.get("/api/v1/payments", headers=scene.contact)).json()["items"]
    assert [p["id"] for p in history] == [str(payment.id)]

    again = await runner.run_once()
    assert again.claimed == 0
    assert gateway.summary()["calls"] == 1


async def test_nothing_is_charged_before_its_day_starts_in_the_tenants_zone(
    factory: Factory,
    client: Any,
    runner: PaymentRunner,
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    with FrozenClock(START) as clock:
        scene = await build_scene(factory, client, timezone="America/New_York")
        invoice = await scene.invoice((scene.hosting, 5_000), due=date(2026, 3, 20))
        # One before the switch to daylight saving time (8 March), one after.
        winter = await scene.scheduled(invoice["id"], 1_000, date(2026, 3, 4))
        summer = await scene.scheduled(invoice["id"], 2_000, date(2026, 3, 10))

        clock.now = datetime(2026, 3, 4, 4, 59, 59, tzinfo=UTC)  # 23:59:59 on the 3rd, EST
        assert (await runner.run_once()).claimed == 0
        clock.advance(seconds=1)
        report = await runner.run_once()
        assert (report.claimed, report.succeeded) == (1, 1)
        assert (await scheduled_row(sessionmaker, winter["id"])).status == "succeeded"

        clock.now = datetime(2026, 3, 10, 3, 59, 59, tzinfo=UTC)  # 23:59:59 on the 9th, EDT
        assert (await runner.run_once()).claimed == 0
        clock.advance(seconds=1)
        assert (await runner.run_once()).succeeded == 1
        assert (await scheduled_row(sessionmaker, summer["id"])).status == "succeeded"
    assert sorted(c.amount for c in gateway.charges) == [1_000, 2_000]


async def test_autopay_end_to_end_pays_only_the_covered_lines_on_its_day(
    scene: Scene,
    runner: PaymentRunner,
    gateway: FakeGateway,
    clock: FrozenClock,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await scene.enable_autopay(categories=[scene.hosting], days=3)
    invoice = await scene.invoice((scene.hosting, 7_000), (scene.helpdesk, 3_000), due=DUE)
    (item,) = await scene.scheduled_list()

    clock.now = datetime.combine(DUE - timedelta(days=3), datetime.min.time(), UTC) - timedelta(
        seconds=1
    )
    assert (await runner.run_once()).claimed == 0
    clock.advance(seconds=1)
    assert (await runner.run_once()).succeeded == 1

    row = await scheduled_row(sessionmaker, item["id"])
    assert (row.status, row.origin) == ("succeeded", "autopay")
    paid = await invoice_row(sessionmaker, invoice["id"])
    assert (paid.status, paid.amount_paid, paid.balance) == ("open", 7_000, 3_000)
    assert [c.amount for c in gateway.charges] == [7_000]
