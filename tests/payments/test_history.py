"""Payment history: what each payment paid, with which method, and what was refunded;
a client sees only its own, staff see the tenant's, nobody sees another tenant's."""

from __future__ import annotations

from typing import Any

from httpx import AsyncClient

from tests.factories import Factory, api_key_for, assert_problem, bearer
from tests.payments.helpers import (
    METHODS,
    NO_SUCH_ID,
    PAYMENTS,
    Billing,
    add_method,
    billing_world,
    open_invoice,
    pay,
    refund,
)


async def test_the_history_tells_what_each_payment_did(
    client: AsyncClient, billing: Billing, invoice: dict[str, Any]
) -> None:
    declining = await add_method(client, billing.contact, "tok_chargeDeclined")
    failed = await pay(client, billing.contact, invoice["id"], declining["id"], 1_000)
    assert failed.status_code == 402
    ok = (await pay(client, billing.contact, invoice["id"], billing.card["id"], 6_000)).json()
    assert (await refund(client, billing.staff, ok["id"], 500)).status_code == 201

    items = (await client.get(PAYMENTS, headers=billing.contact.headers)).json()["items"]

    assert [(p["status"], p["amount"]) for p in items] == [("succeeded", 6_000), ("failed", 1_000)]
    succeeded, declined = items
    assert succeeded["payment_method"] == {
        "id": billing.card["id"],
        "type": "card",
        "brand": "visa",
        "last4": "4242",
    }
    assert succeeded["allocations"] == [
        {"invoice_id": invoice["id"], "invoice_number": "INV-000001", "amount": 6_000}
    ]
    assert succeeded["amount_refunded"] == 500
    assert succeeded["currency"] == "USD"
    assert succeeded["created_at"].endswith("Z")
    assert (declined["payment_method"]["last4"], declined["allocations"]) == ("0002", [])
    assert declined["failure_code"] == "card_declined"
    assert "refunds" not in succeeded  # the list stays light; the detail has them

    detail = (await client.get(f"{PAYMENTS}/{ok['id']}", headers=billing.contact.headers)).json()
    assert [(r["amount"], r["status"]) for r in detail["refunds"]] == [(500, "succeeded")]
    assert detail["allocations"] == succeeded["allocations"]
    # Nothing the gateway uses to move money is shown.
    text = str(items) + str(detail)
    for secret in ("pm_fake", "pi_fake", "cus_fake", "re_fake", f"payment_{ok['id']}"):
        assert secret not in text


async def test_a_deleted_card_still_names_its_payments(
    client: AsyncClient, billing: Billing, invoice: dict[str, Any]
) -> None:
    spare = await add_method(client, billing.contact, "tok_mastercard")
    done = (await pay(client, billing.contact, invoice["id"], spare["id"], 100)).json()
    assert (
        await client.delete(f"{METHODS}/{spare['id']}", headers=billing.contact.headers)
    ).status_code == 204
    shown = (await client.get(f"{PAYMENTS}/{done['id']}", headers=billing.contact.headers)).json()
    assert (shown["payment_method"]["brand"], shown["payment_method"]["last4"]) == (
        "mastercard",
        "4444",
    )


async def test_another_clients_payment_is_not_found(
    client: AsyncClient, factory: Factory, billing: Billing, invoice: dict[str, Any]
) -> None:
    mine = (await pay(client, billing.contact, invoice["id"], billing.card["id"], 100)).json()
    neighbour = await factory.client(billing.world.tenant, "Globex")
    neighbour_contact = await factory.contact(billing.world.tenant, neighbour)
    elsewhere = await billing_world(factory, client, "Other MSP")

    unknown = await client.get(f"{PAYMENTS}/{NO_SUCH_ID}", headers=billing.contact.headers)
    answers = [
        await client.get(f"{PAYMENTS}/{mine['id']}", headers=neighbour_contact.headers),
        await client.get(f"{PAYMENTS}/{mine['id']}", headers=elsewhere.contact.headers),
        await client.get(f"{PAYMENTS}/{mine['id']}", headers=elsewhere.staff.headers),
    ]
    expected = assert_problem(unknown, 404)["detail"]
    for answer in answers:
        assert assert_problem(answer, 404)["detail"] == expected
    # Nor does it show in their lists, even when asked for by client id.
    for person in (neighbour_contact, elsewhere.contact, elsewhere.staff):
        listing = await client.get(
            PAYMENTS, params={"client_id": str(billing.client_id)}, headers=person.headers
        )
        assert listing.status_code == 200
        assert listing.json()["items"] == []


async def test_staff_see_every_clients_payments_and_filter_them(
    client: AsyncClient, factory: Factory, billing: Billing, invoice: dict[str, Any]
) -> None:
    neighbour = await factory.client(billing.world.tenant, "Globex")
    neighbour_contact = await factory.contact(billing.world.tenant, neighbour)
    neighbour_card = await add_method(client, neighbour_contact)
    theirs = await open_invoice(client, billing.staff, neighbour.id, billing.category)
    declining = await add_method(client, billing.contact, "tok_chargeDeclined")

    failed = assert_problem(
        await pay(client, billing.contact, invoice["id"], declining["id"]), 402
    )["payment_id"]
    mine = (await pay(client, billing.contact, invoice["id"], billing.card["id"], 100)).json()
    other = (await pay(client, neighbour_contact, theirs["id"], neighbour_card["id"])).json()

    async def ids(person: Any, **params: str) -> list[str]:
        response = await client.get(PAYMENTS, params=params, headers=person.headers)
        assert response.status_code == 200, response.text
        return [p["id"] for p in response.json()["items"]]

    staff = billing.staff
    assert await ids(staff) == [other["id"], mine["id"], failed]
    assert await ids(staff, client_id=str(neighbour.id)) == [other["id"]]
    assert await ids(staff, status="failed") == [failed]
    assert await ids(staff, status="succeeded") == [other["id"], mine["id"]]
    assert await ids(staff, invoice_id=invoice["id"]) == [mine["id"], failed]
    assert await ids(staff, invoice_id=invoice["id"], status="succeeded") == [mine["id"]]
    # A client's own filter cannot widen its view.
    assert await ids(billing.contact, client_id=str(neighbour.id)) == [mine["id"], failed]
    assert await ids(neighbour_contact) == [other["id"]]
    # An integration key reads payments too.
    _key, secret = await api_key_for(factory, billing.world.tenant)
    by_key = await client.get(PAYMENTS, headers=bearer(secret))
    assert [p["id"] for p in by_key.json()["items"]] == [other["id"], mine["id"], failed]
    assert_problem(
        await client.get(PAYMENTS, params={"status": "lost"}, headers=staff.headers), 422
    )


async def test_the_history_is_paged_by_cursor(
    client: AsyncClient, billing: Billing, invoice: dict[str, Any]
) -> None:
    made = [
        (await pay(client, billing.contact, invoice["id"], billing.card["id"], 100)).json()["id"]
        for _ in range(5)
    ]
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = (await client.get(PAYMENTS, params=params, headers=billing.contact.headers)).json()
        seen.extend(p["id"] for p in page["items"])
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(made))
    assert pages == 3
    bad = await client.get(PAYMENTS, params={"cursor": "nope"}, headers=billing.contact.headers)
    assert_problem(bad, 422)
