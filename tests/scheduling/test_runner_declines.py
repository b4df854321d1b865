"""The payment runner when the card declines: soft declines retried on the configured days
and then failed, hard declines failed at once, and AutoPay's method changed between tries."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import FrozenClock
from app.gateways.fake import FakeGateway
from app.scheduler.runner import PaymentRunner
from tests.scheduling.helpers import (
    SCHEDULED,
    START,
    TODAY,
    Scene,
    event_types,
    events_of_type,
    invoice_row,
    payments_of,
    scheduled_row,
    scheduled_today,
)


async def test_soft_declines_are_retried_after_1_3_and_5_days_then_failed(
    scene: Scene,
    runner: PaymentRunner,
    gateway: FakeGateway,
    clock: FrozenClock,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    poor = await scene.add_card("tok_insufficientFunds")
    invoice_id, sp_id = await scheduled_today(scene, 4_000, method_id=poor["id"])
    attempted_at = []

    for attempt, wait in ((1, 1), (2, 3), (3, 5)):
        attempted_at.append(clock.now)
        report = await runner.run_once()
        assert (report.claimed, report.retrying) == (1, 1), attempt
        row = await scheduled_row(sessionmaker, sp_id)
        assert (row.status, row.attempts) == ("scheduled", attempt)
        assert row.next_attempt_at == clock.now + timedelta(days=wait)
        assert row.failure_code == "insufficient_funds"
        assert row.failure_reason == "Your card has insufficient funds."
        # Not a moment before its time.
        clock.advance(days=wait, seconds=-1)
        assert (await runner.run_once()).claimed == 0
        clock.advance(seconds=1)

    attempted_at.append(clock.now)
    report = await runner.run_once()
    assert (report.claimed, report.failed) == (1, 1)
    row = await scheduled_row(sessionmaker, sp_id)
    assert (row.status, row.attempts, row.lease_expires_at) == ("failed", 4, None)
    assert (row.failure_code, row.failure_reason) == (
        "insufficient_funds",
        "Your card has insufficient funds.",
    )
    assert [t - START for t in attempted_at] == [timedelta(days=d) for d in (0, 1, 4, 9)]

    clock.advance(days=30)
    assert (await runner.run_once()).claimed == 0
    summary = gateway.summary()
    assert (summary["calls"], summary["declines"], summary["charges"]) == (4, 4, 0)
    assert summary["distinct_keys"] == 4
    payments = await payments_of(sessionmaker, sp_id)
    assert [p.gateway_idempotency_key for p in payments] == [
        f"scheduled_{sp_id}_{n}" for n in (1, 2, 3, 4)
    ]
    assert {p.status for p in payments} == {"failed"}
    invoice = await invoice_row(sessionmaker, invoice_id)
    assert (invoice.amount_paid, invoice.amount_reserved, invoice.status) == (0, 0, "open")
    events = await event_types(sessionmaker, sp_id)
    assert events["scheduled_payment.retry_scheduled"] == 3
    assert events["scheduled_payment.failed"] == 1
    assert "scheduled_payment.succeeded" not in events
    failed_payment_events = Counter(
        e.subject_id for e in await events_of_type(sessionmaker, "payment.failed")
    )
    assert failed_payment_events == Counter({p.id: 1 for p in payments})
    api = (await scene.http.get(f"{SCHEDULED}/{sp_id}", headers=scene.contact)).json()
    assert (api["status"], api["attempts"], api["failure_reason"]) == (
        "failed",
        4,
        "Your card has insufficient funds.",
    )


async def test_the_retry_schedule_comes_from_the_setting(
    scene: Scene,
    runner_with: Callable[..., PaymentRunner],
    clock: FrozenClock,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    runner = runner_with(scheduler_retry_days=[2])
    declined = await scene.add_card("tok_chargeDeclined")
    _, sp_id = await scheduled_today(scene, 1_000, method_id=declined["id"])

    assert (await runner.run_once()).retrying == 1
    assert (await scheduled_row(sessionmaker, sp_id)).next_attempt_at == clock.now + timedelta(2)
    clock.advance(days=2)
    assert (await runner.run_once()).failed == 1
    row = await scheduled_row(sessionmaker, sp_id)
    assert (row.status, row.attempts, row.failure_code) == ("failed", 2, "card_declined")


@pytest.mark.parametrize(
    ("token", "code"),
    [("tok_chargeDeclinedStolenCard", "stolen_card"), ("tok_chargeDeclinedLostCard", "lost_card")],
)
async def test_a_hard_decline_fails_at_once_and_is_never_retried(
    scene: Scene,
    runner: PaymentRunner,
    gateway: FakeGateway,
    clock: FrozenClock,
    sessionmaker: async_sessionmaker[AsyncSession],
    token: str,
    code: str,
) -> None:
    card = await scene.add_card(token)
    invoice_id, sp_id = await scheduled_today(scene, 3_000, method_id=card["id"])

    report = await runner.run_once()

    assert (report.claimed, report.failed, report.retrying) == (1, 1, 0)
    row = await scheduled_row(sessionmaker, sp_id)
    assert (row.status, row.attempts) == ("failed", 1)
    assert (row.failure_code, row.failure_reason) == (code, "Your card was declined.")
    for _ in range(3):
        clock.advance(days=5)
        assert (await runner.run_once()).claimed == 0
    assert gateway.summary()["calls"] == 1
    (payment,) = await payments_of(sessionmaker, sp_id)
    assert (payment.status, payment.failure_code) == ("failed", code)
    assert (await event_types(sessionmaker, payment.id))["payment.failed"] == 1
    assert (await event_types(sessionmaker, sp_id))["scheduled_payment.failed"] == 1
    invoice = await invoice_row(sessionmaker, invoice_id)
    assert (invoice.amount_paid, invoice.amount_reserved) == (0, 0)


async def test_a_decline_then_autopay_moved_to_a_good_card_pays_on_the_retry(
    scene: Scene,
    runner: PaymentRunner,
    gateway: FakeGateway,
    clock: FrozenClock,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    declining = await scene.add_card("tok_chargeDeclined")
    await scene.enable_autopay(method_id=declining["id"], days=0)
    invoice = await scene.invoice((scene.hosting, 6_000), due=TODAY)
    (item,) = await scene.scheduled_list()

    assert (await runner.run_once()).retrying == 1
    await scene.enable_autopay(method_id=scene.card["id"], days=0)
    row = await scheduled_row(sessionmaker, item["id"])
    assert (row.status, str(row.payment_method_id)) == ("scheduled", scene.card["id"])

    clock.advance(days=1)
    report = await runner.run_once()

    assert (report.claimed, report.succeeded) == (1, 1)
    row = await scheduled_row(sessionmaker, item["id"])
    assert (row.status, row.attempts, row.failure_reason) == ("succeeded", 2, None)
    first, second = await payments_of(sessionmaker, item["id"])
    assert (first.status, str(first.payment_method_id)) == ("failed", declining["id"])
    assert (second.status, str(second.payment_method_id)) == ("succeeded", scene.card["id"])
    assert second.gateway_idempotency_key == f"scheduled_{item['id']}_2"
    assert [c.amount for c in gateway.charges] == [6_000]
    assert (await invoice_row(sessionmaker, invoice["id"])).status == "paid"


async def test_changing_autopay_keeps_a_waiting_retry_on_schedule_unless_its_method_changes(
    scene: Scene,
    runner: PaymentRunner,
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    declining = await scene.add_card("tok_chargeDeclined")
    await scene.enable_autopay(method_id=declining["id"], days=0)
    await scene.invoice((scene.hosting, 6_000), due=TODAY)
    (item,) = await scene.scheduled_list()
    assert (await runner.run_once()).retrying == 1
    retry_at = (await scheduled_row(sessionmaker, item["id"])).next_attempt_at

    # Another change (the days) does not pull the retry forward ...
    await scene.enable_autopay(method_id=declining["id"], days=2)
    row = await scheduled_row(sessionmaker, item["id"])
    assert (row.status, row.next_attempt_at) == ("scheduled", retry_at)
    assert (await runner.run_once()).claimed == 0

    # ... a new method does: the retry is on it at the next pass, not days later.
    await scene.enable_autopay(method_id=scene.card["id"], days=2)
    row = await scheduled_row(sessionmaker, item["id"])
    assert str(row.payment_method_id) == scene.card["id"]
    assert row.next_attempt_at < retry_at
    report = await runner.run_once()
    assert (report.claimed, report.succeeded) == (1, 1)
    assert gateway.charge_calls == 2
    (payment,) = [c for c in gateway.charges if c.status == "succeeded"]
    assert payment.amount == 6_000
