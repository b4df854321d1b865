"""A client's billing address (`POST/PATCH /clients`), printed on its invoices."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from app.models import Client
from tests.factories import Factory, api_key_for, assert_problem, bearer, fetch

CLIENTS = "/api/v1/clients"
ADDRESS = {
    "line1": "Тверская улица 7",
    "line2": None,
    "city": "Москва",
    "region": None,
    "postal_code": "125009",
    "country": "RU",
}


async def test_a_client_is_created_with_its_billing_address(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    response = await client.post(
        CLIENTS,
        json={"name": "Globex", "billing_address": {**ADDRESS, "country": "ru"}},
        headers=world.staff.headers,
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["billing_address"] == ADDRESS

    read = await client.get(f"{CLIENTS}/{created['id']}", headers=world.staff.headers)
    assert read.json()["billing_address"] == ADDRESS
    listed = (await client.get(CLIENTS, headers=world.staff.headers)).json()["items"]
    assert [c["billing_address"] for c in listed if c["id"] == created["id"]] == [ADDRESS]
    stored = await fetch(factory, Client, uuid.UUID(created["id"]))
    assert (stored.billing_address_city, stored.billing_address_country) == ("Москва", "RU")


async def test_the_address_is_replaced_kept_or_removed(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    url = f"{CLIENTS}/{world.client.id}"
    headers = world.staff.headers
    assert (await client.get(url, headers=headers)).json()["billing_address"] is None

    await client.patch(url, json={"billing_address": ADDRESS}, headers=headers)
    renamed = await client.patch(url, json={"name": "Acme Holdings"}, headers=headers)
    assert renamed.json()["billing_address"] == ADDRESS

    moved = {"line1": "1 Main Street", "city": "Portland", "region": "OR", "country": "US"}
    replaced = await client.patch(url, json={"billing_address": moved}, headers=headers)
    assert replaced.json()["billing_address"] == {**moved, "line2": None, "postal_code": None}

    removed = await client.patch(url, json={"billing_address": None}, headers=headers)
    assert removed.status_code == 200, removed.text
    assert removed.json()["billing_address"] is None
    stored = await fetch(factory, Client, world.client.id)
    assert (stored.billing_address_line1, stored.billing_address_city) == (None, None)


@pytest.mark.parametrize(
    ("address", "loc"),
    [
        ({"country": "US"}, ["body", "billing_address", "line1"]),
        ({"line1": "1 Main St"}, ["body", "billing_address", "country"]),
        ({"line1": "1 Main St", "country": "ZZ"}, ["body", "billing_address", "country"]),
        ({"line1": "1 Main St\r\n", "country": "US"}, ["body", "billing_address", "line1"]),
        ({"line1": "x" * 201, "country": "US"}, ["body", "billing_address", "line1"]),
        ({"line1": "1 Main St", "country": "US", "zip": "1"}, ["body", "billing_address", "zip"]),
        ("1 Main St, Portland", ["body", "billing_address"]),
    ],
)
async def test_a_bad_address_is_refused(
    client: AsyncClient, factory: Factory, address: Any, loc: list[str]
) -> None:
    world = await factory.world()
    for response in (
        await client.post(
            CLIENTS,
            json={"name": "Globex", "billing_address": address},
            headers=world.staff.headers,
        ),
        await client.patch(
            f"{CLIENTS}/{world.client.id}",
            json={"billing_address": address},
            headers=world.staff.headers,
        ),
    ):
        problem = assert_problem(response, 422, "validation-error")
        assert loc in [error["loc"] for error in problem["errors"]], problem
    assert (await fetch(factory, Client, world.client.id)).billing_address_line1 is None


async def test_integrations_read_the_address_and_change_it_only_with_clients_write(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    _key, secret = await api_key_for(factory, world.tenant, scopes=["clients:read"])
    url = f"{CLIENTS}/{world.client.id}"
    await client.patch(url, json={"billing_address": ADDRESS}, headers=world.staff.headers)

    assert (await client.get(url, headers=bearer(secret))).json()["billing_address"] == ADDRESS
    for headers in (bearer(secret), world.contact.headers):
        response = await client.patch(url, json={"billing_address": None}, headers=headers)
        assert_problem(response, 403)
    assert (await fetch(factory, Client, world.client.id)).billing_address_city == "Москва"
    _key, writer = await api_key_for(factory, world.tenant, scopes=["clients:write"])
    response = await client.patch(url, json={"billing_address": None}, headers=bearer(writer))
    assert response.status_code == 200, response.text
    assert (await fetch(factory, Client, world.client.id)).billing_address_city is None


async def test_the_database_refuses_half_an_address(factory: Factory) -> None:
    world = await factory.world()
    with pytest.raises(IntegrityError):
        async with factory.sessionmaker() as session, session.begin():
            await session.execute(
                update(Client)
                .where(Client.id == world.client.id)
                .values(billing_address_city="Portland")
            )
