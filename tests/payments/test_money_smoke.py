"""The whole money path once, end to end: method, invoice, pay, decline, refund."""

from datetime import date, timedelta

from httpx import AsyncClient

from tests.factories import Factory


async def test_pay_decline_refund(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    category = await factory.category(world.tenant)
    staff, contact = world.staff.headers, world.contact.headers

    card = await client.post(
        "/api/v1/payment-methods", json={"type": "card", "token": "tok_visa"}, headers=contact
    )
    assert card.status_code == 201, card.text
    assert card.json()["is_default"] is True
    declining = await client.post(
        "/api/v1/payment-methods",
        json={"type": "card", "token": "tok_chargeDeclined"},
        headers=contact,
    )
    assert declining.status_code == 201, declining.text

    due = (date.today() + timedelta(days=30)).isoformat()
    draft = await client.post(
        "/api/v1/invoices",
        json={
            "client_id": str(world.client.id),
            "currency": "USD",
            "due_date": due,
            "lines": [
                {
                    "description": "Hosting",
                    "service_category_id": str(category.id),
                    "quantity": 2,
                    "unit_amount": 5000,
                }
            ],
        },
        headers=staff,
    )
    assert draft.status_code == 201, draft.text
    invoice_id = draft.json()["id"]
    assert draft.json()["total"] == 10000
    issued = await client.post(f"/api/v1/invoices/{invoice_id}/issue", headers=staff)
    assert issued.status_code == 200, issued.text
    assert issued.json()["status"] == "open"
    assert issued.json()["number"] == "INV-000001"

    declined = await client.post(
        f"/api/v1/invoices/{invoice_id}/pay",
        json={"payment_method_id": declining.json()["id"]},
        headers=contact,
    )
    assert declined.status_code == 402, declined.text
    assert declined.json()["decline_code"] == "card_declined"

    paid = await client.post(
        f"/api/v1/invoices/{invoice_id}/pay",
        json={"payment_method_id": card.json()["id"], "amount": 4000},
        headers={**contact, "Idempotency-Key": "k1"},
    )
    assert paid.status_code == 201, paid.text
    replay = await client.post(
        f"/api/v1/invoices/{invoice_id}/pay",
        json={"payment_method_id": card.json()["id"], "amount": 4000},
        headers={**contact, "Idempotency-Key": "k1"},
    )
    assert replay.status_code == 201
    assert replay.json() == paid.json()
    invoice = (await client.get(f"/api/v1/invoices/{invoice_id}", headers=contact)).json()
    assert (invoice["amount_paid"], invoice["balance"]) == (4000, 6000)

    refund = await client.post(
        f"/api/v1/payments/{paid.json()['id']}/refunds", json={"amount": 1000}, headers=staff
    )
    assert refund.status_code == 201, refund.text
    invoice = (await client.get(f"/api/v1/invoices/{invoice_id}", headers=contact)).json()
    assert (invoice["amount_paid"], invoice["balance"]) == (3000, 7000)

    history = (await client.get("/api/v1/payments", headers=contact)).json()["items"]
    assert [p["status"] for p in history] == ["succeeded", "failed"]
    assert history[0]["allocations"][0]["invoice_number"] == "INV-000001"
    pdf = await client.get(f"/api/v1/invoices/{invoice_id}/pdf", headers=contact)
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF")
    fees = (await client.get("/api/v1/platform-fees", headers=staff)).json()
    assert (fees["total"], fees["count"]) == (100, 2)
