"""When the gateway times out, fails, loses its answer, or we crash after it charged:
the payment waits `pending` with its amount held, and reconciliation (or a retry with the
same Idempotency-Key) settles it with exactly one charge."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any, Literal

import pytest
from httpx import AsyncClient
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.gateways.fake import FakeGateway
from app.models import Payment
from app.payments import charges
from app.payments.reconcile import ReconcileReport, reconcile
from tests.factories import assert_problem
from tests.payments.helpers import (
    INVOICES,
    PAYMENTS,
    Billing,
    add_method,
    assert_books_balance,
    invoice_row,
    pay,
    payments_of,
)

Unavailable = Literal["timeout", "error"]


async def settle_all(
    sessionmaker: async_sessionmaker[AsyncSession], gateway: FakeGateway
) -> ReconcileReport:
    return await reconcile(sessionmaker, gateway, older_than=timedelta(0))


@pytest.mark.parametrize("mode", ["timeout", "error"])
async def test_an_unavailable_gateway_leaves_the_payment_pending_and_held(
    client: AsyncClient,
    billing: Billing,
    invoice: dict[str, Any],
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
    mode: Unavailable,
) -> None:
    gateway.fail_next(mode=mode)

    response = await pay(client, billing.contact, invoice["id"], billing.card["id"], 6_000)

    body = assert_problem(response, 503, "gateway-unavailable")
    assert response.headers["retry-after"].isdigit()
    assert body["payment_status"] == "pending"
    payment_id = body["payment_id"]
    assert payment_id in body["detail"]
    shown = (await client.get(f"{PAYMENTS}/{payment_id}", headers=billing.contact.headers)).json()
    assert (shown["status"], shown["amount"], shown["allocations"]) == ("pending", 6_000, [])
    seen = (await client.get(f"{INVOICES}/{invoice['id']}", headers=billing.contact.headers)).json()
    assert (seen["status"], seen["amount_paid"], seen["balance"]) == ("open", 0, 10_000)
    assert seen["amount_pending"] == 6_000
    assert gateway.charges == []
    await assert_books_balance(sessionmaker, gateway, invoice["id"])

    # The hold is real: the rest can be paid, but not more.
    too_much = await pay(client, billing.contact, invoice["id"], billing.card["id"], 4_001)
    assert_problem(too_much, 409, "payment-in-progress")
    assert gateway.charges == []

    report = await settle_all(sessionmaker, gateway)

    assert (report.payments_checked, report.payments_settled) == (1, 1)
    assert gateway.charge_count_for("payment_") == 1
    row = await invoice_row(sessionmaker, invoice["id"])
    assert (row.amount_paid, row.amount_reserved, row.status) == (6_000, 0, "open")
    shown = (await client.get(f"{PAYMENTS}/{payment_id}", headers=billing.contact.headers)).json()
    assert shown["status"] == "succeeded"
    assert shown["allocations"][0]["amount"] == 6_000
    await assert_books_balance(sessionmaker, gateway, invoice["id"])
    # Reconciling again finds nothing and charges nothing.
    assert (await settle_all(sessionmaker, gateway)).payments_checked == 0
    assert len(gateway.charges) == 1


async def test_a_lost_response_is_charged_once(
    client: AsyncClient,
    billing: Billing,
    invoice: dict[str, Any],
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """The gateway charged the card but its answer never arrived."""
    gateway.fail_next(mode="lost_response")

    response = await pay(client, billing.contact, invoice["id"], billing.card["id"])

    body = assert_problem(response, 503, "gateway-unavailable")
    assert len(gateway.charges) == 1  # the money moved...
    row = await invoice_row(sessionmaker, invoice["id"])
    assert (row.amount_paid, row.amount_reserved) == (0, 10_000)  # ...we do not know it yet

    await settle_all(sessionmaker, gateway)

    assert len(gateway.charges) == 1
    (payment,) = await payments_of(sessionmaker, invoice["id"])
    assert (str(payment.id), payment.status) == (body["payment_id"], "succeeded")
    assert payment.gateway_charge_reference == gateway.charges[0].reference
    row = await invoice_row(sessionmaker, invoice["id"])
    assert (row.amount_paid, row.amount_reserved, row.status) == (10_000, 0, "paid")
    await assert_books_balance(sessionmaker, gateway, invoice["id"])


async def test_reconciling_while_the_gateway_is_still_down_changes_nothing(
    client: AsyncClient,
    billing: Billing,
    invoice: dict[str, Any],
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    gateway.fail_next(mode="timeout")
    assert_problem(await pay(client, billing.contact, invoice["id"], billing.card["id"]), 503)
    gateway.fail_next(mode="error")

    report = await settle_all(sessionmaker, gateway)

    assert (report.payments_checked, report.payments_settled) == (1, 0)
    (payment,) = await payments_of(sessionmaker, invoice["id"])
    assert (payment.status, payment.gateway_attempts) == ("pending", 2)
    assert (await invoice_row(sessionmaker, invoice["id"])).amount_reserved == 10_000
    await settle_all(sessionmaker, gateway)
    assert (await invoice_row(sessionmaker, invoice["id"])).status == "paid"
    assert len(gateway.charges) == 1


async def test_reconciling_takes_the_least_tried_pending_payments_first(
    client: AsyncClient,
    billing: Billing,
    invoice: dict[str, Any],
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    gateway.fail_next(2, mode="timeout")
    older, newer = [
        assert_problem(
            await pay(client, billing.contact, invoice["id"], billing.card["id"], 3_000), 503
        )["payment_id"]
        for _ in range(2)
    ]
    # The older one has been asked about many times and never settled (a stuck payment).
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(Payment).where(Payment.id == uuid.UUID(older)).values(gateway_attempts=50)
        )

    report = await reconcile(sessionmaker, gateway, older_than=timedelta(0), limit=1)

    assert (report.payments_checked, report.payments_settled) == (1, 1)
    statuses = {str(p.id): p.status for p in await payments_of(sessionmaker, invoice["id"])}
    assert statuses == {newer: "succeeded", older: "pending"}
    assert [c.amount for c in gateway.charges] == [3_000]


async def test_a_pending_payment_that_declines_releases_its_hold(
    client: AsyncClient,
    billing: Billing,
    invoice: dict[str, Any],
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    declining = await add_method(client, billing.contact, "tok_insufficientFunds")
    gateway.fail_next(mode="timeout")
    assert_problem(await pay(client, billing.contact, invoice["id"], declining["id"]), 503)

    await settle_all(sessionmaker, gateway)

    (payment,) = await payments_of(sessionmaker, invoice["id"])
    assert (payment.status, payment.failure_code) == ("failed", "insufficient_funds")
    row = await invoice_row(sessionmaker, invoice["id"])
    assert (row.amount_paid, row.amount_reserved, row.status) == (0, 0, "open")
    assert gateway.charges == []
    await assert_books_balance(sessionmaker, gateway, invoice["id"])


@pytest.mark.parametrize("mode", ["timeout", "error", "lost_response"])
async def test_a_retry_with_the_same_key_resumes_the_same_payment(
    client: AsyncClient,
    billing: Billing,
    invoice: dict[str, Any],
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
    mode: Literal["timeout", "error", "lost_response"],
) -> None:
    gateway.fail_next(mode=mode)
    first = await pay(client, billing.contact, invoice["id"], billing.card["id"], key="again")
    pending_id = assert_problem(first, 503)["payment_id"]

    retry = await pay(client, billing.contact, invoice["id"], billing.card["id"], key="again")

    assert retry.status_code == 201, retry.text
    assert retry.json()["id"] == pending_id
    assert retry.json()["status"] == "succeeded"
    assert len(await payments_of(sessionmaker, invoice["id"])) == 1
    assert len(gateway.charges) == 1
    assert (await invoice_row(sessionmaker, invoice["id"])).status == "paid"
    # From now on the key replays the success, and reconciliation has nothing to do.
    replay = await pay(client, billing.contact, invoice["id"], billing.card["id"], key="again")
    assert (replay.status_code, replay.json()) == (201, retry.json())
    assert (await settle_all(sessionmaker, gateway)).payments_checked == 0
    assert len(gateway.charges) == 1
    await assert_books_balance(sessionmaker, gateway, invoice["id"])


async def test_a_retry_after_reconciliation_answers_with_the_settled_payment(
    client: AsyncClient,
    billing: Billing,
    invoice: dict[str, Any],
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    gateway.fail_next(mode="lost_response")
    pending_id = assert_problem(
        await pay(client, billing.contact, invoice["id"], billing.card["id"], key="late"), 503
    )["payment_id"]
    await settle_all(sessionmaker, gateway)

    retry = await pay(client, billing.contact, invoice["id"], billing.card["id"], key="late")

    assert retry.status_code == 201, retry.text
    assert (retry.json()["id"], retry.json()["status"]) == (pending_id, "succeeded")
    assert len(gateway.charges) == 1
    assert gateway.charge_calls == 2


async def test_after_a_503_the_key_still_means_the_first_request(
    client: AsyncClient,
    billing: Billing,
    invoice: dict[str, Any],
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """A retry is safe only if it is the same request: the key cannot be spent on another."""
    gateway.fail_next(mode="timeout")
    assert_problem(
        await pay(client, billing.contact, invoice["id"], billing.card["id"], 3_000, key="k"), 503
    )

    other = await pay(client, billing.contact, invoice["id"], billing.card["id"], 5_000, key="k")

    assert_problem(other, 422, "idempotency-key-reused")
    (payment,) = await payments_of(sessionmaker, invoice["id"])
    assert (payment.amount, payment.status) == (3_000, "pending")
    assert gateway.charges == []


async def test_a_crash_after_the_charge_is_settled_by_reconciliation(
    lenient_client: AsyncClient,
    billing: Billing,
    invoice: dict[str, Any],
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The gateway charged, then we died before recording it: one charge, one payment."""
    crash_once(monkeypatch)

    response = await pay(lenient_client, billing.contact, invoice["id"], billing.card["id"])

    assert_problem(response, 500, "internal-error")
    assert len(gateway.charges) == 1
    (payment,) = await payments_of(sessionmaker, invoice["id"])
    assert payment.status == "pending"
    row = await invoice_row(sessionmaker, invoice["id"])
    assert (row.amount_paid, row.amount_reserved, row.status) == (0, 10_000, "open")

    report = await settle_all(sessionmaker, gateway)

    assert report.payments_settled == 1
    assert gateway.charge_count_for("payment_") == 1
    assert len(gateway.charges) == 1
    (payment,) = await payments_of(sessionmaker, invoice["id"])
    assert payment.status == "succeeded"
    row = await invoice_row(sessionmaker, invoice["id"])
    assert (row.amount_paid, row.amount_reserved, row.status) == (10_000, 0, "paid")
    await assert_books_balance(sessionmaker, gateway, invoice["id"])


async def test_a_crash_after_the_charge_is_resumed_by_a_retry(
    lenient_client: AsyncClient,
    billing: Billing,
    invoice: dict[str, Any],
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    crash_once(monkeypatch)
    crashed = await pay(lenient_client, billing.contact, invoice["id"], billing.card["id"], key="c")
    assert_problem(crashed, 500)

    retry = await pay(lenient_client, billing.contact, invoice["id"], billing.card["id"], key="c")

    assert retry.status_code == 201, retry.text
    (payment,) = await payments_of(sessionmaker, invoice["id"])
    assert (str(payment.id), payment.status) == (retry.json()["id"], "succeeded")
    assert len(gateway.charges) == 1
    assert (await invoice_row(sessionmaker, invoice["id"])).status == "paid"
    await assert_books_balance(sessionmaker, gateway, invoice["id"])


def crash_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first success the gateway reports is never recorded: the process dies first."""
    original = charges.record
    calls = {"n": 0}

    async def crashing(*args: Any, **kwargs: Any) -> Any:
        outcome = args[3] if len(args) > 3 else kwargs["outcome"]
        if outcome.result is not None:
            calls["n"] += 1
            if calls["n"] == 1:
                raise RuntimeError("the process died between the charge and the commit")
        return await original(*args, **kwargs)

    monkeypatch.setattr(charges, "record", crashing)
