"""Refunds (staff only): full or partial, never more than was paid, through the gateway
once; the invoice owes the refunded amount again."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

import pytest
from httpx import AsyncClient
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.errors import problem_type_uri
from app.gateways.fake import FakeGateway
from app.models import IdempotencyRecord
from app.payments.reconcile import reconcile
from tests.factories import Factory, api_key_for, assert_problem, bearer
from tests.payments.helpers import (
    INVOICES,
    NO_SUCH_ID,
    PAYMENTS,
    Billing,
    add_method,
    assert_books_balance,
    billing_world,
    invoice_row,
    pay,
    refund,
    refunds_of,
)


@pytest.fixture
async def paid(client: AsyncClient, billing: Billing, invoice: dict[str, Any]) -> dict[str, Any]:
    """A succeeded payment of the whole invoice (10 000)."""
    response = await pay(client, billing.contact, invoice["id"], billing.card["id"])
    assert response.status_code == 201, response.text
    payment: dict[str, Any] = response.json()
    return payment


async def test_a_full_refund_reopens_the_invoice(
    client: AsyncClient,
    billing: Billing,
    invoice: dict[str, Any],
    paid: dict[str, Any],
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    response = await refund(client, billing.staff, paid["id"])

    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["payment_id"], body["amount"], body["status"]) == (paid["id"], 10_000, "succeeded")
    assert body["failure_code"] is None
    assert body["settled_at"] is not None
    (gateway_refund,) = gateway.refunds
    assert gateway_refund.amount == 10_000
    assert gateway_refund.charge_reference == gateway.charges[0].reference
    seen = (await client.get(f"{INVOICES}/{invoice['id']}", headers=billing.contact.headers)).json()
    assert (seen["status"], seen["amount_paid"], seen["balance"]) == ("open", 0, 10_000)
    assert seen["payments"][0]["amount_refunded"] == 10_000
    payment = (await client.get(f"{PAYMENTS}/{paid['id']}", headers=billing.staff.headers)).json()
    assert payment["amount_refunded"] == 10_000
    assert [r["id"] for r in payment["refunds"]] == [body["id"]]
    await assert_books_balance(sessionmaker, gateway, invoice["id"])
    # Nothing is left to refund.
    assert_problem(await refund(client, billing.staff, paid["id"]), 409, "refund-not-allowed")
    assert_problem(await refund(client, billing.staff, paid["id"], 1), 409, "refund-not-allowed")
    assert len(gateway.refunds) == 1


async def test_partial_refunds_up_to_the_amount_paid(
    client: AsyncClient,
    billing: Billing,
    invoice: dict[str, Any],
    paid: dict[str, Any],
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    for amount, paid_after in ((2_500, 7_500), (2_500, 5_000), (1, 4_999)):
        response = await refund(client, billing.staff, paid["id"], amount)
        assert response.status_code == 201, response.text
        assert response.json()["amount"] == amount
        row = await invoice_row(sessionmaker, invoice["id"])
        assert (row.amount_paid, row.balance, row.status) == (
            paid_after,
            10_000 - paid_after,
            "open",
        )
        await assert_books_balance(sessionmaker, gateway, invoice["id"])

    too_much = await refund(client, billing.staff, paid["id"], 5_000)
    body = assert_problem(too_much, 422, "amount-too-large")
    assert body["errors"][0]["loc"] == ["body", "amount"]
    assert "4999" in body["detail"]

    rest = await refund(client, billing.staff, paid["id"])  # no amount: what is left
    assert rest.status_code == 201, rest.text
    assert rest.json()["amount"] == 4_999
    assert [r.amount for r in gateway.refunds] == [2_500, 2_500, 1, 4_999]
    row = await invoice_row(sessionmaker, invoice["id"])
    assert (row.amount_paid, row.status) == (0, "open")
    await assert_books_balance(sessionmaker, gateway, invoice["id"])


async def test_a_refunded_invoice_can_be_paid_again(
    client: AsyncClient,
    billing: Billing,
    invoice: dict[str, Any],
    paid: dict[str, Any],
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    assert (await refund(client, billing.staff, paid["id"], 3_000)).status_code == 201
    assert_problem(
        await pay(client, billing.contact, invoice["id"], billing.card["id"], 3_001), 422
    )
    again = await pay(client, billing.contact, invoice["id"], billing.card["id"])
    assert again.status_code == 201, again.text
    assert again.json()["amount"] == 3_000
    row = await invoice_row(sessionmaker, invoice["id"])
    assert (row.amount_paid, row.status) == (10_000, "paid")
    await assert_books_balance(sessionmaker, gateway, invoice["id"])


@pytest.mark.parametrize("amount", [10_001, 10**12])
async def test_more_than_the_payment_is_refused(
    client: AsyncClient,
    billing: Billing,
    paid: dict[str, Any],
    gateway: FakeGateway,
    amount: int,
) -> None:
    assert_problem(await refund(client, billing.staff, paid["id"], amount), 422)
    assert gateway.refunds == []


@pytest.mark.parametrize("body", [{"amount": 0}, {"amount": -5}, {"amount": 1.5}, {"reason": "x"}])
async def test_a_malformed_refund_is_refused(
    client: AsyncClient,
    billing: Billing,
    paid: dict[str, Any],
    gateway: FakeGateway,
    body: dict[str, Any],
) -> None:
    response = await client.post(
        f"{PAYMENTS}/{paid['id']}/refunds", json=body, headers=billing.staff.headers
    )
    assert_problem(response, 422)
    assert gateway.refunds == []


async def test_only_a_succeeded_payment_can_be_refunded(
    client: AsyncClient,
    billing: Billing,
    invoice: dict[str, Any],
    gateway: FakeGateway,
) -> None:
    declining = await add_method(client, billing.contact, "tok_chargeDeclined")
    failed = assert_problem(
        await pay(client, billing.contact, invoice["id"], declining["id"]), 402
    )["payment_id"]
    gateway.fail_next(mode="timeout")
    pending = assert_problem(
        await pay(client, billing.contact, invoice["id"], billing.card["id"]), 503
    )["payment_id"]

    for payment_id, status in ((failed, "failed"), (pending, "pending")):
        body = assert_problem(await refund(client, billing.staff, payment_id), 409)
        assert body["type"] == problem_type_uri("refund-not-allowed")
        assert status in body["detail"]
    assert gateway.refunds == []


async def test_only_staff_refund(
    client: AsyncClient,
    factory: Factory,
    billing: Billing,
    paid: dict[str, Any],
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    _key, secret = await api_key_for(factory, billing.world.tenant)
    url = f"{PAYMENTS}/{paid['id']}/refunds"
    assert_problem(await client.post(url, json={}, headers=billing.contact.headers), 403)
    assert_problem(await client.post(url, json={}, headers=bearer(secret)), 403)
    assert_problem(await client.post(url, json={}), 401)
    # Another tenant's staff cannot even tell that the payment exists.
    elsewhere = await billing_world(factory, client, "Other MSP")
    foreign = await refund(client, elsewhere.staff, paid["id"])
    unknown = await refund(client, billing.staff, NO_SUCH_ID)
    assert assert_problem(foreign, 404)["detail"] == assert_problem(unknown, 404)["detail"]
    assert gateway.refunds == []
    assert await refunds_of(sessionmaker, paid["id"]) == []


@pytest.mark.parametrize("mode", ["timeout", "error", "lost_response"])
async def test_an_unavailable_gateway_leaves_the_refund_pending_until_reconciled(
    client: AsyncClient,
    billing: Billing,
    invoice: dict[str, Any],
    paid: dict[str, Any],
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
    mode: Literal["timeout", "error", "lost_response"],
) -> None:
    gateway.fail_next(mode=mode, operation="refund")

    response = await refund(client, billing.staff, paid["id"], 4_000)

    body = assert_problem(response, 503, "gateway-unavailable")
    assert body["refund_status"] == "pending"
    (pending,) = await refunds_of(sessionmaker, paid["id"])
    assert (str(pending.id), pending.status, pending.amount) == (
        body["refund_id"],
        "pending",
        4_000,
    )
    shown = (await client.get(f"{PAYMENTS}/{paid['id']}", headers=billing.staff.headers)).json()
    assert [r["status"] for r in shown["refunds"]] == ["pending"]
    assert shown["amount_refunded"] == 0
    row = await invoice_row(sessionmaker, invoice["id"])
    assert (row.amount_paid, row.status) == (10_000, "paid")
    # What is pending is held: only the rest can be refunded meanwhile.
    assert_problem(await refund(client, billing.staff, paid["id"], 6_001), 422)

    report = await reconcile(sessionmaker, gateway, older_than=timedelta(0))

    assert (report.refunds_checked, report.refunds_settled) == (1, 1)
    assert [r.amount for r in gateway.refunds] == [4_000]
    (settled,) = await refunds_of(sessionmaker, paid["id"])
    assert settled.status == "succeeded"
    row = await invoice_row(sessionmaker, invoice["id"])
    assert (row.amount_paid, row.balance, row.status) == (6_000, 4_000, "open")
    await assert_books_balance(sessionmaker, gateway, invoice["id"])
    assert (await reconcile(sessionmaker, gateway, older_than=timedelta(0))).refunds_checked == 0
    assert len(gateway.refunds) == 1


async def test_a_refund_is_idempotent_with_a_key(
    client: AsyncClient,
    billing: Billing,
    invoice: dict[str, Any],
    paid: dict[str, Any],
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    first = await refund(client, billing.staff, paid["id"], 1_000, key="r-1")
    assert first.status_code == 201, first.text
    replay = await refund(client, billing.staff, paid["id"], 1_000, key="r-1")
    assert (replay.status_code, replay.json()) == (201, first.json())
    assert replay.headers["idempotent-replayed"] == "true"
    different = await refund(client, billing.staff, paid["id"], 2_000, key="r-1")
    assert_problem(different, 422, "idempotency-key-reused")
    assert [r.amount for r in gateway.refunds] == [1_000]
    assert len(await refunds_of(sessionmaker, paid["id"])) == 1
    assert (await invoice_row(sessionmaker, invoice["id"])).amount_paid == 9_000


async def test_a_refund_retried_after_a_503_resumes_the_same_refund(
    client: AsyncClient,
    billing: Billing,
    invoice: dict[str, Any],
    paid: dict[str, Any],
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    gateway.fail_next(mode="lost_response", operation="refund")
    first = await refund(client, billing.staff, paid["id"], key="r-2")
    refund_id = assert_problem(first, 503)["refund_id"]

    retry = await refund(client, billing.staff, paid["id"], key="r-2")

    assert retry.status_code == 201, retry.text
    assert (retry.json()["id"], retry.json()["status"]) == (refund_id, "succeeded")
    assert len(await refunds_of(sessionmaker, paid["id"])) == 1
    assert [r.amount for r in gateway.refunds] == [10_000]
    row = await invoice_row(sessionmaker, invoice["id"])
    assert (row.amount_paid, row.status) == (0, "open")
    await assert_books_balance(sessionmaker, gateway, invoice["id"])


async def test_a_refund_the_gateway_refuses_is_402_and_changes_nothing(
    client: AsyncClient,
    billing: Billing,
    invoice: dict[str, Any],
    paid: dict[str, Any],
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    # Someone refunded the charge in the gateway's dashboard, behind the portal's back.
    (charge,) = gateway.charges
    await gateway.refund(charge_reference=charge.reference, amount=10_000, idempotency_key="dash")

    response = await refund(client, billing.staff, paid["id"], 2_000)

    body = assert_problem(response, 402, "refund-declined")
    assert body["decline_code"] == "charge_already_refunded"
    (kept,) = await refunds_of(sessionmaker, paid["id"])
    assert (str(kept.id), kept.status) == (body["refund_id"], "failed")
    row = await invoice_row(sessionmaker, invoice["id"])
    assert (row.amount_paid, row.status) == (10_000, "paid")
    shown = (await client.get(f"{PAYMENTS}/{paid['id']}", headers=billing.staff.headers)).json()
    assert (shown["amount_refunded"], shown["refunds"][0]["status"]) == (0, "failed")


async def test_a_refund_key_reused_after_it_expired_never_answers_with_another_refund(
    client: AsyncClient,
    billing: Billing,
    invoice: dict[str, Any],
    paid: dict[str, Any],
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    first = await refund(client, billing.staff, paid["id"], 1_000, key="old-key")
    assert first.status_code == 201, first.text
    async with sessionmaker() as session, session.begin():
        await session.execute(delete(IdempotencyRecord))  # what the purge does after 24 h

    reused = await refund(client, billing.staff, paid["id"], 2_000, key="old-key")

    assert_problem(reused, 422, "idempotency-key-reused")
    assert [r.amount for r in gateway.refunds] == [1_000]
    assert (await invoice_row(sessionmaker, invoice["id"])).amount_paid == 9_000
