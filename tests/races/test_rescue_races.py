"""On PostgreSQL, rescuing a payment while AutoPay is replanned: a try-now or a change of a
waiting payment beside a PUT /autopay on the same invoices answers plainly, never with a
deadlock, and charges at most once."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.gateways.fake import FakeGateway
from app.scheduler.runner import PaymentRunner
from tests.autopay.helpers import autopay_rows, put_rules, rule, set_rules
from tests.payments.several import assert_allocated_books
from tests.rescue.helpers import try_now
from tests.scheduling.helpers import SCHEDULED, TODAY, Scene

pytestmark = pytest.mark.postgres_only


async def test_try_now_and_changes_beside_autopay_replanning(
    scene: Scene,
    lenient_client: AsyncClient,
    runner: PaymentRunner,
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    scene = replace(scene, http=lenient_client)  # an error is a 500 to count, not an exception
    declining = await scene.add_card("tok_chargeDeclined")
    await set_rules(scene, rule(declining, scene.hosting))
    invoices = [await scene.invoice((scene.hosting, 1_000 + n), due=TODAY) for n in range(12)]
    assert (await runner.run_once()).retrying == 12
    waiting = [str((await autopay_rows(sessionmaker, i["id"]))[0].id) for i in invoices]

    for n in range(0, 12, 4):
        a, b, c, d = waiting[n : n + 4]
        answers = await asyncio.gather(
            put_rules(scene, rule(declining, scene.hosting, days=n + 1)),
            try_now(scene, a, scene.card["id"]),
            scene.http.patch(f"{SCHEDULED}/{b}", json={"amount": 900}, headers=scene.contact),
            put_rules(scene, rule(declining, scene.hosting, days=n + 2)),
            try_now(scene, c, scene.card["id"]),
            scene.http.patch(f"{SCHEDULED}/{d}", json={"amount": 900}, headers=scene.contact),
            put_rules(scene, rule(declining, scene.hosting, days=n + 3)),
        )
        for answer in answers:
            assert answer.status_code in (200, 409, 412), answer.text

    await assert_allocated_books(sessionmaker, gateway, *(i["id"] for i in invoices))
