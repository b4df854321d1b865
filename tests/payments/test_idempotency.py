"""Idempotency-Key on pay now: the same key and body replays the first answer, a different
body is 422, a request still in flight is 409, and retries never pay twice."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import utcnow
from app.core.idempotency import request_fingerprint
from app.gateways.fake import FakeGateway
from app.models import IdempotencyRecord
from app.payments.reconcile import reconcile
from tests.factories import Factory, assert_problem, count_rows
from tests.payments.helpers import (
    INVOICES,
    Billing,
    add_method,
    assert_books_balance,
    gateway_latency,
    invoice_row,
    open_invoice,
    pay,
    payments_of,
    statuses,
)


async def test_the_same_key_and_body_replay_the_first_response(
    client: AsyncClient,
    billing: Billing,
    invoice: dict[str, Any],
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    first = await pay(client, billing.contact, invoice["id"], billing.card["id"], 4_000, key="k-1")
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers

    for _ in range(2):
        replay = await pay(
            client, billing.contact, invoice["id"], billing.card["id"], 4_000, key="k-1"
        )
        assert replay.status_code == 201
        assert replay.json() == first.json()
        assert replay.headers["idempotent-replayed"] == "true"

    assert len(await payments_of(sessionmaker, invoice["id"])) == 1
    assert gateway.charge_calls == 1
    assert (await invoice_row(sessionmaker, invoice["id"])).amount_paid == 4_000
    await assert_books_balance(sessionmaker, gateway, invoice["id"])


async def test_the_same_body_spelled_differently_is_the_same_request(
    client: AsyncClient, billing: Billing, invoice: dict[str, Any], gateway: FakeGateway
) -> None:
    url = f"{INVOICES}/{invoice['id']}/pay"
    headers = {**billing.contact.headers, "Idempotency-Key": "k-2"}
    headers["Content-Type"] = "application/json"
    first = await client.post(
        url,
        content=json.dumps({"payment_method_id": billing.card["id"], "amount": 500}),
        headers=headers,
    )
    assert first.status_code == 201, first.text
    again = await client.post(
        url,
        content=json.dumps({"amount": 500, "payment_method_id": billing.card["id"]}, indent=2),
        headers=headers,
    )
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert gateway.charge_calls == 1


async def test_the_same_key_with_a_different_request_is_422(
    client: AsyncClient,
    billing: Billing,
    invoice: dict[str, Any],
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    other = await open_invoice(client, billing.staff, billing.client_id, billing.category)
    first = await pay(client, billing.contact, invoice["id"], billing.card["id"], 1_000, key="k")
    assert first.status_code == 201, first.text

    different_amount = await pay(
        client, billing.contact, invoice["id"], billing.card["id"], 2_000, key="k"
    )
    different_invoice = await pay(
        client, billing.contact, other["id"], billing.card["id"], 1_000, key="k"
    )
    for response in (different_amount, different_invoice):
        body = assert_problem(response, 422, "idempotency-key-reused")
        assert body["errors"][0]["loc"] == ["header", "Idempotency-Key"]
        assert "idempotent-replayed" not in response.headers
    assert gateway.charge_calls == 1
    assert (await invoice_row(sessionmaker, invoice["id"])).amount_paid == 1_000
    assert (await invoice_row(sessionmaker, other["id"])).amount_paid == 0


async def test_a_decline_is_replayed_not_retried(
    client: AsyncClient,
    billing: Billing,
    invoice: dict[str, Any],
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    declining = await add_method(client, billing.contact, "tok_chargeDeclined")
    first = await pay(client, billing.contact, invoice["id"], declining["id"], key="d")
    assert_problem(first, 402, "payment-declined")
    replay = await pay(client, billing.contact, invoice["id"], declining["id"], key="d")
    assert_problem(replay, 402, "payment-declined")
    assert replay.json() == first.json()
    assert replay.headers["idempotent-replayed"] == "true"
    assert gateway.charge_calls == 1
    assert [p.status for p in await payments_of(sessionmaker, invoice["id"])] == ["failed"]


async def test_a_request_still_in_flight_is_409(
    client: AsyncClient,
    billing: Billing,
    invoice: dict[str, Any],
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Two requests with one key at once: one is paid, the other told to wait (409)."""
    with gateway_latency(gateway, 0.3):
        both = await asyncio.gather(
            *(
                pay(client, billing.contact, invoice["id"], billing.card["id"], 3_000, key="f")
                for _ in range(2)
            )
        )
    assert statuses(both) == [201, 409], [r.text for r in both]
    busy = next(r for r in both if r.status_code == 409)
    assert_problem(busy, 409, "idempotent-request-in-flight")
    assert gateway.charge_calls == 1
    assert len(await payments_of(sessionmaker, invoice["id"])) == 1
    # Once the first has finished, the same request replays its answer.
    done = next(r for r in both if r.status_code == 201)
    replay = await pay(client, billing.contact, invoice["id"], billing.card["id"], 3_000, key="f")
    assert (replay.status_code, replay.json()) == (201, done.json())
    assert gateway.charge_calls == 1


async def _in_flight_record(
    factory: Factory,
    billing: Billing,
    invoice: dict[str, Any],
    key: str,
    body: dict[str, Any],
    *,
    locked_for: timedelta,
    expires_in: timedelta = timedelta(hours=24),
) -> None:
    path = f"{INVOICES}/{invoice['id']}/pay"
    now = utcnow()
    await factory.add(
        IdempotencyRecord(
            actor=f"user:{billing.contact.id}",
            key=key,
            request_fingerprint=request_fingerprint("POST", path, json.dumps(body).encode()),
            locked_until=now + locked_for,
            expires_at=now + expires_in,
        )
    )


async def test_an_in_flight_record_makes_the_same_request_409(
    client: AsyncClient,
    factory: Factory,
    billing: Billing,
    invoice: dict[str, Any],
    gateway: FakeGateway,
) -> None:
    body = {"payment_method_id": billing.card["id"]}
    await _in_flight_record(
        factory, billing, invoice, "busy", body, locked_for=timedelta(minutes=1)
    )
    response = await pay(client, billing.contact, invoice["id"], billing.card["id"], key="busy")
    assert_problem(response, 409, "idempotent-request-in-flight")
    # ... and a different request with that key is still a misuse of the key.
    other = await pay(client, billing.contact, invoice["id"], billing.card["id"], 5, key="busy")
    assert_problem(other, 422, "idempotency-key-reused")
    assert gateway.charge_calls == 0


async def test_a_request_that_died_in_flight_can_be_retried(
    client: AsyncClient,
    factory: Factory,
    billing: Billing,
    invoice: dict[str, Any],
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    body = {"payment_method_id": billing.card["id"]}
    await _in_flight_record(
        factory, billing, invoice, "dead", body, locked_for=timedelta(seconds=-1)
    )
    response = await pay(client, billing.contact, invoice["id"], billing.card["id"], key="dead")
    assert response.status_code == 201, response.text
    assert "idempotent-replayed" not in response.headers
    assert (await invoice_row(sessionmaker, invoice["id"])).status == "paid"
    assert await count_rows(factory, IdempotencyRecord) == 1


async def test_an_expired_key_is_a_new_key(
    client: AsyncClient,
    factory: Factory,
    billing: Billing,
    invoice: dict[str, Any],
    gateway: FakeGateway,
) -> None:
    stale_body = {"payment_method_id": billing.card["id"], "amount": 1}
    await _in_flight_record(
        factory,
        billing,
        invoice,
        "old",
        stale_body,
        locked_for=timedelta(seconds=-1),
        expires_in=timedelta(seconds=-1),
    )
    response = await pay(client, billing.contact, invoice["id"], billing.card["id"], 700, key="old")
    assert response.status_code == 201, response.text
    assert response.json()["amount"] == 700


async def test_keys_belong_to_the_caller(
    client: AsyncClient,
    factory: Factory,
    billing: Billing,
    invoice: dict[str, Any],
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """A colleague who happens to pick the same key makes a payment of their own."""
    colleague = await factory.contact(billing.world.tenant, billing.world.client)
    mine = await pay(client, billing.contact, invoice["id"], billing.card["id"], 1_000, key="same")
    theirs = await pay(client, colleague, invoice["id"], billing.card["id"], 1_000, key="same")
    assert (mine.status_code, theirs.status_code) == (201, 201), theirs.text
    assert "idempotent-replayed" not in theirs.headers
    assert mine.json()["id"] != theirs.json()["id"]
    assert gateway.charge_calls == 2
    assert (await invoice_row(sessionmaker, invoice["id"])).amount_paid == 2_000


@pytest.mark.parametrize("key", ["has space", "x" * 256, "tab\there", "ünïcode"])
async def test_a_malformed_key_is_refused(
    client: AsyncClient, billing: Billing, invoice: dict[str, Any], gateway: FakeGateway, key: str
) -> None:
    response = await client.post(
        f"{INVOICES}/{invoice['id']}/pay",
        json={"payment_method_id": billing.card["id"]},
        headers=[
            *((k.encode(), v.encode()) for k, v in billing.contact.headers.items()),
            (b"Idempotency-Key", key.encode()),  # raw bytes: UTF-8 is not allowed either
        ],
    )
    body = assert_problem(response, 422)
    assert body["errors"][0]["loc"] == ["header", "Idempotency-Key"]
    assert gateway.charge_calls == 0


async def test_a_payment_in_progress_answer_is_not_kept_under_the_key(
    client: AsyncClient,
    billing: Billing,
    invoice: dict[str, Any],
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """ "Another payment is being processed; retry once it has settled" must be retryable
    with the same key: once the other payment has settled, the retry is really run."""
    declining = await add_method(client, billing.contact, "tok_chargeDeclined")
    gateway.fail_next(mode="timeout")
    stuck = await pay(client, billing.contact, invoice["id"], declining["id"])
    assert_problem(stuck, 503, "gateway-unavailable")

    busy = await pay(client, billing.contact, invoice["id"], billing.card["id"], key="retry-me")
    assert_problem(busy, 409, "payment-in-progress")

    # The other payment settles (declined): the whole balance is free again.
    await reconcile(sessionmaker, gateway, older_than=timedelta(0))
    assert (await invoice_row(sessionmaker, invoice["id"])).amount_reserved == 0

    retry = await pay(client, billing.contact, invoice["id"], billing.card["id"], key="retry-me")
    assert retry.status_code == 201, retry.text
    assert "idempotent-replayed" not in retry.headers
    assert retry.json()["amount"] == 10_000
    assert (await invoice_row(sessionmaker, invoice["id"])).status == "paid"
    await assert_books_balance(sessionmaker, gateway, invoice["id"])


async def test_a_key_reused_after_it_expired_never_answers_with_another_payment(
    client: AsyncClient,
    billing: Billing,
    invoice: dict[str, Any],
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Past the 24 hours the key's record is gone, but the payment made with it remains:
    a different request with that key must not be answered with that old payment."""
    other = await open_invoice(client, billing.staff, billing.client_id, billing.category)
    first = await pay(client, billing.contact, invoice["id"], billing.card["id"], 1_000, key="ttl")
    assert first.status_code == 201, first.text
    async with sessionmaker() as session, session.begin():
        await session.execute(delete(IdempotencyRecord))  # what the purge does after 24 h

    reused = await pay(client, billing.contact, other["id"], billing.card["id"], 2_000, key="ttl")

    assert_problem(reused, 422, "idempotency-key-reused")
    assert await payments_of(sessionmaker, other["id"]) == []
    assert gateway.charge_calls == 1
    # The very same request, though, still finds its payment (and charges nothing more).
    async with sessionmaker() as session, session.begin():
        await session.execute(delete(IdempotencyRecord))
    same = await pay(client, billing.contact, invoice["id"], billing.card["id"], 1_000, key="ttl")
    assert (same.status_code, same.json()["id"]) == (201, first.json()["id"])
    assert len(gateway.charges) == 1
