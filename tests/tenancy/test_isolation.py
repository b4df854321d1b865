"""Tenancy isolation beyond the matrix (test_isolation_matrix.py, which proves every 404 and
403 from the document): another tenant's objects answer exactly like missing ones; lists and
`/me` show only the caller's own."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from httpx import AsyncClient

from app.core.scopes import ALL_SCOPES
from app.models import ApiKey, Client, ServiceCategory, User
from tests.factories import (
    Factory,
    Person,
    World,
    api_key_for,
    assert_problem,
    bearer,
    count_rows,
    fetch,
)


@dataclass
class Two:
    """Two tenants, each with two clients (a contact each), a category and an API key."""

    mine: World
    my_other_client: Client
    my_other_contact: Person
    my_key: ApiKey
    my_secret: str
    theirs: World
    their_other_client: Client
    their_key: ApiKey
    their_secret: str
    their_category: ServiceCategory


# Every scope but clients:write: keys that may read clients (and write invoices) but not add or
# change clients.
READING_SCOPES = [s for s in ALL_SCOPES if s != "clients:write"]


@pytest.fixture
async def two(factory: Factory) -> Two:
    mine = await factory.world("Mine MSP")
    my_other = await factory.client(mine.tenant, "Mine Second Client")
    my_other_contact = await factory.contact(mine.tenant, my_other)
    my_key, my_secret = await api_key_for(factory, mine.tenant, scopes=READING_SCOPES)
    await factory.category(mine.tenant, "Mine Hosting")
    theirs = await factory.world("Their MSP")
    their_other = await factory.client(theirs.tenant, "Their Second Client")
    await factory.contact(theirs.tenant, their_other)
    their_key, their_secret = await api_key_for(factory, theirs.tenant, scopes=READING_SCOPES)
    their_category = await factory.category(theirs.tenant, "Their Hosting")
    return Two(
        mine,
        my_other,
        my_other_contact,
        my_key,
        my_secret,
        theirs,
        their_other,
        their_key,
        their_secret,
        their_category,
    )


def other_tenant_requests(two: Two) -> list[tuple[str, str, dict[str, Any] | None]]:
    """Every tenancy endpoint that takes an id, aimed at the other tenant's objects."""
    client_id = two.theirs.client.id
    return [
        ("GET", f"/api/v1/clients/{client_id}", None),
        ("PATCH", f"/api/v1/clients/{client_id}", {"name": "Hijacked"}),
        ("GET", f"/api/v1/clients/{client_id}/users", None),
        (
            "POST",
            f"/api/v1/clients/{client_id}/users",
            {"email": "mole@example.com", "full_name": "Mole"},
        ),
        ("DELETE", f"/api/v1/api-keys/{two.their_key.id}", None),
    ]


async def test_another_tenants_objects_are_404_like_missing_ones(
    client: AsyncClient, factory: Factory, two: Two
) -> None:
    headers = two.mine.staff.headers
    for method, url, body in other_tenant_requests(two):
        theirs = await client.request(method, url, headers=headers, json=body)
        missing_url = url.replace(str(two.theirs.client.id), str(uuid.uuid4())).replace(
            str(two.their_key.id), str(uuid.uuid4())
        )
        missing = await client.request(method, missing_url, headers=headers, json=body)
        assert theirs.status_code == 404, f"{method} {url}: {theirs.text}"
        assert_problem(theirs, 404, "not-found")
        assert {k: v for k, v in theirs.json().items() if k not in {"instance", "request_id"}} == {
            k: v for k, v in missing.json().items() if k not in {"instance", "request_id"}
        }
    # Nothing of theirs changed.
    assert (await fetch(factory, Client, two.theirs.client.id)).name == two.theirs.client.name
    assert (await fetch(factory, ApiKey, two.their_key.id)).revoked_at is None
    assert await count_rows(factory, User, User.email == "mole@example.com") == 0
    assert (
        await client.get("/api/v1/clients", headers=bearer(two.their_secret))
    ).status_code == 200


async def test_an_api_key_lists_only_its_own_tenant(
    client: AsyncClient, factory: Factory, two: Two
) -> None:
    headers = bearer(two.my_secret)
    listing = await client.get("/api/v1/clients", headers=headers)
    assert {c["id"] for c in listing.json()["items"]} == {
        str(two.mine.client.id),
        str(two.my_other_client.id),
    }


async def test_lists_show_only_the_callers_tenant(
    client: AsyncClient, factory: Factory, two: Two
) -> None:
    staff = two.mine.staff.headers
    clients = (await client.get("/api/v1/clients", headers=staff)).json()["items"]
    assert {c["id"] for c in clients} == {str(two.mine.client.id), str(two.my_other_client.id)}
    keys = (await client.get("/api/v1/api-keys", headers=staff)).json()["items"]
    assert [k["id"] for k in keys] == [str(two.my_key.id)]
    for headers in (staff, two.mine.contact.headers, bearer(two.my_secret)):
        categories = (await client.get("/api/v1/service-categories", headers=headers)).json()
        assert [c["name"] for c in categories["items"]] == ["Mine Hosting"]
    users = (await client.get(f"/api/v1/clients/{two.mine.client.id}/users", headers=staff)).json()[
        "items"
    ]
    assert [u["id"] for u in users] == [str(two.mine.contact.id)]


async def test_me_is_only_ever_the_caller(client: AsyncClient, two: Two) -> None:
    for person in (two.mine.contact, two.my_other_contact, two.theirs.staff):
        me = (await client.get("/api/v1/me", headers=person.headers)).json()
        assert me["id"] == str(person.id)
        assert me["tenant_id"] == str(person.user.tenant_id)
        assert me["client_id"] == (str(person.user.client_id) if person.user.client_id else None)


@pytest.mark.parametrize(
    "path",
    ["/api/v1/clients", "/api/v1/clients/{client}", "/api/v1/service-categories"],
)
async def test_an_api_key_reads_its_own_tenant(client: AsyncClient, two: Two, path: str) -> None:
    """What a key may not do is proven by the isolation matrix (test_isolation_matrix.py)."""
    url = path.format(client=two.mine.client.id)
    response = await client.get(url, headers=bearer(two.my_secret))
    assert response.status_code == 200, response.text
