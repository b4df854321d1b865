"""Service categories: staff create them; everyone signed in to the tenant may read them."""

from __future__ import annotations

import pytest
from httpx import AsyncClient

from app.models import ServiceCategory
from tests.factories import Factory, api_key_for, assert_problem, bearer, count_rows

CATEGORIES = "/api/v1/service-categories"


async def test_create_and_list(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    created = []
    for name in ("Hosting", "  Help desk  ", "Network monitoring"):
        response = await client.post(CATEGORIES, headers=world.staff.headers, json={"name": name})
        assert response.status_code == 201, response.text
        assert set(response.json()) == {"id", "name", "created_at"}
        created.append(response.json())
    assert created[1]["name"] == "Help desk"
    listing = await client.get(CATEGORIES, headers=world.staff.headers)
    assert listing.status_code == 200
    assert [c["id"] for c in listing.json()["items"]] == [c["id"] for c in reversed(created)]
    assert listing.json()["next_cursor"] is None


async def test_client_users_and_api_keys_may_read(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    category = await factory.category(world.tenant, "Backup")
    _key, secret = await api_key_for(factory, world.tenant)
    for headers in (world.contact.headers, bearer(secret)):
        response = await client.get(CATEGORIES, headers=headers)
        assert response.status_code == 200, response.text
        assert [c["id"] for c in response.json()["items"]] == [str(category.id)]


async def test_only_staff_create(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    _key, secret = await api_key_for(factory, world.tenant)
    for headers in (world.contact.headers, bearer(secret)):
        response = await client.post(CATEGORIES, headers=headers, json={"name": "Sneaky"})
        assert_problem(response, 403)
    assert await count_rows(factory, ServiceCategory) == 0


@pytest.mark.parametrize("name", ["Hosting", "hosting", "HOSTING", "  Hosting "])
async def test_a_duplicate_name_is_409(client: AsyncClient, factory: Factory, name: str) -> None:
    world = await factory.world()
    await factory.category(world.tenant, "Hosting")
    response = await client.post(CATEGORIES, headers=world.staff.headers, json={"name": name})
    assert_problem(response, 409, "service-category-exists")
    assert await count_rows(factory, ServiceCategory) == 1


async def test_the_same_name_in_another_tenant_is_fine(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    other = await factory.world("Other MSP")
    await factory.category(other.tenant, "Hosting")
    response = await client.post(CATEGORIES, headers=world.staff.headers, json={"name": "Hosting"})
    assert response.status_code == 201, response.text
    mine = await client.get(CATEGORIES, headers=world.contact.headers)
    assert [c["id"] for c in mine.json()["items"]] == [response.json()["id"]]


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": "   "}, {"name": "x" * 101}])
async def test_create_validation(
    client: AsyncClient, factory: Factory, body: dict[str, object]
) -> None:
    world = await factory.world()
    response = await client.post(CATEGORIES, headers=world.staff.headers, json=body)
    assert_problem(response, 422, "validation-error")
    assert await count_rows(factory, ServiceCategory) == 0


async def test_categories_need_a_token(client: AsyncClient) -> None:
    assert_problem(await client.get(CATEGORIES), 401)
    assert_problem(await client.post(CATEGORIES, json={"name": "X"}), 401)
