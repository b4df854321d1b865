"""The invoice as a PDF: staff get any of the tenant's; a client gets its own issued ones."""

from __future__ import annotations

from typing import Any

from httpx import AsyncClient

from tests.factories import Factory, api_key_for, assert_problem, bearer
from tests.payments.helpers import (
    INVOICES,
    NO_SUCH_ID,
    Billing,
    billing_world,
    draft_invoice,
    open_invoice,
    pay,
    refund,
)


def assert_pdf(response: Any) -> None:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    assert response.content.rstrip().endswith(b"%%EOF")


async def test_a_client_downloads_its_invoice(
    client: AsyncClient, billing: Billing, invoice: dict[str, Any]
) -> None:
    payment = (await pay(client, billing.contact, invoice["id"], billing.card["id"], 4_000)).json()
    assert (await refund(client, billing.staff, payment["id"], 1_000)).status_code == 201

    response = await client.get(f"{INVOICES}/{invoice['id']}/pdf", headers=billing.contact.headers)

    assert_pdf(response)
    assert "INV-000001.pdf" in response.headers["content-disposition"]


async def test_staff_and_integrations_download_drafts_too(
    client: AsyncClient, factory: Factory, billing: Billing
) -> None:
    draft = await draft_invoice(
        client, billing.staff, billing.client_id, billing.category, memo="Thanks!"
    )
    url = f"{INVOICES}/{draft['id']}/pdf"
    assert_pdf(await client.get(url, headers=billing.staff.headers))
    _key, secret = await api_key_for(factory, billing.world.tenant)
    assert_pdf(await client.get(url, headers=bearer(secret)))
    # ... but the client it is for cannot see it yet.
    assert_problem(await client.get(url, headers=billing.contact.headers), 404)


async def test_text_outside_latin_1_does_not_break_the_pdf(
    client: AsyncClient, billing: Billing
) -> None:
    invoice = await open_invoice(
        client,
        billing.staff,
        billing.client_id,
        billing.category,
        memo="Danke schön — 谢谢 — 🚀 " + "long line " * 200,
    )
    assert_pdf(await client.get(f"{INVOICES}/{invoice['id']}/pdf", headers=billing.contact.headers))


async def test_another_clients_pdf_is_not_found(
    client: AsyncClient, factory: Factory, billing: Billing, invoice: dict[str, Any]
) -> None:
    neighbour = await factory.client(billing.world.tenant, "Globex")
    neighbour_contact = await factory.contact(billing.world.tenant, neighbour)
    theirs = await open_invoice(client, billing.staff, neighbour.id, billing.category)
    elsewhere = await billing_world(factory, client, "Other MSP")

    unknown = await client.get(f"{INVOICES}/{NO_SUCH_ID}/pdf", headers=billing.contact.headers)
    expected = assert_problem(unknown, 404)["detail"]
    for person, invoice_id in (
        (billing.contact, theirs["id"]),
        (neighbour_contact, invoice["id"]),
        (elsewhere.contact, invoice["id"]),
        (elsewhere.staff, invoice["id"]),
    ):
        response = await client.get(f"{INVOICES}/{invoice_id}/pdf", headers=person.headers)
        assert assert_problem(response, 404)["detail"] == expected
        assert b"%PDF" not in response.content
    assert_problem(await client.get(f"{INVOICES}/{invoice['id']}/pdf"), 401)
