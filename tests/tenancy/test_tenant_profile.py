"""The MSP's own profile (`GET/PATCH /tenant`, staff only): what its invoices say about it."""

from __future__ import annotations

from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from app.models import Tenant
from tests.factories import Factory, api_key_for, assert_problem, bearer, fetch

TENANT = "/api/v1/tenant"
ADDRESS = {
    "line1": "ul. Piotrkowska 100",
    "line2": "lok. 4",
    "city": "Łódź",
    "region": "łódzkie",
    "postal_code": "90-001",
    "country": "PL",
}
PROFILE = {
    "name": "Northwind Managed IT",
    "legal_name": "Northwind IT Sp. z o.o.",
    "email": "Billing@Northwind.Example",
    "phone": "+48 42 123-45-67",
    "tax_id": "PL7251234567",
    "address": ADDRESS,
    "payment_instructions": "Bank transfer:\nIBAN PL61 1090 1014 0000 0712 1981 2874",
}


async def test_staff_read_the_profile(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world("Northwind")
    response = await client.get(TENANT, headers=world.staff.headers)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "id": str(world.tenant.id),
        "name": "Northwind",
        "legal_name": None,
        "email": None,
        "phone": None,
        "tax_id": None,
        "address": None,
        "payment_instructions": None,
        "timezone": "UTC",
        "staff_totp_required": False,
        "logo": None,
        "created_at": response.json()["created_at"],
    }


async def test_staff_set_the_whole_profile(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    response = await client.patch(TENANT, json=PROFILE, headers=world.staff.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body == {
        **body,
        **PROFILE,
        "email": "billing@northwind.example",
        "address": ADDRESS,
    }
    assert (await client.get(TENANT, headers=world.staff.headers)).json() == body
    stored = await fetch(factory, Tenant, world.tenant.id)
    assert (stored.address_city, stored.address_country) == ("Łódź", "PL")


async def test_a_patch_changes_only_what_it_names(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    headers = world.staff.headers
    await client.patch(TENANT, json=PROFILE, headers=headers)

    response = await client.patch(TENANT, json={"phone": "+1 555 0100"}, headers=headers)
    assert response.json() == {**response.json(), "phone": "+1 555 0100", "tax_id": "PL7251234567"}
    assert response.json()["address"] == ADDRESS

    cleared = await client.patch(
        TENANT,
        json={"tax_id": None, "address": None, "legal_name": None, "payment_instructions": None},
        headers=headers,
    )
    assert cleared.status_code == 200, cleared.text
    body = cleared.json()
    assert (body["tax_id"], body["address"], body["legal_name"]) == (None, None, None)
    assert (body["name"], body["email"]) == ("Northwind Managed IT", "billing@northwind.example")
    stored = await fetch(factory, Tenant, world.tenant.id)
    assert stored.address_line1 is None
    assert stored.address_country is None


async def test_an_address_is_replaced_whole(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    await client.patch(TENANT, json={"address": ADDRESS}, headers=world.staff.headers)
    moved = {"line1": "1 Main Street", "country": "us"}
    response = await client.patch(TENANT, json={"address": moved}, headers=world.staff.headers)
    assert response.json()["address"] == {
        "line1": "1 Main Street",
        "line2": None,
        "city": None,
        "region": None,
        "postal_code": None,
        "country": "US",
    }


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"name": None}, ["body", "name"]),
        ({"name": "   "}, ["body", "name"]),
        ({"name": "x" * 201}, ["body", "name"]),
        ({"legal_name": ""}, ["body", "legal_name"]),
        ({"email": "not-an-email"}, ["body", "email"]),
        ({"phone": "call me"}, ["body", "phone"]),
        ({"phone": "12"}, ["body", "phone"]),
        ({"tax_id": "x" * 65}, ["body", "tax_id"]),
        ({"payment_instructions": "x" * 2001}, ["body", "payment_instructions"]),
        ({"address": {"country": "PL"}}, ["body", "address", "line1"]),
        ({"address": {"line1": "  ", "country": "PL"}}, ["body", "address", "line1"]),
        ({"address": {"line1": "1 Main St"}}, ["body", "address", "country"]),
        ({"address": {"line1": "1 Main St", "country": "XX"}}, ["body", "address", "country"]),
        ({"address": {"line1": "1 Main St", "country": "USA"}}, ["body", "address", "country"]),
        ({"address": {"line1": "1 Main\nSt", "country": "US"}}, ["body", "address", "line1"]),
        (
            {"address": {"line1": "1 Main St", "country": "US", "postal_code": "x" * 21}},
            ["body", "address", "postal_code"],
        ),
        (
            {"address": {"line1": "1 Main St", "country": "US", "state": "OR"}},
            ["body", "address", "state"],
        ),
        ({"timezone": "Europe/Warsaw"}, ["body", "timezone"]),
        ({"id": "00000000-0000-4000-8000-000000000000"}, ["body", "id"]),
    ],
)
async def test_a_bad_profile_is_refused(
    client: AsyncClient, factory: Factory, body: dict[str, Any], loc: list[str]
) -> None:
    world = await factory.world("Northwind")
    response = await client.patch(TENANT, json=body, headers=world.staff.headers)
    problem = assert_problem(response, 422, "validation-error")
    assert loc in [error["loc"] for error in problem["errors"]], problem
    stored = await fetch(factory, Tenant, world.tenant.id)
    assert (stored.name, stored.address_line1, stored.phone) == ("Northwind", None, None)


async def test_only_staff_see_or_change_the_profile(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world("Northwind")
    _key, secret = await api_key_for(factory, world.tenant)
    for headers in (world.contact.headers, bearer(secret)):
        assert_problem(await client.get(TENANT, headers=headers), 403)
        assert_problem(await client.patch(TENANT, json={"name": "Evil"}, headers=headers), 403)
    assert_problem(await client.get(TENANT), 401)
    assert (await fetch(factory, Tenant, world.tenant.id)).name == "Northwind"


async def test_each_tenant_sees_and_changes_its_own(client: AsyncClient, factory: Factory) -> None:
    ours = await factory.world("Northwind")
    theirs = await factory.world("Southwind")
    await client.patch(TENANT, json={"tax_id": "OURS-1"}, headers=ours.staff.headers)

    their_profile = (await client.get(TENANT, headers=theirs.staff.headers)).json()

    assert (their_profile["id"], their_profile["name"]) == (str(theirs.tenant.id), "Southwind")
    assert their_profile["tax_id"] is None


@pytest.mark.parametrize(
    "values",
    [
        pytest.param({"address_line1": "1 Main St"}, id="street-without-country"),
        pytest.param({"address_country": "US"}, id="country-without-street"),
        pytest.param({"address_city": "Portland"}, id="city-alone"),
    ],
)
async def test_the_database_refuses_half_an_address(
    factory: Factory, values: dict[str, str]
) -> None:
    world = await factory.world()
    with pytest.raises(IntegrityError):
        async with factory.sessionmaker() as session, session.begin():
            await session.execute(
                update(Tenant).where(Tenant.id == world.tenant.id).values(**values)
            )
