"""When the database fails around a charge: the client hears "pending" (never "unexpected
error"), nothing is charged twice, and a retry with the same key learns the outcome as soon as
it is recorded instead of waiting out the first request's in-flight lock."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.idempotency import IdempotencyStore
from app.gateways.fake import FakeGateway
from app.payments import charges
from app.payments.reconcile import reconcile
from tests.factories import assert_problem
from tests.payments.helpers import Billing, assert_books_balance, invoice_row, pay, payments_of


async def test_the_database_failing_after_the_charge_answers_pending_then_reconciles_once(
    client: AsyncClient,
    billing: Billing,
    invoice: dict[str, Any],
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = charges.record

    async def database_gone(*args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(charges, "record", original)
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(charges, "record", database_gone)

    response = await pay(client, billing.contact, invoice["id"], billing.card["id"], key="cut")

    problem = assert_problem(response, 503)
    assert problem["payment_status"] == "pending"
    assert "Retry-After" in response.headers
    (payment,) = await payments_of(sessionmaker, invoice["id"])
    assert (str(payment.id), payment.status) == (problem["payment_id"], "pending")
    assert gateway.charge_calls == 1

    report = await reconcile(sessionmaker, gateway, older_than=timedelta(0))
    assert report.payments_settled == 1
    assert (await invoice_row(sessionmaker, invoice["id"])).status == "paid"
    assert len(gateway.charges) == 1
    await assert_books_balance(sessionmaker, gateway, invoice["id"])


async def test_a_retry_learns_the_outcome_while_the_first_request_still_holds_the_key(
    lenient_client: AsyncClient,
    billing: Billing,
    invoice: dict[str, Any],
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first request charged and recorded the payment, then its process died before the
    answer was kept: its key stays locked "in flight" for minutes."""
    original = IdempotencyStore.complete

    async def died(self: IdempotencyStore, *args: Any) -> None:
        monkeypatch.setattr(IdempotencyStore, "complete", original)
        raise RuntimeError("the process died before keeping the answer")

    monkeypatch.setattr(IdempotencyStore, "complete", died)
    crashed = await pay(lenient_client, billing.contact, invoice["id"], billing.card["id"], key="k")
    assert_problem(crashed, 500)

    retry = await pay(lenient_client, billing.contact, invoice["id"], billing.card["id"], key="k")

    assert retry.status_code == 201, retry.text
    (payment,) = await payments_of(sessionmaker, invoice["id"])
    assert (retry.json()["id"], retry.json()["status"]) == (str(payment.id), "succeeded")
    replay = await pay(lenient_client, billing.contact, invoice["id"], billing.card["id"], key="k")
    assert (replay.status_code, replay.json()) == (201, retry.json())
    assert replay.headers["idempotent-replayed"] == "true"
    assert gateway.charge_calls == 1


async def test_while_the_payment_is_still_pending_the_retry_is_told_to_wait(
    lenient_client: AsyncClient,
    billing: Billing,
    invoice: dict[str, Any],
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original_record = charges.record

    async def died_at_the_gateway(*args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(charges, "record", original_record)
        raise RuntimeError("the process died after the gateway call")

    async def no_one_left_to_release(self: IdempotencyStore, record_id: Any) -> None:
        monkeypatch.undo()  # a dead process releases nothing

    monkeypatch.setattr(charges, "record", died_at_the_gateway)
    monkeypatch.setattr(IdempotencyStore, "release", no_one_left_to_release)
    crashed = await pay(lenient_client, billing.contact, invoice["id"], billing.card["id"], key="p")
    assert_problem(crashed, 500)
    (payment,) = await payments_of(sessionmaker, invoice["id"])
    assert payment.status == "pending"

    # The key is still "in flight" and the payment unsettled: wait (nothing charged again).
    waiting = await pay(lenient_client, billing.contact, invoice["id"], billing.card["id"], key="p")
    assert_problem(waiting, 409, "idempotent-request-in-flight")
    assert gateway.charge_calls == 1

    # Reconciliation settles it; the retry then hears the payment.
    await reconcile(sessionmaker, gateway, older_than=timedelta(0))
    settled = await pay(lenient_client, billing.contact, invoice["id"], billing.card["id"], key="p")
    assert (settled.status_code, settled.json()["id"]) == (201, str(payment.id))
    assert gateway.charge_calls == 2  # reconciliation asked again with the same key
    assert len(gateway.charges) == 1
