"""Pay now: full and partial payments, amounts the invoice cannot take, declines, and who
may pay what."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.gateways.fake import FakeGateway
from app.models import Payment
from tests.factories import Factory, api_key_for, assert_problem, bearer, count_rows
from tests.payments.helpers import (
    INVOICES,
    NO_SUCH_ID,
    PAYMENTS,
    Billing,
    add_method,
    assert_books_balance,
    billing_world,
    draft_invoice,
    invoice_row,
    open_invoice,
    pay,
    payments_of,
)


async def test_paying_the_whole_balance_settles_the_invoice(
    client: AsyncClient,
    billing: Billing,
    invoice: dict[str, Any],
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    response = await pay(client, billing.contact, invoice["id"], billing.card["id"])

    assert response.status_code == 201, response.text
    payment = response.json()
    assert payment["status"] == "succeeded"
    assert (payment["amount"], payment["currency"]) == (10_000, "USD")
    assert payment["invoice_id"] == invoice["id"]
    assert payment["origin"] == "pay_now"
    assert payment["payment_method"] == {
        "id": billing.card["id"],
        "type": "card",
        "brand": "visa",
        "last4": "4242",
    }
    assert payment["allocations"] == [
        {"invoice_id": invoice["id"], "invoice_number": invoice["number"], "amount": 10_000}
    ]
    assert payment["refunds"] == []
    assert payment["settled_at"] is not None
    after = (
        await client.get(f"{INVOICES}/{invoice['id']}", headers=billing.contact.headers)
    ).json()
    assert (after["status"], after["amount_paid"], after["balance"]) == ("paid", 10_000, 0)
    assert after["amount_pending"] == 0
    assert [p["payment_id"] for p in after["payments"]] == [payment["id"]]
    assert len(gateway.charges) == 1
    assert gateway.charges[0].amount == 10_000
    await assert_books_balance(sessionmaker, gateway, invoice["id"])


async def test_partial_payments_add_up_to_paid(
    client: AsyncClient,
    billing: Billing,
    invoice: dict[str, Any],
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    for amount, paid, balance, status in (
        (2_500, 2_500, 7_500, "open"),
        (1, 2_501, 7_499, "open"),
        (7_499, 10_000, 0, "paid"),
    ):
        response = await pay(client, billing.contact, invoice["id"], billing.card["id"], amount)
        assert response.status_code == 201, response.text
        assert response.json()["amount"] == amount
        row = await invoice_row(sessionmaker, invoice["id"])
        assert (row.amount_paid, row.balance, row.status) == (paid, balance, status)
        await assert_books_balance(sessionmaker, gateway, invoice["id"])
    assert [c.amount for c in gateway.charges] == [2_500, 1, 7_499]
    detail = (await client.get(f"{INVOICES}/{invoice['id']}", headers=billing.staff.headers)).json()
    assert [p["amount"] for p in detail["payments"]] == [2_500, 1, 7_499]


async def test_leaving_out_the_amount_pays_what_is_left(
    client: AsyncClient,
    billing: Billing,
    invoice: dict[str, Any],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    first = await pay(client, billing.contact, invoice["id"], billing.card["id"], 3_000)
    assert first.status_code == 201, first.text
    rest = await pay(client, billing.contact, invoice["id"], billing.card["id"])
    assert rest.status_code == 201, rest.text
    assert rest.json()["amount"] == 7_000
    assert (await invoice_row(sessionmaker, invoice["id"])).status == "paid"


@pytest.mark.parametrize("amount", [10_001, 10**12])
async def test_more_than_the_balance_is_refused(
    client: AsyncClient,
    billing: Billing,
    invoice: dict[str, Any],
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
    amount: int,
) -> None:
    response = await pay(client, billing.contact, invoice["id"], billing.card["id"], amount)
    body = assert_problem(response, 422, "amount-too-large")
    assert body["errors"][0]["loc"] == ["body", "amount"]
    assert gateway.charge_calls == 0
    assert await payments_of(sessionmaker, invoice["id"]) == []
    row = await invoice_row(sessionmaker, invoice["id"])
    assert (row.amount_paid, row.amount_reserved, row.status) == (0, 0, "open")


async def test_more_than_what_is_left_after_a_partial_payment_is_refused(
    client: AsyncClient, billing: Billing, invoice: dict[str, Any], gateway: FakeGateway
) -> None:
    assert (await pay(client, billing.contact, invoice["id"], billing.card["id"], 6_000)).is_success
    response = await pay(client, billing.contact, invoice["id"], billing.card["id"], 4_001)
    assert_problem(response, 422, "amount-too-large")
    assert len(gateway.charges) == 1


@pytest.mark.parametrize("amount", [0, -1, 1.5, "ten", [100], 10**12 + 1])
async def test_an_amount_that_is_not_a_positive_integer_is_refused(
    client: AsyncClient,
    billing: Billing,
    invoice: dict[str, Any],
    gateway: FakeGateway,
    amount: Any,
) -> None:
    response = await client.post(
        f"{INVOICES}/{invoice['id']}/pay",
        json={"payment_method_id": billing.card["id"], "amount": amount},
        headers=billing.contact.headers,
    )
    assert_problem(response, 422)
    assert gateway.charge_calls == 0


@pytest.mark.parametrize("field", ["total", "amount_paid", "status", "currency", "invoice_id"])
async def test_unknown_fields_in_a_payment_are_refused(
    client: AsyncClient,
    billing: Billing,
    invoice: dict[str, Any],
    gateway: FakeGateway,
    field: str,
) -> None:
    response = await client.post(
        f"{INVOICES}/{invoice['id']}/pay",
        json={"payment_method_id": billing.card["id"], field: 1},
        headers=billing.contact.headers,
    )
    body = assert_problem(response, 422)
    assert any(field in error["loc"] for error in body["errors"]), body
    assert gateway.charge_calls == 0


@pytest.mark.parametrize(
    ("token", "code"),
    [("tok_chargeDeclined", "card_declined"), ("tok_insufficientFunds", "insufficient_funds")],
)
async def test_a_decline_is_402_and_kept_as_a_failed_payment(
    client: AsyncClient,
    billing: Billing,
    invoice: dict[str, Any],
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
    token: str,
    code: str,
) -> None:
    declining = await add_method(client, billing.contact, token)

    response = await pay(client, billing.contact, invoice["id"], declining["id"], 4_000)

    body = assert_problem(response, 402, "payment-declined")
    assert body["decline_code"] == code
    payment_id = body["payment_id"]
    # Kept in the history as failed; nothing allocated; the hold is released.
    payment = (await client.get(f"{PAYMENTS}/{payment_id}", headers=billing.contact.headers)).json()
    assert (payment["status"], payment["failure_code"]) == ("failed", code)
    assert payment["failure_message"]
    assert payment["allocations"] == []
    row = await invoice_row(sessionmaker, invoice["id"])
    assert (row.amount_paid, row.amount_reserved, row.status) == (0, 0, "open")
    assert gateway.charges == []
    assert gateway.summary()["declines"] == 1
    await assert_books_balance(sessionmaker, gateway, invoice["id"])
    # The invoice can still be paid in full with a card that works.
    good = await pay(client, billing.contact, invoice["id"], billing.card["id"])
    assert good.status_code == 201, good.text
    assert good.json()["amount"] == 10_000
    history = (await client.get(PAYMENTS, headers=billing.contact.headers)).json()["items"]
    assert [p["status"] for p in history] == ["succeeded", "failed"]


async def test_a_paid_or_void_invoice_cannot_be_paid(
    client: AsyncClient,
    billing: Billing,
    invoice: dict[str, Any],
    gateway: FakeGateway,
) -> None:
    assert (await pay(client, billing.contact, invoice["id"], billing.card["id"])).is_success
    again = await pay(client, billing.contact, invoice["id"], billing.card["id"], 1)
    assert_problem(again, 409, "invoice-not-payable")

    other = await open_invoice(client, billing.staff, billing.client_id, billing.category)
    voided = await client.post(f"{INVOICES}/{other['id']}/void", headers=billing.staff.headers)
    assert voided.status_code == 200, voided.text
    assert_problem(await pay(client, billing.contact, other["id"], billing.card["id"]), 409)
    assert len(gateway.charges) == 1


async def test_a_draft_is_not_found_by_the_client_it_is_for(
    client: AsyncClient, billing: Billing, gateway: FakeGateway
) -> None:
    draft = await draft_invoice(client, billing.staff, billing.client_id, billing.category)
    response = await pay(client, billing.contact, draft["id"], billing.card["id"])
    assert_problem(response, 404)
    assert gateway.charge_calls == 0


async def test_another_clients_invoice_is_not_found(
    client: AsyncClient,
    factory: Factory,
    billing: Billing,
    invoice: dict[str, Any],
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Same tenant, other client; and another tenant: both exactly like an unknown id."""
    neighbour = await factory.client(billing.world.tenant, "Globex")
    neighbour_contact = await factory.contact(billing.world.tenant, neighbour)
    neighbour_card = await add_method(client, neighbour_contact)
    elsewhere = await billing_world(factory, client, "Other MSP")

    answers = [
        await pay(client, neighbour_contact, invoice["id"], neighbour_card["id"]),
        await pay(client, elsewhere.contact, invoice["id"], elsewhere.card["id"]),
        await pay(client, billing.contact, NO_SUCH_ID, billing.card["id"]),
    ]
    bodies = [assert_problem(r, 404, "not-found") for r in answers]
    assert len({b["detail"] for b in bodies}) == 1
    assert gateway.charge_calls == 0
    row = await invoice_row(sessionmaker, invoice["id"])
    assert (row.amount_paid, row.amount_reserved) == (0, 0)


async def test_another_clients_method_is_refused_like_an_unknown_one(
    client: AsyncClient,
    factory: Factory,
    billing: Billing,
    invoice: dict[str, Any],
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """A method in the body that is not the caller's answers exactly as one that does not
    exist (the body's reference is invalid, 422 at `payment_method_id`), and nothing moves."""
    neighbour = await factory.client(billing.world.tenant, "Globex")
    neighbour_card = await add_method(
        client, await factory.contact(billing.world.tenant, neighbour)
    )
    elsewhere = await billing_world(factory, client, "Other MSP")

    answers = [
        await pay(client, billing.contact, invoice["id"], neighbour_card["id"]),
        await pay(client, billing.contact, invoice["id"], elsewhere.card["id"]),
        await pay(client, billing.contact, invoice["id"], NO_SUCH_ID),
    ]
    bodies = [assert_problem(r, 422) for r in answers]
    assert {(b["detail"], tuple(b["errors"][0]["loc"])) for b in bodies} == {
        (bodies[0]["detail"], ("body", "payment_method_id"))
    }
    assert gateway.charge_calls == 0
    assert await payments_of(sessionmaker, invoice["id"]) == []
    row = await invoice_row(sessionmaker, invoice["id"])
    assert (row.amount_paid, row.amount_reserved) == (0, 0)


async def test_a_deleted_method_cannot_pay(
    client: AsyncClient, billing: Billing, invoice: dict[str, Any], gateway: FakeGateway
) -> None:
    spare = await add_method(client, billing.contact, "tok_mastercard")
    deleted = await client.delete(
        f"/api/v1/payment-methods/{spare['id']}", headers=billing.contact.headers
    )
    assert deleted.status_code == 204
    assert_problem(await pay(client, billing.contact, invoice["id"], spare["id"]), 422)
    assert gateway.charge_calls == 0


async def test_people_pay_integration_keys_do_not(
    client: AsyncClient,
    factory: Factory,
    billing: Billing,
    invoice: dict[str, Any],
    gateway: FakeGateway,
) -> None:
    _key, secret = await api_key_for(factory, billing.world.tenant)
    body = {"payment_method_id": billing.card["id"]}
    url = f"{INVOICES}/{invoice['id']}/pay"
    assert_problem(await client.post(url, json=body, headers=bearer(secret)), 403)
    assert_problem(await client.post(url, json=body), 401)
    assert gateway.charge_calls == 0
    assert await count_rows(factory, Payment) == 0
    # Staff take a payment for the invoice's client (over the phone), with its card on file.
    wrong = {**body, "client_id": str(uuid.uuid4())}
    assert_problem(await client.post(url, json=wrong, headers=billing.staff.headers), 422)
    paid = await client.post(url, json=body, headers=billing.staff.headers)
    assert paid.status_code == 201, paid.text
    assert paid.json()["client_id"] == str(billing.world.client.id)
    assert gateway.charge_calls == 1


async def test_ach_pays_too(
    client: AsyncClient,
    billing: Billing,
    invoice: dict[str, Any],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    bank = await add_method(client, billing.contact, "tok_ach")
    response = await pay(client, billing.contact, invoice["id"], bank["id"])
    assert response.status_code == 201, response.text
    assert response.json()["payment_method"]["type"] == "ach"
    assert (await invoice_row(sessionmaker, invoice["id"])).status == "paid"
