"""POST /scheduled-payments/{id}/retry: try now a payment that failed, or waits for its retry
after a failed attempt; counted apart from the automatic attempts; a decline is 402 and the
payment goes back to where it was; another method may be named; idempotent; 409 when it was
never tried, is finished, or nothing is owed; staff may try for the client."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import FrozenClock
from app.gateways.fake import FakeGateway
from app.scheduler.runner import PaymentRunner
from tests.factories import api_key_for, assert_problem, bearer
from tests.rescue.helpers import attempt_payments, autopay_due_today, keys, try_now
from tests.scheduling.helpers import (
    INVOICES,
    SCHEDULED,
    TODAY,
    Scene,
    build_scene,
    invoice_row,
    scheduled_row,
    sibling,
)


@pytest.fixture
async def waiting(
    scene: Scene,
    runner: PaymentRunner,
    clock: FrozenClock,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> tuple[str, str]:
    """AutoPay on a declining card, declined once: (invoice id, its payment, waiting for the
    automatic retry)."""
    declining = await scene.add_card("tok_chargeDeclined")
    invoice_id, sp_id = await autopay_due_today(scene, sessionmaker, declining)
    assert (await runner.run_once()).retrying == 1
    clock.advance(minutes=10)
    return invoice_id, sp_id


@pytest.fixture
async def failed(
    scene: Scene,
    runner: PaymentRunner,
    clock: FrozenClock,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> tuple[str, str]:
    """AutoPay on a stolen card: (invoice id, its payment, failed for good)."""
    stolen = await scene.add_card("tok_chargeDeclinedStolenCard")
    invoice_id, sp_id = await autopay_due_today(scene, sessionmaker, stolen)
    assert (await runner.run_once()).failed == 1
    clock.advance(minutes=10)
    return invoice_id, sp_id


async def test_a_failed_payment_is_paid_now_with_another_method(
    scene: Scene,
    failed: tuple[str, str],
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    invoice_id, sp_id = failed

    response = await try_now(scene, sp_id, scene.card["id"])

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["attempts"], body["manual_attempts"]) == ("succeeded", 1, 1)
    assert body["payment_method_id"] == scene.card["id"]  # the method stays the payment's
    row = await scheduled_row(sessionmaker, sp_id)
    assert (row.status, row.failure_code, row.resume_status) == ("succeeded", None, None)
    declined, paid = await attempt_payments(sessionmaker, sp_id)
    assert keys([declined, paid], sp_id) == ["1", "m1"]
    assert (paid.status, paid.origin, paid.amount) == ("succeeded", "scheduled", 6_000)
    assert [c.amount for c in gateway.charges] == [6_000]
    assert (await invoice_row(sessionmaker, invoice_id)).status == "paid"
    assert str(row.last_payment_id) == str(paid.id)


async def test_a_declined_try_goes_back_to_failed_and_is_402(
    scene: Scene, failed: tuple[str, str], sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    _, sp_id = failed
    before = await scheduled_row(sessionmaker, sp_id)

    body = assert_problem(await try_now(scene, sp_id), 402, "payment-declined")

    assert body["decline_code"] == "stolen_card"
    row = await scheduled_row(sessionmaker, sp_id)
    assert (row.status, row.attempts, row.manual_attempts) == ("failed", 1, 1)
    assert (row.resume_status, row.lease_expires_at) == (None, None)
    assert str(row.last_payment_id) == body["payment_id"]
    assert row.payment_method_id == before.payment_method_id


async def test_a_waiting_retry_tried_now_and_declined_keeps_its_automatic_schedule(
    scene: Scene,
    waiting: tuple[str, str],
    runner: PaymentRunner,
    gateway: FakeGateway,
    clock: FrozenClock,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    _, sp_id = waiting
    before = await scheduled_row(sessionmaker, sp_id)

    for n in range(1, 4):
        clock.advance(minutes=1)
        assert_problem(await try_now(scene, sp_id), 402)
        row = await scheduled_row(sessionmaker, sp_id)
        assert (row.status, row.attempts, row.manual_attempts) == ("scheduled", 1, n)
        assert row.next_attempt_at == before.next_attempt_at

    # The manual tries used up none of the automatic ones: retries after 1, 3 and 5 days.
    clock.now = before.next_attempt_at
    for days in (0, 3, 5):
        clock.advance(days=days)
        assert (await runner.run_once()).claimed == 1
    row = await scheduled_row(sessionmaker, sp_id)
    assert (row.status, row.attempts, row.manual_attempts) == ("failed", 4, 3)
    payments = await attempt_payments(sessionmaker, sp_id)
    assert keys(payments, sp_id) == ["1", "m1", "m2", "m3", "2", "3", "4"]
    assert gateway.charges == []


async def test_a_waiting_retry_tried_now_with_a_good_card_is_paid_and_not_retried(
    scene: Scene,
    waiting: tuple[str, str],
    runner: PaymentRunner,
    gateway: FakeGateway,
    clock: FrozenClock,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    invoice_id, sp_id = waiting

    response = await try_now(scene, sp_id, scene.card["id"])

    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["attempts"]) == ("succeeded", 1)
    clock.advance(days=1)
    assert (await runner.run_once()).claimed == 0
    assert [c.amount for c in gateway.charges] == [6_000]
    assert (await invoice_row(sessionmaker, invoice_id)).status == "paid"


async def test_only_a_payment_after_a_failed_attempt_can_be_tried_now(
    scene: Scene,
    runner: PaymentRunner,
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    later = await scene.invoice((scene.hosting, 900), due=TODAY)
    never_tried = await scene.scheduled(later["id"], 400, TODAY.replace(day=20))
    done = await scene.scheduled(later["id"], 500, TODAY)
    assert (await runner.run_once()).succeeded == 1
    other = await scene.invoice((scene.hosting, 100), due=TODAY)
    canceled = await scene.scheduled(other["id"], 100, TODAY.replace(day=20))
    cancel = await scene.http.post(f"{SCHEDULED}/{canceled['id']}/cancel", headers=scene.contact)
    assert cancel.status_code == 200, cancel.text

    for sp in (never_tried, done, canceled):
        before = await scheduled_row(sessionmaker, sp["id"])
        assert_problem(await try_now(scene, sp["id"], scene.card["id"]), 409)
        after = await scheduled_row(sessionmaker, sp["id"])
        assert (after.status, after.manual_attempts, after.version) == (
            before.status,
            0,
            before.version,
        )
    assert gateway.summary()["calls"] == 1


@pytest.mark.parametrize("how", ["paid", "void"])
async def test_nothing_owed_any_more_is_409(
    scene: Scene,
    failed: tuple[str, str],
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
    how: str,
) -> None:
    invoice_id, sp_id = failed
    if how == "paid":
        assert (await scene.pay_now(invoice_id)).status_code == 201
    else:
        voided = await scene.http.post(f"{INVOICES}/{invoice_id}/void", headers=scene.staff)
        assert voided.status_code == 200, voided.text
    calls = gateway.summary()["calls"]

    assert_problem(await try_now(scene, sp_id, scene.card["id"]), 409, "nothing-owed")

    row = await scheduled_row(sessionmaker, sp_id)
    assert (row.status, row.manual_attempts) == ("failed", 0)
    assert gateway.summary()["calls"] == calls


async def test_the_same_idempotency_key_replays_the_try(
    scene: Scene,
    waiting: tuple[str, str],
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    _, sp_id = waiting

    declined = await try_now(scene, sp_id, key="try-1")
    again = await try_now(scene, sp_id, key="try-1")
    assert (declined.status_code, again.status_code) == (402, 402)
    assert again.json()["payment_id"] == declined.json()["payment_id"]
    assert (await scheduled_row(sessionmaker, sp_id)).manual_attempts == 1

    paid = await try_now(scene, sp_id, scene.card["id"], key="try-2")
    replayed = await try_now(scene, sp_id, scene.card["id"], key="try-2")
    assert (paid.status_code, replayed.status_code) == (200, 200)
    assert replayed.json() == paid.json()
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert (await scheduled_row(sessionmaker, sp_id)).manual_attempts == 2
    assert gateway.summary()["calls"] == 3  # the automatic attempt and two tries


async def test_staff_try_for_the_client_and_no_one_else_can(
    scene: Scene,
    failed: tuple[str, str],
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    _, sp_id = failed
    neighbour = await sibling(scene)
    elsewhere = await build_scene(scene.factory, scene.http, name="Other MSP")
    _, secret = await api_key_for(scene.factory, scene.tenant)

    assert_problem(await try_now(scene, sp_id, headers=neighbour.contact), 404)
    assert_problem(await try_now(scene, sp_id, headers=elsewhere.staff), 404)
    assert_problem(await try_now(scene, sp_id, headers=bearer(secret)), 403)
    # Staff may name only the client's own methods.
    assert_problem(await try_now(scene, sp_id, neighbour.card["id"], headers=scene.staff), 422)
    assert (await scheduled_row(sessionmaker, sp_id)).manual_attempts == 0

    response = await try_now(scene, sp_id, scene.card["id"], headers=scene.staff)

    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["manual_attempts"]) == ("succeeded", 1)
    assert [c.amount for c in gateway.charges] == [6_000]
