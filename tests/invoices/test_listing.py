"""Reading invoices: filters (status, overdue on the tenant's today), keyset pagination,
the detail with lines and payments, and who sees what."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from httpx import AsyncClient

from app.core.clock import FrozenClock
from tests.factories import Factory, Person, api_key_for, assert_problem, bearer
from tests.payments.helpers import (
    INVOICES,
    NO_SUCH_ID,
    Billing,
    add_method,
    billing_world,
    draft_invoice,
    open_invoice,
    pay,
)

# A made-up "today": nothing here depends on the real date.
NOON = datetime(2031, 5, 20, 12, 0, tzinfo=UTC)
TODAY = NOON.date()


async def ids(client: AsyncClient, person: Person | dict[str, str], **params: str) -> list[str]:
    headers = person.headers if isinstance(person, Person) else person
    response = await client.get(INVOICES, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return [i["id"] for i in response.json()["items"]]


async def test_filter_by_status(client: AsyncClient, billing: Billing) -> None:
    staff = billing.staff
    draft = await draft_invoice(client, staff, billing.client_id, billing.category)
    open_ = await open_invoice(client, staff, billing.client_id, billing.category)
    paid = await open_invoice(client, staff, billing.client_id, billing.category)
    assert (await pay(client, billing.contact, paid["id"], billing.card["id"])).is_success
    void = await open_invoice(client, staff, billing.client_id, billing.category)
    assert (await client.post(f"{INVOICES}/{void['id']}/void", headers=staff.headers)).is_success

    assert await ids(client, staff) == [void["id"], paid["id"], open_["id"], draft["id"]]
    for status, expected in (("draft", draft), ("open", open_), ("paid", paid), ("void", void)):
        assert await ids(client, staff, status=status) == [expected["id"]]
    assert await ids(client, billing.contact) == [void["id"], paid["id"], open_["id"]]
    assert await ids(client, billing.contact, status="paid") == [paid["id"]]
    assert_problem(
        await client.get(INVOICES, params={"status": "late"}, headers=staff.headers), 422
    )


async def test_overdue_means_open_and_past_due_on_the_portals_today(
    client: AsyncClient, factory: Factory
) -> None:
    with FrozenClock(NOON) as clock:
        billing = await billing_world(factory, client)
        staff = billing.staff

        async def invoice_due(day: date, then: str = "open") -> str:
            found = await open_invoice(
                client, staff, billing.client_id, billing.category, due_date=day
            )
            if then == "paid":
                assert (
                    await pay(client, billing.contact, found["id"], billing.card["id"])
                ).is_success
            if then == "void":
                url = f"{INVOICES}/{found['id']}/void"
                assert (await client.post(url, headers=staff.headers)).is_success
            return str(found["id"])

        yesterday = TODAY - timedelta(days=1)
        late = await invoice_due(yesterday)
        long_late = await invoice_due(TODAY - timedelta(days=90))
        due_today = await invoice_due(TODAY)
        await invoice_due(TODAY + timedelta(days=1))
        await invoice_due(yesterday, "paid")
        await invoice_due(yesterday, "void")
        await draft_invoice(client, staff, billing.client_id, billing.category, due_date=yesterday)
        partly = await invoice_due(yesterday)
        assert (await pay(client, billing.contact, partly, billing.card["id"], 1)).is_success

        expected = {late, long_late, partly}
        assert set(await ids(client, staff, overdue="true")) == expected
        assert set(await ids(client, billing.contact, overdue="true")) == expected
        assert await ids(client, staff, overdue="true", status="paid") == []
        flagged = (await client.get(INVOICES, headers=staff.headers)).json()["items"]
        assert {i["id"] for i in flagged if i["overdue"]} == expected
        detail = await client.get(f"{INVOICES}/{late}", headers=staff.headers)
        assert detail.json()["overdue"] is True

        # A day later, what was due today is overdue too.
        clock.advance(days=1)
        fresh = bearer(factory.token_for(staff.user))
        assert set(await ids(client, fresh, overdue="true")) == {*expected, due_today}


async def test_pages_follow_the_cursor_newest_first(client: AsyncClient, billing: Billing) -> None:
    made = [
        (await open_invoice(client, billing.staff, billing.client_id, billing.category))["id"]
        for _ in range(5)
    ]
    first = (
        await client.get(INVOICES, params={"limit": "2"}, headers=billing.staff.headers)
    ).json()
    assert [i["id"] for i in first["items"]] == [made[4], made[3]]
    assert first["next_cursor"]
    # An invoice created meanwhile does not shift the pages already under way.
    await open_invoice(client, billing.staff, billing.client_id, billing.category)
    seen = [i["id"] for i in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        page = (
            await client.get(
                INVOICES, params={"limit": "2", "cursor": cursor}, headers=billing.staff.headers
            )
        ).json()
        seen.extend(i["id"] for i in page["items"])
        cursor = page["next_cursor"]
    assert seen == list(reversed(made))

    for params in ({"limit": "0"}, {"limit": "201"}, {"cursor": "garbage"}):
        response = await client.get(INVOICES, params=params, headers=billing.staff.headers)
        assert_problem(response, 422)


async def test_each_client_sees_its_own_invoices(
    client: AsyncClient, factory: Factory, billing: Billing
) -> None:
    neighbour = await factory.client(billing.world.tenant, "Globex")
    neighbour_contact = await factory.contact(billing.world.tenant, neighbour)
    mine = await open_invoice(client, billing.staff, billing.client_id, billing.category)
    theirs = await open_invoice(client, billing.staff, neighbour.id, billing.category)
    elsewhere = await billing_world(factory, client, "Other MSP")
    await open_invoice(client, elsewhere.staff, elsewhere.client_id, elsewhere.category)

    assert await ids(client, billing.contact) == [mine["id"]]
    assert await ids(client, billing.contact, client_id=str(neighbour.id)) == [mine["id"]]
    assert await ids(client, neighbour_contact) == [theirs["id"]]
    assert await ids(client, billing.staff) == [theirs["id"], mine["id"]]
    assert await ids(client, billing.staff, client_id=str(neighbour.id)) == [theirs["id"]]
    _key, secret = await api_key_for(factory, billing.world.tenant)
    assert await ids(client, bearer(secret)) == [theirs["id"], mine["id"]]

    # Another client's invoice, or another tenant's, is not found: exactly like none at all.
    unknown = assert_problem(
        await client.get(f"{INVOICES}/{NO_SUCH_ID}", headers=billing.contact.headers), 404
    )
    for person, invoice_id in (
        (billing.contact, theirs["id"]),
        (neighbour_contact, mine["id"]),
        (elsewhere.contact, mine["id"]),
        (elsewhere.staff, mine["id"]),
    ):
        response = await client.get(f"{INVOICES}/{invoice_id}", headers=person.headers)
        assert assert_problem(response, 404)["detail"] == unknown["detail"]


async def test_the_detail_has_lines_and_payments(client: AsyncClient, billing: Billing) -> None:
    invoice = await open_invoice(
        client, billing.staff, billing.client_id, billing.category, (2, 1_500), (1, 7_000)
    )
    spare = await add_method(client, billing.contact, "tok_mastercard")
    declining = await add_method(client, billing.contact, "tok_chargeDeclined")
    first = (await pay(client, billing.contact, invoice["id"], billing.card["id"], 4_000)).json()
    assert (
        await pay(client, billing.contact, invoice["id"], declining["id"], 1)
    ).status_code == 402
    second = (await pay(client, billing.contact, invoice["id"], spare["id"])).json()

    detail = (
        await client.get(f"{INVOICES}/{invoice['id']}", headers=billing.contact.headers)
    ).json()

    assert detail["lines"] == [
        {
            "description": "Service 1",
            "service_category_id": str(billing.category.id),
            "quantity": 2,
            "unit_amount": 1_500,
            "amount": 3_000,
            "tax_amount": 0,
            "tax_label": None,
        },
        {
            "description": "Service 2",
            "service_category_id": str(billing.category.id),
            "quantity": 1,
            "unit_amount": 7_000,
            "amount": 7_000,
            "tax_amount": 0,
            "tax_label": None,
        },
    ]
    assert [(p["payment_id"], p["amount"]) for p in detail["payments"]] == [
        (first["id"], 4_000),
        (second["id"], 6_000),
    ]
    assert all(p["paid_at"] for p in detail["payments"])
    assert (detail["status"], detail["total"], detail["amount_paid"], detail["balance"]) == (
        "paid",
        10_000,
        10_000,
        0,
    )
    listed = (await client.get(INVOICES, headers=billing.contact.headers)).json()["items"][0]
    assert "lines" not in listed
    assert {k: listed[k] for k in ("number", "status", "total", "amount_paid", "balance")} == {
        k: detail[k] for k in ("number", "status", "total", "amount_paid", "balance")
    }
    assert set(listed) >= {"id", "number", "status", "issued_on", "due_date", "currency"}
