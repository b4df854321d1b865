"""`POST /payments`: one charge over several invoices, oldest due date first (all open ones
when none are named), the amount defaulting to what they owe, a smaller one paying the oldest
in full and the last in part; refused plainly when it cannot be; idempotent; staff pay for a
client they name."""

from __future__ import annotations

from typing import Any

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.gateways.fake import FakeGateway
from tests.factories import Factory, api_key_for, assert_problem, bearer
from tests.payments.helpers import (
    INVOICES,
    Billing,
    add_method,
    billing_world,
    invoice_row,
    open_invoice,
    pay,
)
from tests.payments.several import (
    allocation_rows,
    allocations,
    assert_allocated_books,
    invoices_due,
    pay_several,
)


async def test_all_open_invoices_are_paid_oldest_due_first(
    client: AsyncClient,
    billing: Billing,
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    later, sooner, soonest = await invoices_due(
        client, billing, (3_000, 30), (2_000, 10), (700, -5)
    )

    response = await pay_several(client, billing.contact, billing.card["id"])

    assert response.status_code == 201, response.text
    payment = response.json()
    assert (payment["amount"], payment["status"], payment["invoice_id"]) == (
        5_700,
        "succeeded",
        soonest["id"],
    )
    assert allocations(payment) == [
        (soonest["id"], 700),
        (sooner["id"], 2_000),
        (later["id"], 3_000),
    ]
    assert [a["invoice_number"] for a in payment["allocations"]] == [
        soonest["number"],
        sooner["number"],
        later["number"],
    ]
    # One charge for the sum; each invoice is paid, its books and the ledger agree.
    assert [c.amount for c in gateway.charges] == [5_700]
    rows = await allocation_rows(sessionmaker, payment["id"])
    assert [(r.position, r.amount, r.status) for r in rows] == [
        (0, 700, "applied"),
        (1, 2_000, "applied"),
        (2, 3_000, "applied"),
    ]
    books = await assert_allocated_books(
        sessionmaker, gateway, later["id"], sooner["id"], soonest["id"]
    )
    assert {row.status for row in books} == {"paid"}
    # The payment shows in each invoice's history.
    for invoice in (later, soonest):
        listed = await client.get(
            "/api/v1/payments",
            params={"invoice_id": invoice["id"]},
            headers=billing.contact.headers,
        )
        assert [p["id"] for p in listed.json()["items"]] == [payment["id"]]


async def test_a_smaller_amount_pays_the_oldest_in_full_and_the_last_in_part(
    client: AsyncClient, billing: Billing, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    first, second, third = await invoices_due(client, billing, (1_000, 1), (2_000, 2), (4_000, 3))

    response = await pay_several(client, billing.contact, billing.card["id"], amount=2_500)

    assert response.status_code == 201, response.text
    assert allocations(response.json()) == [(first["id"], 1_000), (second["id"], 1_500)]
    rows = {i["id"]: await invoice_row(sessionmaker, i["id"]) for i in (first, second, third)}
    assert [(r.amount_paid, r.status) for r in rows.values()] == [
        (1_000, "paid"),
        (1_500, "open"),
        (0, "open"),
    ]
    # What is left is what a second payment of the rest pays, the part-paid one first.
    rest = await pay_several(client, billing.contact, billing.card["id"])
    assert allocations(rest.json()) == [(second["id"], 500), (third["id"], 4_000)]


async def test_the_named_invoices_only_in_due_order_whatever_order_they_are_named_in(
    client: AsyncClient, billing: Billing, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    a, b, c = await invoices_due(client, billing, (100, 20), (200, 10), (300, 5))

    response = await pay_several(
        client, billing.contact, billing.card["id"], invoice_ids=[a["id"], c["id"], a["id"]]
    )

    assert response.status_code == 201, response.text
    assert allocations(response.json()) == [(c["id"], 300), (a["id"], 100)]
    assert (await invoice_row(sessionmaker, b["id"])).amount_paid == 0


async def test_an_invoice_already_partly_paid_gives_only_what_it_still_owes(
    client: AsyncClient, billing: Billing
) -> None:
    old, new = await invoices_due(client, billing, (1_000, 1), (1_000, 2))
    assert (
        await pay(client, billing.contact, old["id"], billing.card["id"], 600)
    ).status_code == 201

    response = await pay_several(client, billing.contact, billing.card["id"], amount=900)

    assert allocations(response.json()) == [(old["id"], 400), (new["id"], 500)]


async def test_what_cannot_be_paid_is_refused_and_charges_nothing(
    client: AsyncClient, billing: Billing, gateway: FakeGateway, factory: Factory
) -> None:
    assert_problem(
        await pay_several(client, billing.contact, billing.card["id"]), 409, "nothing-to-pay"
    )
    open_one, paid_one = await invoices_due(client, billing, (1_000, 1), (500, 2))
    assert (
        await pay(client, billing.contact, paid_one["id"], billing.card["id"])
    ).status_code == 201
    draft = await client.post(
        INVOICES,
        json={
            "client_id": str(billing.client_id),
            "currency": "USD",
            "due_date": open_one["due_date"],
            "lines": [
                {
                    "description": "x",
                    "service_category_id": str(billing.category.id),
                    "quantity": 1,
                    "unit_amount": 5,
                }
            ],
        },
        headers=billing.staff.headers,
    )
    other = await billing_world(factory, client, "Other MSP")
    theirs = await open_invoice(client, other.staff, other.client_id, other.category, (1, 100))
    euro = await open_invoice(
        client, billing.staff, billing.client_id, billing.category, (1, 100), currency="EUR"
    )
    calls = gateway.charge_calls

    more = await pay_several(client, billing.contact, billing.card["id"], [open_one["id"]], 1_001)
    assert_problem(more, 422, "amount-too-large")
    for wrong in (paid_one["id"], draft.json()["id"], theirs["id"]):
        body = assert_problem(
            await pay_several(client, billing.contact, billing.card["id"], [open_one["id"], wrong]),
            422,
        )
        assert ["body", "invoice_ids", 1] in [e["loc"] for e in body["errors"]]
    mixed = await pay_several(
        client, billing.contact, billing.card["id"], [open_one["id"], euro["id"]]
    )
    assert_problem(mixed, 422)
    assert_problem(
        await pay_several(client, billing.contact, billing.card["id"]), 422
    )  # both currencies
    assert_problem(
        await pay_several(client, billing.contact, other.card["id"], [open_one["id"]]), 422
    )
    malformed: list[dict[str, Any]] = [
        {"invoice_ids": []},
        {"amount": 0},
        {"amount": -1},
        {"surprise": 1},
    ]
    for bad in malformed:
        assert_problem(await pay_several(client, billing.contact, billing.card["id"], **bad), 422)
    assert gateway.charge_calls == calls


async def test_a_decline_is_402_and_leaves_every_invoice_as_it_was(
    client: AsyncClient,
    billing: Billing,
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    invoices = await invoices_due(client, billing, (1_000, 1), (2_000, 2))
    declining = await add_method(client, billing.contact, "tok_chargeDeclined")

    response = await pay_several(client, billing.contact, declining["id"])

    body = assert_problem(response, 402, "payment-declined")
    rows = await allocation_rows(sessionmaker, body["payment_id"])
    assert [(r.amount, r.status) for r in rows] == [(1_000, "released"), (2_000, "released")]
    books = await assert_allocated_books(sessionmaker, gateway, *(i["id"] for i in invoices))
    assert {(r.amount_paid, r.amount_reserved, r.status) for r in books} == {(0, 0, "open")}
    assert gateway.charges == []


async def test_the_same_idempotency_key_replays_one_payment(
    client: AsyncClient, billing: Billing, gateway: FakeGateway
) -> None:
    await invoices_due(client, billing, (1_000, 1), (2_000, 2))

    first = await pay_several(client, billing.contact, billing.card["id"], amount=1_500, key="k-1")
    again = await pay_several(client, billing.contact, billing.card["id"], amount=1_500, key="k-1")
    other = await pay_several(client, billing.contact, billing.card["id"], amount=1_600, key="k-1")

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert_problem(other, 422)  # the key names another request
    assert [c.amount for c in gateway.charges] == [1_500]


async def test_staff_pay_several_for_the_client_they_name(
    client: AsyncClient, billing: Billing, gateway: FakeGateway, factory: Factory
) -> None:
    first, second = await invoices_due(client, billing, (1_000, 1), (2_000, 2))
    other = await billing_world(factory, client, "Other MSP")
    named = str(billing.client_id)

    unnamed = assert_problem(await pay_several(client, billing.staff, billing.card["id"]), 422)
    assert ["body", "client_id"] in [e["loc"] for e in unnamed["errors"]]
    foreign = str(other.client_id)
    assert_problem(
        await pay_several(client, billing.staff, billing.card["id"], client_id=foreign), 422
    )
    # A contact naming another client is refused too; their own is fine.
    assert_problem(
        await pay_several(client, billing.contact, billing.card["id"], client_id=foreign), 422
    )
    response = await pay_several(client, billing.staff, billing.card["id"], client_id=named)

    assert response.status_code == 201, response.text
    assert response.json()["client_id"] == str(billing.client_id)
    assert allocations(response.json()) == [(first["id"], 1_000), (second["id"], 2_000)]
    _, secret = await api_key_for(factory, billing.world.tenant)
    assert_problem(
        await client.post(
            "/api/v1/payments",
            json={"payment_method_id": billing.card["id"], "client_id": named},
            headers=bearer(secret),
        ),
        403,
    )
    assert [c.amount for c in gateway.charges] == [3_000]
