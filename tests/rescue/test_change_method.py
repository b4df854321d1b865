"""PATCH /scheduled-payments/{id} with `payment_method_id`: a waiting payment takes another of
the client's methods, keeping its day; one waiting for a retry after a failed attempt is tried
on it at the runner's next pass; a failed one is rescued with a retry instead."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import FrozenClock
from app.gateways.fake import FakeGateway
from app.scheduled_payments.rules import start_of_day
from app.scheduler.runner import PaymentRunner
from tests.factories import assert_problem
from tests.rescue.helpers import attempt_payments, autopay_due_today, keys
from tests.scheduling.helpers import METHODS, SCHEDULED, TODAY, Scene, scheduled_row, sibling


async def patch(scene: Scene, sp_id: str, method_id: str, **headers: str) -> dict[str, object]:
    response = await scene.http.patch(
        f"{SCHEDULED}/{sp_id}",
        json={"payment_method_id": method_id},
        headers=scene.contact | headers,
    )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


async def test_a_waiting_payment_takes_another_method_and_keeps_its_day(
    scene: Scene, runner: PaymentRunner, gateway: FakeGateway, clock: FrozenClock
) -> None:
    invoice = await scene.invoice((scene.hosting, 2_000), due=TODAY + timedelta(days=9))
    later = TODAY + timedelta(days=4)
    sp = await scene.scheduled(invoice["id"], 2_000, later)
    bank = await scene.add_card("tok_ach")
    got = await scene.http.get(f"{SCHEDULED}/{sp['id']}", headers=scene.contact)

    changed = await patch(scene, sp["id"], bank["id"], **{"If-Match": got.headers["ETag"]})

    assert (changed["payment_method_id"], changed["scheduled_for"]) == (
        bank["id"],
        later.isoformat(),
    )
    assert changed["next_attempt_at"] == sp["next_attempt_at"]
    assert (await runner.run_once()).claimed == 0  # still on its day
    clock.now = start_of_day(later, "UTC")
    assert (await runner.run_once()).succeeded == 1
    (charge,) = gateway.charges
    assert charge.amount == 2_000


async def test_a_waiting_retry_on_another_method_is_paid_at_the_next_pass(
    scene: Scene,
    runner: PaymentRunner,
    gateway: FakeGateway,
    clock: FrozenClock,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    declining = await scene.add_card("tok_chargeDeclined")
    _, sp_id = await autopay_due_today(scene, sessionmaker, declining)
    assert (await runner.run_once()).retrying == 1
    retry_at = (await scheduled_row(sessionmaker, sp_id)).next_attempt_at
    clock.advance(minutes=30)

    await patch(scene, sp_id, scene.card["id"])

    row = await scheduled_row(sessionmaker, sp_id)
    assert row.next_attempt_at <= clock.now < retry_at
    assert (await runner.run_once()).succeeded == 1
    row = await scheduled_row(sessionmaker, sp_id)
    assert (row.status, row.attempts, row.manual_attempts) == ("succeeded", 2, 0)
    assert keys(await attempt_payments(sessionmaker, sp_id), sp_id) == ["1", "2"]
    assert [c.amount for c in gateway.charges] == [6_000]


async def test_only_the_clients_live_methods_and_only_while_it_waits(
    scene: Scene, runner: PaymentRunner, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    invoice = await scene.invoice((scene.hosting, 2_000), due=TODAY + timedelta(days=9))
    sp = await scene.scheduled(invoice["id"], 1_000, TODAY + timedelta(days=4))
    neighbour = await sibling(scene)
    gone = await scene.add_card("tok_amex")
    assert (
        await scene.http.delete(f"{METHODS}/{gone['id']}", headers=scene.contact)
    ).status_code == 204

    for method_id in (neighbour.card["id"], gone["id"], "00000000-0000-4000-8000-000000000000"):
        response = await scene.http.patch(
            f"{SCHEDULED}/{sp['id']}", json={"payment_method_id": method_id}, headers=scene.contact
        )
        body = assert_problem(response, 422)
        assert ["body", "payment_method_id"] in [e["loc"] for e in body["errors"]]
    assert str((await scheduled_row(sessionmaker, sp["id"])).payment_method_id) == scene.card["id"]

    stolen = await scene.add_card("tok_chargeDeclinedStolenCard")
    _, failed_id = await autopay_due_today(scene, sessionmaker, stolen, amount=500)
    assert (await runner.run_once()).failed == 1
    response = await scene.http.patch(
        f"{SCHEDULED}/{failed_id}",
        json={"payment_method_id": scene.card["id"]},
        headers=scene.contact,
    )
    assert_problem(response, 409)
