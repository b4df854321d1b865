"""An invoice's scheduled payments, the client's own and AutoPay's, never add up to more than
its balance: creating one or raising its amount past that is 422 `scheduled-over-balance`."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.scheduler.runner import PaymentRunner
from tests.autopay.helpers import autopay_rows, rule, set_rules
from tests.factories import assert_problem
from tests.scheduling.helpers import SCHEDULED, TODAY, Scene, scheduled_for_invoice

DUE = TODAY + timedelta(days=9)
LATER = TODAY + timedelta(days=3)


async def test_creating_past_the_balance_is_refused_counting_autopays(
    scene: Scene, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    await set_rules(scene, rule(scene.card, scene.hosting))
    invoice = await scene.invoice((scene.hosting, 6_000), (scene.helpdesk, 4_000), due=DUE)
    (autopay,) = await autopay_rows(sessionmaker, invoice["id"])
    assert autopay.amount == 6_000

    body = assert_problem(
        await scene.schedule(invoice["id"], 4_001, LATER), 422, "scheduled-over-balance"
    )
    assert ["body", "amount"] in [e["loc"] for e in body["errors"]]
    assert "6000" in body["detail"]
    await scene.scheduled(invoice["id"], 3_000, LATER)
    assert_problem(await scene.schedule(invoice["id"], 1_001, LATER), 422, "scheduled-over-balance")
    await scene.scheduled(invoice["id"], 1_000, LATER)
    rows = await scheduled_for_invoice(sessionmaker, invoice["id"])
    assert sum(r.amount for r in rows) == 10_000


async def test_raising_an_amount_past_the_balance_is_refused(
    scene: Scene, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    invoice = await scene.invoice((scene.helpdesk, 10_000), due=DUE)
    first = await scene.scheduled(invoice["id"], 6_000, LATER)
    second = await scene.scheduled(invoice["id"], 4_000, LATER)

    for sp, amount in ((first, 6_001), (second, 4_001)):
        response = await scene.http.patch(
            f"{SCHEDULED}/{sp['id']}", json={"amount": amount}, headers=scene.contact
        )
        assert_problem(response, 422, "scheduled-over-balance")
    lower = await scene.http.patch(
        f"{SCHEDULED}/{first['id']}", json={"amount": 5_000}, headers=scene.contact
    )
    assert lower.status_code == 200, lower.text
    higher = await scene.http.patch(
        f"{SCHEDULED}/{second['id']}", json={"amount": 5_000}, headers=scene.contact
    )
    assert higher.status_code == 200, higher.text
    assert sorted(r.amount for r in await scheduled_for_invoice(sessionmaker, invoice["id"])) == [
        5_000,
        5_000,
    ]


async def test_what_is_finished_does_not_count_and_what_is_paid_lowers_the_balance(
    scene: Scene, runner: PaymentRunner, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    invoice = await scene.invoice((scene.helpdesk, 10_000), due=DUE)
    await scene.scheduled(invoice["id"], 2_500, TODAY)
    canceled = await scene.scheduled(invoice["id"], 7_500, LATER)
    assert (await runner.run_once()).succeeded == 1
    cancel = await scene.http.post(f"{SCHEDULED}/{canceled['id']}/cancel", headers=scene.contact)
    assert cancel.status_code == 200, cancel.text

    assert_problem(await scene.schedule(invoice["id"], 7_501, LATER), 422)
    await scene.scheduled(invoice["id"], 7_500, LATER)


async def test_autopay_schedules_only_what_the_clients_own_payments_leave(
    scene: Scene, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    invoice = await scene.invoice((scene.hosting, 10_000), due=DUE)
    await scene.scheduled(invoice["id"], 7_000, LATER)
    taken = await scene.invoice((scene.hosting, 800), due=DUE)
    await scene.scheduled(taken["id"], 800, LATER)

    await set_rules(scene, rule(scene.card, scene.hosting))

    (autopay,) = await autopay_rows(sessionmaker, invoice["id"])
    assert autopay.amount == 3_000
    assert await autopay_rows(sessionmaker, taken["id"]) == []
    item = (await scene.preview())[taken["id"]]
    assert (item["state"], item["will_pay"], item["covered_amount"]) == (
        "not_scheduled",
        False,
        800,
    )
    assert "already scheduled by other payments" in item["reason"]
    full = await scene.invoice((scene.hosting, 500), due=DUE)
    own = await scene.http.get(SCHEDULED, params={"invoice_id": full["id"]}, headers=scene.contact)
    assert [i["origin"] for i in own.json()["items"]] == ["autopay"]
    assert_problem(await scene.schedule(full["id"], 1, LATER), 422, "scheduled-over-balance")
