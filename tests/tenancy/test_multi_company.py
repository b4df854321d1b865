"""One person, several companies of a tenant: inviting a contact the tenant already has adds
the company; `GET /me` lists them; a switch gives tokens for another one, and every client
query then sees that company only (the isolation checks include the switched token)."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from httpx import AsyncClient

from app.models import Client, ServiceCategory, User
from tests.factories import PASSWORD, Factory, World, assert_problem, bearer, count_rows

API = "/api/v1"


async def draft_and_issue(
    client: AsyncClient, world: World, company: Client, category: ServiceCategory
) -> str:
    body = {
        "client_id": str(company.id),
        "currency": "USD",
        "due_date": (date.today() + timedelta(days=10)).isoformat(),
        "lines": [
            {
                "description": f"Hosting for {company.name}",
                "service_category_id": str(category.id),
                "quantity": 1,
                "unit_amount": 5_000,
            }
        ],
    }
    created = await client.post(f"{API}/invoices", headers=world.staff.headers, json=body)
    assert created.status_code == 201, created.text
    invoice_id: str = created.json()["id"]
    issued = await client.post(f"{API}/invoices/{invoice_id}/issue", headers=world.staff.headers)
    assert issued.status_code == 200, issued.text
    return invoice_id


async def add_company(client: AsyncClient, world: World, company: Client) -> Any:
    return await client.post(
        f"{API}/clients/{company.id}/users",
        headers=world.staff.headers,
        json={"email": world.contact.user.email, "full_name": "Ignored Name"},
    )


async def test_inviting_an_existing_contact_adds_the_company(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    beta = await factory.client(world.tenant, "Beta Ltd")
    response = await add_company(client, world, beta)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["id"] == str(world.contact.id)
    assert body["temporary_password"] is None
    assert body["client_id"] == str(beta.id)
    assert body["full_name"] == "Test Client"  # their own name stays
    assert await count_rows(factory, User) == 2
    listed = await client.get(f"{API}/clients/{beta.id}/users", headers=world.staff.headers)
    assert [u["id"] for u in listed.json()["items"]] == [str(world.contact.id)]
    # Their password still works; asking again for the same company is a conflict.
    await factory.sign_in(world.contact.user.email, PASSWORD)
    assert_problem(await add_company(client, world, beta), 409, "already-a-contact")


async def test_me_lists_the_companies_and_the_active_one(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    beta = await factory.client(world.tenant, "Beta Ltd")
    await add_company(client, world, beta)
    me = (await client.get(f"{API}/me", headers=world.contact.headers)).json()
    assert me["client_id"] == str(world.client.id)
    assert me["clients"] == [
        {"id": str(world.client.id), "name": "Acme Corp"},
        {"id": str(beta.id), "name": "Beta Ltd"},
    ]
    staff_me = (await client.get(f"{API}/me", headers=world.staff.headers)).json()
    assert staff_me["clients"] == [] and staff_me["client_id"] is None


async def test_a_switched_token_sees_only_the_active_company(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    beta = await factory.client(world.tenant, "Beta Ltd")
    category = await factory.category(world.tenant)
    acme_invoice = await draft_and_issue(client, world, world.client, category)
    beta_invoice = await draft_and_issue(client, world, beta, category)
    await add_company(client, world, beta)
    signed_in = await factory.sign_in(world.contact.user.email)

    switched = await client.post(
        f"{API}/auth/switch-client",
        headers=bearer(signed_in["access_token"]),
        json={"client_id": str(beta.id)},
    )
    assert switched.status_code == 200, switched.text
    beta_headers = bearer(switched.json()["access_token"])
    me = (await client.get(f"{API}/me", headers=beta_headers)).json()
    assert me["client_id"] == str(beta.id)
    listed = (await client.get(f"{API}/invoices", headers=beta_headers)).json()["items"]
    assert [i["id"] for i in listed] == [beta_invoice]
    # The other company's invoice is 404 with the switched token, and the reverse.
    assert_problem(await client.get(f"{API}/invoices/{acme_invoice}", headers=beta_headers), 404)
    ok = await client.get(f"{API}/invoices/{beta_invoice}", headers=beta_headers)
    assert ok.status_code == 200
    # Even naming the other company outright does not reach it.
    named = await client.get(
        f"{API}/invoices", headers=beta_headers, params={"client_id": str(world.client.id)}
    )
    assert all(i["id"] != acme_invoice for i in named.json().get("items", []))
    # The session switched from is over; the new one refreshes into the same company.
    assert (
        await client.get(f"{API}/me", headers=bearer(signed_in["access_token"]))
    ).status_code == 401
    refreshed = await client.post(
        f"{API}/auth/refresh", json={"refresh_token": switched.json()["refresh_token"]}
    )
    again = (await client.get(f"{API}/me", headers=bearer(refreshed.json()["access_token"]))).json()
    assert again["client_id"] == str(beta.id)
    # The first company's token (another session) still sees only the first company.
    acme_items = (await client.get(f"{API}/invoices", headers=world.contact.headers)).json()
    assert [i["id"] for i in acme_items["items"]] == [acme_invoice]


async def test_switching_to_a_company_not_ones_own_is_404(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    other = await factory.world("Other MSP")
    stranger_company = await factory.client(world.tenant, "Not Yours Inc")
    for target in (stranger_company.id, other.client.id, uuid.uuid4()):
        response = await client.post(
            f"{API}/auth/switch-client",
            headers=world.contact.headers,
            json={"client_id": str(target)},
        )
        assert_problem(response, 404)
    # The session is untouched by a refused switch.
    assert (await client.get(f"{API}/me", headers=world.contact.headers)).status_code == 200
    staff = await client.post(
        f"{API}/auth/switch-client",
        headers=world.staff.headers,
        json={"client_id": str(world.client.id)},
    )
    assert_problem(staff, 403)
    bad = await client.post(
        f"{API}/auth/switch-client", headers=world.contact.headers, json={"client_id": "nope"}
    )
    assert_problem(bad, 422)


async def test_a_forged_client_claim_does_not_move_a_session(
    client: AsyncClient, factory: Factory
) -> None:
    """The active company is the session's: a token naming another one is refused."""
    from app.core.security import create_access_token
    from tests.factories import factory_session_id

    world = await factory.world()
    beta = await factory.client(world.tenant, "Beta Ltd")
    await add_company(client, world, beta)
    forged = create_access_token(
        factory.settings,
        user_id=world.contact.id,
        tenant_id=world.tenant.id,
        token_version=world.contact.user.token_version,
        session_id=factory_session_id(world.contact.user),
        client_id=beta.id,
    )
    assert_problem(await client.get(f"{API}/me", headers=bearer(forged)), 401, "invalid-token")


async def test_one_email_in_two_tenants_signs_into_the_active_account(
    client: AsyncClient, factory: Factory
) -> None:
    """Each tenant has its own account of the email; a deactivated one does not shadow the
    other when the passwords happen to be the same."""
    first = await factory.world("First MSP")
    second = await factory.world("Second MSP")
    email = "shared.person@example.com"
    old = await factory.user(first.tenant, client=first.client, email=email)
    new = await factory.user(second.tenant, client=second.client, email=email)
    response = await client.patch(
        f"{API}/clients/{first.client.id}/users/{old.id}",
        headers=first.staff.headers,
        json={"active": False},
    )
    assert response.status_code == 200, response.text
    pair = await factory.sign_in(email)
    me = (await client.get(f"{API}/me", headers=bearer(pair["access_token"]))).json()
    assert me["id"] == str(new.id) and me["tenant_id"] == str(second.tenant.id)
