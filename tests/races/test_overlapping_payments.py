"""On PostgreSQL, payments of several invoices, pay-now, the runner and AutoPay's replanning on
overlapping invoices at once: never an invoice overpaid (read from the database), never a
deadlock or an error, each payment charged once at the fake gateway."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from httpx import AsyncClient, Response
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.gateways.fake import FakeGateway
from app.scheduler.runner import PaymentRunner, RunReport
from tests.autopay.helpers import put_rules, rule
from tests.payments.helpers import PAYMENTS, gateway_latency
from tests.payments.several import assert_allocated_books
from tests.scheduling.helpers import INVOICES, TODAY, Scene, all_payments

pytestmark = pytest.mark.postgres_only
ROUNDS = 6


def pay_several(
    http: AsyncClient, scene: Scene, ids: list[str], **body: Any
) -> Awaitable[Response]:
    payload = {"payment_method_id": scene.card["id"], "invoice_ids": ids, **body}
    return http.post(PAYMENTS, json=payload, headers=scene.contact)


def pay_now(http: AsyncClient, scene: Scene, invoice_id: str, **body: Any) -> Awaitable[Response]:
    payload = {"payment_method_id": scene.card["id"], **body}
    return http.post(f"{INVOICES}/{invoice_id}/pay", json=payload, headers=scene.contact)


async def settle(outcomes: list[Any]) -> None:
    """Every request was answered plainly (paid, or refused: taken, or paid meanwhile) and
    every runner pass ran without an error."""
    for outcome in outcomes:
        if isinstance(outcome, RunReport):
            assert outcome.errored == 0, outcome
        else:
            assert outcome.status_code in (201, 409, 422), outcome.text


async def assert_charged_once(
    sessionmaker: async_sessionmaker[AsyncSession], gateway: FakeGateway
) -> None:
    payments = await all_payments(sessionmaker)
    succeeded = {p.gateway_idempotency_key: p for p in payments if p.status == "succeeded"}
    assert not [p for p in payments if p.status == "pending"]
    assert sorted(c.idempotency_key for c in gateway.charges) == sorted(succeeded)
    for charge in gateway.charges:
        assert charge.amount == succeeded[charge.idempotency_key].amount


async def test_several_invoice_payments_pay_now_and_the_runner_never_overpay(
    scene: Scene,
    lenient_client: AsyncClient,
    runner: PaymentRunner,
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    http = lenient_client
    scene = replace(scene, http=http)  # an error is a 500 to count, not an exception
    made = []
    for _ in range(ROUNDS):
        x, y, z = [
            await scene.invoice((scene.hosting, amount), due=TODAY + timedelta(days=days))
            for amount, days in ((3_000, 9), (2_000, 3), (1_000, 6))
        ]
        await scene.scheduled(x["id"], 3_000, TODAY)
        await scene.scheduled(z["id"], 1_000, TODAY)
        ids = [x["id"], y["id"], z["id"]]
        with gateway_latency(gateway, 0.01):
            outcomes = await asyncio.gather(
                pay_several(http, scene, ids),
                pay_several(http, scene, [z["id"], y["id"]], amount=1_500),
                pay_several(http, scene, [y["id"], x["id"]]),
                pay_now(http, scene, x["id"]),
                pay_now(http, scene, y["id"], amount=500),
                runner.run_once(),
                runner.run_once(),
            )
        await settle(list(outcomes))
        made += ids

    await assert_allocated_books(sessionmaker, gateway, *made)
    await runner.run_once()  # deferred attempts find their invoices paid or still owing
    await assert_allocated_books(sessionmaker, gateway, *made)
    await assert_charged_once(sessionmaker, gateway)


async def test_autopay_replanning_and_several_invoice_payments_at_once_do_not_deadlock(
    scene: Scene,
    lenient_client: AsyncClient,
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """AutoPay's replanning locks the client's open invoices while payments of several lock
    some of them: each waits its turn, whatever the invoices' due dates and ids."""
    http = lenient_client
    scene = replace(scene, http=http)  # an error is a 500 to count, not an exception
    made = [
        (await scene.invoice((scene.hosting, 10_000), due=TODAY + timedelta(days=20 - n)))["id"]
        for n in range(8)
    ]
    other = await scene.add_card("tok_mastercard")
    for n in range(ROUNDS):
        card = (scene.card, other)[n % 2]
        with gateway_latency(gateway, 0.005):
            outcomes = await asyncio.gather(
                put_rules(scene, rule(card, scene.hosting, days=n)),
                pay_several(http, scene, made[:4], amount=100),
                pay_several(http, scene, made[4:], amount=100),
                pay_several(http, scene, made[2:6], amount=100),
                pay_several(http, scene, made, amount=100),
                put_rules(scene, rule(card, scene.hosting, days=n + 1)),
            )
        for response in outcomes:
            assert response.status_code in (200, 201, 409), response.text

    await assert_allocated_books(sessionmaker, gateway, *made)
    await assert_charged_once(sessionmaker, gateway)
