"""Drafting invoices: staff and integration keys create them, the server computes every
amount, and a PSA's `external_id` makes pushing the same invoice twice harmless."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from httpx import AsyncClient

from app.models import Invoice, InvoiceLine
from tests.factories import Factory, assert_problem, bearer, count_rows
from tests.payments.helpers import (
    INVOICES,
    NO_SUCH_ID,
    Billing,
    billing_world,
    due_in,
    lines_for,
)


def body_for(billing: Billing, *amounts: tuple[int, int], **extra: Any) -> dict[str, Any]:
    return {
        "client_id": str(billing.client_id),
        "currency": "USD",
        "due_date": due_in(30),
        "lines": lines_for(billing.category, *(amounts or ((1, 10_000),))),
        **extra,
    }


async def integration_key(client: AsyncClient, billing: Billing) -> dict[str, str]:
    """An API key made the way an MSP makes one: by staff, through the API."""
    created = await client.post(
        "/api/v1/api-keys", json={"name": "PSA sync"}, headers=billing.staff.headers
    )
    assert created.status_code == 201, created.text
    return bearer(created.json()["secret"])


async def test_staff_draft_an_invoice_and_the_server_adds_it_up(
    client: AsyncClient, factory: Factory, billing: Billing
) -> None:
    body = body_for(billing, (3, 1_250), (1, 99), (12, 4_500), memo="November")

    response = await client.post(INVOICES, json=body, headers=billing.staff.headers)

    assert response.status_code == 201, response.text
    draft = response.json()
    assert (draft["status"], draft["number"], draft["issued_on"]) == ("draft", None, None)
    assert draft["total"] == 3 * 1_250 + 99 + 12 * 4_500
    assert (draft["amount_paid"], draft["balance"], draft["amount_pending"]) == (
        0,
        draft["total"],
        0,
    )
    assert (draft["currency"], draft["due_date"], draft["memo"]) == (
        "USD",
        body["due_date"],
        "November",
    )
    assert draft["client_id"] == str(billing.client_id)
    assert draft["overdue"] is False
    assert [(line["quantity"], line["unit_amount"], line["amount"]) for line in draft["lines"]] == [
        (3, 1_250, 3_750),
        (1, 99, 99),
        (12, 4_500, 54_000),
    ]
    assert [line["description"] for line in draft["lines"]] == [
        "Service 1",
        "Service 2",
        "Service 3",
    ]
    assert draft["payments"] == []
    assert await count_rows(factory, Invoice) == 1
    assert await count_rows(factory, InvoiceLine) == 3


async def test_an_integration_key_drafts_invoices(client: AsyncClient, billing: Billing) -> None:
    key = await integration_key(client, billing)
    response = await client.post(INVOICES, json=body_for(billing), headers=key)
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "draft"
    listed = await client.get(INVOICES, headers=key)
    assert [i["id"] for i in listed.json()["items"]] == [response.json()["id"]]


async def test_clients_cannot_draft_invoices(
    client: AsyncClient, factory: Factory, billing: Billing
) -> None:
    response = await client.post(INVOICES, json=body_for(billing), headers=billing.contact.headers)
    assert_problem(response, 403)
    assert_problem(await client.post(INVOICES, json=body_for(billing)), 401)
    assert await count_rows(factory, Invoice) == 0


@pytest.mark.parametrize(
    "extra",
    [
        {"total": 1},
        {"amount": 1},
        {"amount_paid": 10_000},
        {"balance": 0},
        {"status": "paid"},
        {"number": "INV-999999"},
        {"tenant_id": NO_SUCH_ID},
    ],
)
async def test_amounts_and_state_are_never_read_from_the_request(
    client: AsyncClient, factory: Factory, billing: Billing, extra: dict[str, Any]
) -> None:
    response = await client.post(
        INVOICES, json=body_for(billing, **extra), headers=billing.staff.headers
    )
    body = assert_problem(response, 422)
    (name,) = extra
    assert any(error["loc"] == ["body", name] for error in body["errors"]), body
    assert await count_rows(factory, Invoice) == 0


@pytest.mark.parametrize("extra", [{"amount": 1}, {"total": 5}, {"id": NO_SUCH_ID}])
async def test_line_amounts_are_never_read_from_the_request(
    client: AsyncClient, factory: Factory, billing: Billing, extra: dict[str, Any]
) -> None:
    body = body_for(billing)
    body["lines"][0].update(extra)
    response = await client.post(INVOICES, json=body, headers=billing.staff.headers)
    assert_problem(response, 422)
    assert await count_rows(factory, Invoice) == 0


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"currency": "XXX"}, ["body", "currency"]),
        ({"currency": "US"}, ["body", "currency"]),
        ({"due_date": "31/12/2030"}, ["body", "due_date"]),
        ({"lines": []}, ["body", "lines"]),
        ({"client_id": "not-a-uuid"}, ["body", "client_id"]),
        ({"external_id": ""}, ["body", "external_id"]),
    ],
)
async def test_a_malformed_invoice_is_refused(
    client: AsyncClient,
    factory: Factory,
    billing: Billing,
    change: dict[str, Any],
    where: list[str],
) -> None:
    response = await client.post(
        INVOICES, json={**body_for(billing), **change}, headers=billing.staff.headers
    )
    body = assert_problem(response, 422)
    assert body["errors"][0]["loc"] == where, body
    assert await count_rows(factory, Invoice) == 0


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ({"quantity": 0}, "quantity"),
        ({"quantity": -1}, "quantity"),
        ({"unit_amount": -1}, "unit_amount"),
        ({"unit_amount": 12.5}, "unit_amount"),
        ({"unit_amount": 10**12 + 1}, "unit_amount"),
        ({"description": ""}, "description"),
    ],
)
async def test_a_malformed_line_is_refused(
    client: AsyncClient,
    factory: Factory,
    billing: Billing,
    line: dict[str, Any],
    field: str,
) -> None:
    body = body_for(billing)
    body["lines"][0].update(line)
    response = await client.post(INVOICES, json=body, headers=billing.staff.headers)
    problem = assert_problem(response, 422)
    assert problem["errors"][0]["loc"] == ["body", "lines", 0, field], problem
    assert await count_rows(factory, InvoiceLine) == 0


async def test_the_currency_is_normalised(client: AsyncClient, billing: Billing) -> None:
    response = await client.post(
        INVOICES, json=body_for(billing, currency="eur"), headers=billing.staff.headers
    )
    assert response.status_code == 201, response.text
    assert response.json()["currency"] == "EUR"


async def test_another_tenants_client_or_category_is_refused(
    client: AsyncClient, factory: Factory, billing: Billing
) -> None:
    elsewhere = await billing_world(factory, client, "Other MSP")
    foreign_client = await client.post(
        INVOICES,
        json={**body_for(billing), "client_id": str(elsewhere.client_id)},
        headers=billing.staff.headers,
    )
    assert assert_problem(foreign_client, 422)["errors"][0]["loc"] == ["body", "client_id"]
    body = body_for(billing)
    body["lines"][0]["service_category_id"] = str(elsewhere.category.id)
    foreign_category = await client.post(INVOICES, json=body, headers=billing.staff.headers)
    assert assert_problem(foreign_category, 422)["errors"][0]["loc"] == [
        "body",
        "lines",
        0,
        "service_category_id",
    ]
    assert await count_rows(factory, Invoice) == 0


async def test_the_same_external_id_is_the_same_invoice(
    client: AsyncClient, factory: Factory, billing: Billing
) -> None:
    key = await integration_key(client, billing)
    body = body_for(billing, (1, 5_000), external_id="psa-42")

    first = await client.post(INVOICES, json=body, headers=key)
    again = await client.post(INVOICES, json=body, headers=key)
    by_staff = await client.post(INVOICES, json=body, headers=billing.staff.headers)

    assert first.status_code == 201, first.text
    for response in (again, by_staff):
        assert response.status_code == 200, response.text
        assert response.json() == first.json()
    assert first.json()["external_id"] == "psa-42"
    assert await count_rows(factory, Invoice) == 1
    # Another PSA id is another invoice; another tenant's PSA may reuse the id.
    other = await client.post(INVOICES, json=body_for(billing, external_id="psa-43"), headers=key)
    assert other.status_code == 201
    elsewhere = await billing_world(factory, client, "Other MSP")
    theirs = await client.post(
        INVOICES,
        json={**body_for(elsewhere), "external_id": "psa-42"},
        headers=elsewhere.staff.headers,
    )
    assert theirs.status_code == 201, theirs.text
    assert theirs.json()["id"] != first.json()["id"]
    assert await count_rows(factory, Invoice) == 3


async def test_the_same_external_id_pushed_at_once_is_one_invoice(
    client: AsyncClient, factory: Factory, billing: Billing
) -> None:
    key = await integration_key(client, billing)
    body = body_for(billing, external_id="psa-race")
    responses = await asyncio.gather(
        *(client.post(INVOICES, json=body, headers=key) for _ in range(5))
    )
    assert sorted(r.status_code for r in responses) == [200, 200, 200, 200, 201], [
        r.text for r in responses
    ]
    assert len({r.json()["id"] for r in responses}) == 1
    assert await count_rows(factory, Invoice) == 1


async def test_an_idempotency_key_replays_the_draft(
    client: AsyncClient, factory: Factory, billing: Billing
) -> None:
    headers = {**billing.staff.headers, "Idempotency-Key": "draft-1"}
    first = await client.post(INVOICES, json=body_for(billing), headers=headers)
    again = await client.post(INVOICES, json=body_for(billing), headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    other = await client.post(INVOICES, json=body_for(billing, (2, 1)), headers=headers)
    assert_problem(other, 422, "idempotency-key-reused")
    assert await count_rows(factory, Invoice) == 1


async def test_clients_never_see_drafts(
    client: AsyncClient, factory: Factory, billing: Billing
) -> None:
    draft = (
        await client.post(INVOICES, json=body_for(billing), headers=billing.staff.headers)
    ).json()
    contact = billing.contact.headers

    assert_problem(await client.get(f"{INVOICES}/{draft['id']}", headers=contact), 404)
    assert_problem(await client.get(f"{INVOICES}/{draft['id']}/pdf", headers=contact), 404)
    assert (await client.get(INVOICES, headers=contact)).json()["items"] == []
    drafts = await client.get(INVOICES, params={"status": "draft"}, headers=contact)
    assert (drafts.status_code, drafts.json()["items"]) == (200, [])
    # Staff do.
    staff = await client.get(INVOICES, params={"status": "draft"}, headers=billing.staff.headers)
    assert [i["id"] for i in staff.json()["items"]] == [draft["id"]]
