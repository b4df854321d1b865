"""Client companies: create, list, read and update (staff; integration keys may read)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from httpx import AsyncClient

from app.core.clock import FrozenClock
from app.models import Client
from tests.factories import Factory, api_key_for, assert_problem, bearer, count_rows, fetch

CLIENTS = "/api/v1/clients"


async def test_create_a_client(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    response = await client.post(
        CLIENTS,
        headers=world.staff.headers,
        json={"name": "  Globex Corporation ", "billing_email": "AP@Globex.Example"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {
        "id",
        "name",
        "billing_email",
        "billing_address",
        "created_at",
        "updated_at",
    }
    assert body["billing_address"] is None
    assert body["name"] == "Globex Corporation"
    assert body["billing_email"] == "ap@globex.example"
    assert body["created_at"].endswith("Z") or body["created_at"].endswith("+00:00")
    stored = await fetch(factory, Client, uuid.UUID(body["id"]))
    assert stored.tenant_id == world.tenant.id
    assert stored.name == "Globex Corporation"


async def test_billing_email_is_optional(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    response = await client.post(CLIENTS, headers=world.staff.headers, json={"name": "Initech"})
    assert response.status_code == 201, response.text
    assert response.json()["billing_email"] is None


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({}, ["body", "name"]),
        ({"name": ""}, ["body", "name"]),
        ({"name": "   "}, ["body", "name"]),
        ({"name": "x" * 201}, ["body", "name"]),
        ({"name": None}, ["body", "name"]),
        ({"name": 42}, ["body", "name"]),
        ({"name": "Ok", "billing_email": "not-an-email"}, ["body", "billing_email"]),
    ],
)
async def test_create_validation(
    client: AsyncClient, factory: Factory, body: dict[str, object], loc: list[str]
) -> None:
    world = await factory.world()
    response = await client.post(CLIENTS, headers=world.staff.headers, json=body)
    problem = assert_problem(response, 422, "validation-error")
    assert loc in [e["loc"] for e in problem["errors"]]
    assert await count_rows(factory, Client) == 1  # only the world's own


async def test_a_body_that_is_not_an_object_is_refused(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    for body in ([], ["name"], "Globex", 42, None):
        response = await client.post(CLIENTS, headers=world.staff.headers, json=body)
        assert_problem(response, 422)
    assert await count_rows(factory, Client) == 1


async def test_get_a_client(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    response = await client.get(f"{CLIENTS}/{world.client.id}", headers=world.staff.headers)
    assert response.status_code == 200, response.text
    assert response.json()["id"] == str(world.client.id)
    assert response.json()["name"] == world.client.name


async def test_an_unknown_client_is_404(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    response = await client.get(
        f"{CLIENTS}/00000000-0000-4000-8000-000000000000", headers=world.staff.headers
    )
    assert_problem(response, 404, "not-found")


async def test_a_malformed_client_id_is_422(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    response = await client.get(f"{CLIENTS}/not-a-uuid", headers=world.staff.headers)
    body = assert_problem(response, 422)
    assert body["errors"][0]["loc"] == ["path", "client_id"]


async def test_list_clients_newest_first(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    created = []
    for name in ("First", "Second", "Third"):
        response = await client.post(CLIENTS, headers=world.staff.headers, json={"name": name})
        created.append(response.json()["id"])
    listing = await client.get(CLIENTS, headers=world.staff.headers)
    assert listing.status_code == 200, listing.text
    body = listing.json()
    assert set(body) == {"items", "next_cursor"}
    assert body["next_cursor"] is None
    assert [c["id"] for c in body["items"]] == [*reversed(created), str(world.client.id)]


async def test_update_a_client(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    url = f"{CLIENTS}/{world.client.id}"
    before = (await client.get(url, headers=world.staff.headers)).json()
    with FrozenClock(datetime.now(UTC)) as clock:
        clock.advance(minutes=5)
        response = await client.patch(
            url, headers=world.staff.headers, json={"name": " Acme Holdings "}
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"] == "Acme Holdings"
    assert body["billing_email"] == before["billing_email"]  # untouched
    assert body["created_at"] == before["created_at"]
    assert body["updated_at"] > before["updated_at"]

    cleared = await client.patch(url, headers=world.staff.headers, json={"billing_email": None})
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["billing_email"] is None
    assert cleared.json()["name"] == "Acme Holdings"

    again = await client.patch(
        url, headers=world.staff.headers, json={"billing_email": "Pay@Acme.Example"}
    )
    assert again.json()["billing_email"] == "pay@acme.example"
    stored = await fetch(factory, Client, world.client.id)
    assert stored.name == "Acme Holdings"
    assert stored.billing_email == "pay@acme.example"


async def test_an_empty_update_changes_nothing(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    response = await client.patch(
        f"{CLIENTS}/{world.client.id}", headers=world.staff.headers, json={}
    )
    assert response.status_code == 200, response.text
    assert response.json()["name"] == world.client.name
    assert response.json()["billing_email"] == world.client.billing_email


@pytest.mark.parametrize(
    "body",
    [{"name": ""}, {"name": "  "}, {"name": "x" * 201}, {"billing_email": "nope"}],
)
async def test_update_validation(
    client: AsyncClient, factory: Factory, body: dict[str, object]
) -> None:
    world = await factory.world()
    response = await client.patch(
        f"{CLIENTS}/{world.client.id}", headers=world.staff.headers, json=body
    )
    assert_problem(response, 422, "validation-error")
    stored = await fetch(factory, Client, world.client.id)
    assert stored.name == world.client.name
    assert stored.billing_email == world.client.billing_email


async def test_updating_an_unknown_client_is_404(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    response = await client.patch(
        f"{CLIENTS}/00000000-0000-4000-8000-000000000000",
        headers=world.staff.headers,
        json={"name": "Ghost"},
    )
    assert_problem(response, 404)


async def test_an_api_key_reads_clients_with_clients_read_only(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    _key, v1_secret = await api_key_for(factory, world.tenant)
    # v1's keys (invoices and payments) no longer read the MSP's client list.
    for path in (CLIENTS, f"{CLIENTS}/{world.client.id}"):
        assert_problem(await client.get(path, headers=bearer(v1_secret)), 403, "insufficient-scope")
    _key, secret = await api_key_for(factory, world.tenant, scopes=["clients:read"])
    headers = bearer(secret)
    listing = await client.get(CLIENTS, headers=headers)
    assert listing.status_code == 200, listing.text
    assert [c["id"] for c in listing.json()["items"]] == [str(world.client.id)]
    one = await client.get(f"{CLIENTS}/{world.client.id}", headers=headers)
    assert one.status_code == 200
    assert_problem(await client.post(CLIENTS, headers=headers, json={"name": "X"}), 403)
    assert_problem(
        await client.patch(f"{CLIENTS}/{world.client.id}", headers=headers, json={"name": "X"}),
        403,
    )
    assert await count_rows(factory, Client) == 1


async def test_clients_need_a_token(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    assert_problem(await client.get(CLIENTS), 401)
    assert_problem(await client.post(CLIENTS, json={"name": "X"}), 401)
    assert_problem(await client.get(f"{CLIENTS}/{world.client.id}"), 401)
    assert await count_rows(factory, Client) == 1
