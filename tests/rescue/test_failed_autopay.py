"""The failed-AutoPay stories, through the API and the runner under a frozen clock: a card
declined, then the client adds another and it is paid at the next pass; hard declines never
retried; a bank debit returned for want of funds presented twice more, then failed; one
returned for a closed account never again."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import FrozenClock
from app.gateways.fake import FakeGateway
from app.scheduler.runner import PaymentRunner
from tests.autopay.helpers import autopay_rows, rule, set_rules
from tests.rescue.helpers import attempt_payments, autopay_due_today, keys
from tests.scheduling.helpers import Scene, invoice_row, scheduled_row


async def test_a_decline_then_a_new_card_is_paid_at_the_next_pass(
    scene: Scene,
    runner: PaymentRunner,
    gateway: FakeGateway,
    clock: FrozenClock,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    declining = await scene.add_card("tok_chargeDeclined")
    invoice_id, sp_id = await autopay_due_today(scene, sessionmaker, declining)

    assert (await runner.run_once()).retrying == 1
    row = await scheduled_row(sessionmaker, sp_id)
    assert (row.status, row.attempts, row.manual_attempts) == ("scheduled", 1, 0)
    assert row.failure_code == "card_declined"
    retry_at = row.next_attempt_at
    assert retry_at > clock.now  # the automatic retry is a day away ...

    clock.advance(minutes=5)
    new_card = await scene.add_card("tok_mastercard")

    # ... the new card brings it to the next pass, on the new card.
    row = await scheduled_row(sessionmaker, sp_id)
    assert (str(row.payment_method_id), row.status) == (new_card["id"], "scheduled")
    assert row.next_attempt_at <= clock.now < retry_at
    report = await runner.run_once()
    assert (report.claimed, report.succeeded) == (1, 1)
    row = await scheduled_row(sessionmaker, sp_id)
    # The decline was the one automatic attempt before; this pass is the second.
    assert (row.status, row.attempts, row.manual_attempts) == ("succeeded", 2, 0)
    declined, paid = await attempt_payments(sessionmaker, sp_id)
    assert keys([declined, paid], sp_id) == ["1", "2"]
    assert (declined.status, str(declined.payment_method_id)) == ("failed", declining["id"])
    assert (paid.status, str(paid.payment_method_id)) == ("succeeded", new_card["id"])
    assert [c.amount for c in gateway.charges] == [6_000]
    assert (await invoice_row(sessionmaker, invoice_id)).status == "paid"
    # Nothing is left for the retry's old time.
    clock.now = retry_at
    assert (await runner.run_once()).claimed == 0


@pytest.mark.parametrize(
    ("token", "code"),
    [
        ("tok_chargeDeclinedStolenCard", "stolen_card"),
        ("tok_chargeDeclinedLostCard", "lost_card"),
        ("tok_chargeDeclinedFraudulent", "fraudulent"),
    ],
)
async def test_a_hard_decline_is_never_retried(
    scene: Scene,
    runner: PaymentRunner,
    gateway: FakeGateway,
    clock: FrozenClock,
    sessionmaker: async_sessionmaker[AsyncSession],
    token: str,
    code: str,
) -> None:
    card = await scene.add_card(token)
    invoice_id, sp_id = await autopay_due_today(scene, sessionmaker, card)

    report = await runner.run_once()

    assert (report.failed, report.retrying) == (1, 0)
    row = await scheduled_row(sessionmaker, sp_id)
    assert (row.status, row.attempts, row.failure_code) == ("failed", 1, code)
    # Not on a later pass, not when another card is added, not when AutoPay is replanned
    # with the same card.
    await scene.add_card("tok_mastercard")
    await set_rules(scene, rule(card, scene.hosting, days=1))
    for _ in range(4):
        clock.advance(days=3)
        assert (await runner.run_once()).claimed == 0
    assert gateway.summary()["calls"] == 1
    assert (await scheduled_row(sessionmaker, sp_id)).status == "failed"
    assert await autopay_rows(sessionmaker, invoice_id) == []
    assert (await invoice_row(sessionmaker, invoice_id)).amount_paid == 0
    assert (await scene.preview())[invoice_id]["state"] == "failed"


async def test_after_a_hard_decline_autopay_on_another_method_pays(
    scene: Scene,
    runner: PaymentRunner,
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    stolen = await scene.add_card("tok_chargeDeclinedStolenCard")
    invoice_id, sp_id = await autopay_due_today(scene, sessionmaker, stolen)
    assert (await runner.run_once()).failed == 1

    await set_rules(scene, rule(scene.card, scene.hosting))

    (fresh,) = await autopay_rows(sessionmaker, invoice_id)
    assert (str(fresh.payment_method_id), fresh.attempts) == (scene.card["id"], 0)
    assert (await runner.run_once()).succeeded == 1
    assert (await scheduled_row(sessionmaker, sp_id)).status == "failed"  # kept as it was
    assert [c.amount for c in gateway.charges] == [6_000]


async def test_a_debit_returned_for_insufficient_funds_is_presented_twice_more_then_failed(
    scene: Scene,
    runner: PaymentRunner,
    gateway: FakeGateway,
    clock: FrozenClock,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    bank = await scene.add_card("tok_achInsufficientFunds")
    invoice_id, sp_id = await autopay_due_today(scene, sessionmaker, bank)

    assert (await runner.run_once()).retrying == 1
    clock.advance(days=1)
    assert (await runner.run_once()).retrying == 1  # presented again (1)
    clock.advance(days=3)
    report = await runner.run_once()  # presented again (2): the last time
    assert (report.claimed, report.failed, report.retrying) == (1, 1, 0)

    row = await scheduled_row(sessionmaker, sp_id)
    assert (row.status, row.attempts, row.failure_code) == ("failed", 3, "insufficient_funds")
    for _ in range(3):
        clock.advance(days=5)
        assert (await runner.run_once()).claimed == 0
    payments = await attempt_payments(sessionmaker, sp_id)
    assert keys(payments, sp_id) == ["1", "2", "3"]
    assert {p.status for p in payments} == {"failed"}
    assert gateway.summary()["calls"] == 3
    assert (await invoice_row(sessionmaker, invoice_id)).amount_reserved == 0


async def test_a_debit_returned_for_a_closed_account_is_never_presented_again(
    scene: Scene,
    runner: PaymentRunner,
    gateway: FakeGateway,
    clock: FrozenClock,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    bank = await scene.add_card("tok_achAccountClosed")
    _, sp_id = await autopay_due_today(scene, sessionmaker, bank)

    assert (await runner.run_once()).failed == 1
    for _ in range(3):
        clock.advance(days=3)
        assert (await runner.run_once()).claimed == 0

    row = await scheduled_row(sessionmaker, sp_id)
    assert (row.status, row.attempts, row.failure_code) == ("failed", 1, "account_closed")
    assert gateway.summary()["calls"] == 1
