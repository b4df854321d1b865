"""Issuing (draft → open, with the tenant's next number and today's date) and voiding
(only with nothing paid)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import FrozenClock, utcnow
from app.gateways.fake import FakeGateway
from app.models import Tenant
from tests.factories import Factory, api_key_for, assert_problem, bearer
from tests.payments.helpers import (
    INVOICES,
    NO_SUCH_ID,
    Billing,
    billing_world,
    draft_invoice,
    invoice_row,
    open_invoice,
    pay,
    refund,
)


async def test_issuing_numbers_and_dates_the_invoice(
    client: AsyncClient, factory: Factory, billing: Billing
) -> None:
    draft = await draft_invoice(client, billing.staff, billing.client_id, billing.category)
    # Late in the evening in UTC is already tomorrow in Auckland: "today" is the tenant's.
    evening = utcnow().replace(hour=23, minute=30)
    async with factory.sessionmaker() as session, session.begin():
        tenant = await session.get(Tenant, billing.world.tenant.id)
        assert tenant is not None
        tenant.timezone = "Pacific/Auckland"
    with FrozenClock(evening):
        response = await client.post(
            f"{INVOICES}/{draft['id']}/issue",
            headers=bearer(factory.token_for(billing.staff.user)),
        )

    assert response.status_code == 200, response.text
    issued = response.json()
    assert (issued["status"], issued["number"]) == ("open", "INV-000001")
    assert issued["issued_on"] == (evening.date() + timedelta(days=1)).isoformat()
    assert (issued["total"], issued["balance"], issued["amount_paid"]) == (10_000, 10_000, 0)
    assert issued["lines"] == draft["lines"]
    # The client sees it now.
    seen = await client.get(f"{INVOICES}/{draft['id']}", headers=billing.contact.headers)
    assert seen.status_code == 200
    assert seen.json()["number"] == "INV-000001"


async def test_numbers_are_sequential_per_tenant_in_the_order_of_issue(
    client: AsyncClient, factory: Factory, billing: Billing
) -> None:
    drafts = [
        await draft_invoice(client, billing.staff, billing.client_id, billing.category)
        for _ in range(3)
    ]
    numbers = {}
    for draft in reversed(drafts):  # issued in the other order than drafted
        issued = await client.post(f"{INVOICES}/{draft['id']}/issue", headers=billing.staff.headers)
        numbers[draft["id"]] = issued.json()["number"]
    assert [numbers[d["id"]] for d in reversed(drafts)] == [
        "INV-000001",
        "INV-000002",
        "INV-000003",
    ]

    elsewhere = await billing_world(factory, client, "Other MSP")
    theirs = await open_invoice(client, elsewhere.staff, elsewhere.client_id, elsewhere.category)
    assert theirs["number"] == "INV-000001"


async def test_drafts_issued_at_once_get_distinct_numbers(
    client: AsyncClient, billing: Billing
) -> None:
    drafts = [
        await draft_invoice(client, billing.staff, billing.client_id, billing.category)
        for _ in range(6)
    ]
    responses = await asyncio.gather(
        *(client.post(f"{INVOICES}/{d['id']}/issue", headers=billing.staff.headers) for d in drafts)
    )
    assert [r.status_code for r in responses] == [200] * 6, [r.text for r in responses]
    assert sorted(r.json()["number"] for r in responses) == [f"INV-00000{n}" for n in range(1, 7)]


async def test_issuing_twice_at_once_issues_once(client: AsyncClient, billing: Billing) -> None:
    draft = await draft_invoice(client, billing.staff, billing.client_id, billing.category)
    responses = await asyncio.gather(
        *(
            client.post(f"{INVOICES}/{draft['id']}/issue", headers=billing.staff.headers)
            for _ in range(4)
        )
    )
    assert sorted(r.status_code for r in responses) == [200, 409, 409, 409]
    # The number was spent once: the next invoice is INV-000002.
    following = await open_invoice(client, billing.staff, billing.client_id, billing.category)
    assert following["number"] == "INV-000002"


async def test_only_a_draft_can_be_issued(
    client: AsyncClient, billing: Billing, invoice: dict[str, Any]
) -> None:
    again = await client.post(f"{INVOICES}/{invoice['id']}/issue", headers=billing.staff.headers)
    body = assert_problem(again, 409, "invoice-state-conflict")
    assert "open" in body["detail"]
    draft = await draft_invoice(client, billing.staff, billing.client_id, billing.category)
    assert (
        await client.post(f"{INVOICES}/{draft['id']}/void", headers=billing.staff.headers)
    ).is_success
    assert_problem(
        await client.post(f"{INVOICES}/{draft['id']}/issue", headers=billing.staff.headers), 409
    )


async def test_an_invoice_with_nothing_to_pay_is_paid_when_issued(
    client: AsyncClient, billing: Billing
) -> None:
    free = await open_invoice(client, billing.staff, billing.client_id, billing.category, (3, 0))
    assert (free["status"], free["total"], free["balance"]) == ("paid", 0, 0)


async def test_who_may_issue(client: AsyncClient, factory: Factory, billing: Billing) -> None:
    draft = await draft_invoice(client, billing.staff, billing.client_id, billing.category)
    url = f"{INVOICES}/{draft['id']}/issue"
    assert_problem(await client.post(url, headers=billing.contact.headers), 403)
    elsewhere = await billing_world(factory, client, "Other MSP")
    assert_problem(await client.post(url, headers=elsewhere.staff.headers), 404)
    assert_problem(
        await client.post(f"{INVOICES}/{NO_SUCH_ID}/issue", headers=billing.staff.headers), 404
    )
    _key, secret = await api_key_for(factory, billing.world.tenant)
    by_key = await client.post(url, headers=bearer(secret))
    assert by_key.status_code == 200, by_key.text
    assert by_key.json()["number"] == "INV-000001"


async def test_voiding_an_unpaid_invoice(
    client: AsyncClient, billing: Billing, invoice: dict[str, Any]
) -> None:
    response = await client.post(f"{INVOICES}/{invoice['id']}/void", headers=billing.staff.headers)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "void"
    assert response.json()["number"] == invoice["number"]  # a voided number is never reused
    again = await client.post(f"{INVOICES}/{invoice['id']}/void", headers=billing.staff.headers)
    assert_problem(again, 409, "invoice-state-conflict")
    listed = await client.get(INVOICES, params={"status": "void"}, headers=billing.contact.headers)
    assert [i["id"] for i in listed.json()["items"]] == [invoice["id"]]


async def test_voiding_is_refused_once_anything_is_paid(
    client: AsyncClient,
    billing: Billing,
    invoice: dict[str, Any],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    assert (await pay(client, billing.contact, invoice["id"], billing.card["id"], 1)).is_success
    response = await client.post(f"{INVOICES}/{invoice['id']}/void", headers=billing.staff.headers)
    assert_problem(response, 409, "invoice-state-conflict")
    row = await invoice_row(sessionmaker, invoice["id"])
    assert (row.status, row.amount_paid) == ("open", 1)

    assert (await pay(client, billing.contact, invoice["id"], billing.card["id"])).is_success
    paid = await client.post(f"{INVOICES}/{invoice['id']}/void", headers=billing.staff.headers)
    assert_problem(paid, 409, "invoice-state-conflict")
    assert (await invoice_row(sessionmaker, invoice["id"])).status == "paid"


async def test_voiding_is_refused_while_a_payment_is_pending(
    client: AsyncClient,
    billing: Billing,
    invoice: dict[str, Any],
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    gateway.fail_next(mode="lost_response")
    assert_problem(await pay(client, billing.contact, invoice["id"], billing.card["id"]), 503)
    response = await client.post(f"{INVOICES}/{invoice['id']}/void", headers=billing.staff.headers)
    assert_problem(response, 409)
    assert (await invoice_row(sessionmaker, invoice["id"])).status == "open"


async def test_a_refunded_payment_still_counts_as_paid_until_refunded_in_full(
    client: AsyncClient,
    billing: Billing,
    invoice: dict[str, Any],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    payment = (await pay(client, billing.contact, invoice["id"], billing.card["id"], 4_000)).json()
    assert (await refund(client, billing.staff, payment["id"], 3_000)).status_code == 201
    assert_problem(
        await client.post(f"{INVOICES}/{invoice['id']}/void", headers=billing.staff.headers), 409
    )
    assert (await invoice_row(sessionmaker, invoice["id"])).amount_paid == 1_000


@pytest.mark.parametrize("who", ["contact", "api_key", "other_tenant"])
async def test_only_the_tenants_staff_void(
    client: AsyncClient,
    factory: Factory,
    billing: Billing,
    invoice: dict[str, Any],
    sessionmaker: async_sessionmaker[AsyncSession],
    who: str,
) -> None:
    if who == "contact":
        headers, status = billing.contact.headers, 403
    elif who == "api_key":
        headers, status = bearer((await api_key_for(factory, billing.world.tenant))[1]), 403
    else:
        headers, status = (await billing_world(factory, client, "Other MSP")).staff.headers, 404
    response = await client.post(f"{INVOICES}/{invoice['id']}/void", headers=headers)
    assert_problem(response, status)
    assert (await invoice_row(sessionmaker, invoice["id"])).status == "open"
