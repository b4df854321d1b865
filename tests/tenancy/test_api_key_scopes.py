"""API keys carry scopes: created with the ones asked for (v1's three when none are), checked by
one dependency on every route a key can call; a call outside them is 403."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.routing import APIRoute
from httpx import AsyncClient

from app.auth.dependencies import get_user, require_client, require_person, require_staff
from app.core.scopes import ALL_SCOPES, V1_SCOPES
from app.main import API_ROUTERS
from tests.factories import (
    Factory,
    api_key_for,
    assert_problem,
    authenticated_operations,
    bearer,
    fill_path,
)

KEYS = "/api/v1/api-keys"
# The gates that refuse API keys outright (a person's role decides).
PEOPLE_ONLY = {require_staff, require_person, require_client, get_user}


async def test_a_key_gets_the_scopes_asked_for(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    response = await client.post(
        KEYS,
        json={"name": "Alerts", "scopes": ["events:read", "payments:read", "events:read"]},
        headers=world.staff.headers,
    )
    assert response.status_code == 201, response.text
    assert response.json()["scopes"] == ["events:read", "payments:read"]
    listed = (await client.get(KEYS, headers=world.staff.headers)).json()["items"]
    assert listed[0]["scopes"] == ["events:read", "payments:read"]


async def test_a_key_made_without_scopes_has_v1s_powers(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    response = await client.post(KEYS, json={"name": "PSA"}, headers=world.staff.headers)
    assert sorted(response.json()["scopes"]) == sorted(V1_SCOPES)
    key = bearer(response.json()["secret"])
    assert (await client.get("/api/v1/invoices", headers=key)).status_code == 200
    assert (await client.get("/api/v1/payments", headers=key)).status_code == 200
    assert_problem(await client.get("/api/v1/clients", headers=key), 403, "insufficient-scope")
    assert_problem(await client.get("/api/v1/events", headers=key), 403, "insufficient-scope")


@pytest.mark.parametrize(
    "scopes",
    [[], ["invoices:admin"], ["*"], "invoices:read"],
    ids=["empty", "unknown", "star", "str"],
)
async def test_unknown_or_empty_scopes_are_422(
    client: AsyncClient, factory: Factory, scopes: Any
) -> None:
    world = await factory.world()
    response = await client.post(
        KEYS, json={"name": "PSA", "scopes": scopes}, headers=world.staff.headers
    )
    problem = assert_problem(response, 422)
    assert problem["errors"][0]["loc"][:2] == ["body", "scopes"]


@pytest.mark.parametrize(
    ("scope", "allowed", "refused"),
    [
        ("invoices:read", ("GET", "/api/v1/invoices"), ("GET", "/api/v1/payments")),
        ("payments:read", ("GET", "/api/v1/payments"), ("GET", "/api/v1/invoices")),
        ("clients:read", ("GET", "/api/v1/clients"), ("POST", "/api/v1/clients")),
        ("clients:write", ("POST", "/api/v1/clients"), ("GET", "/api/v1/clients")),
        ("events:read", ("GET", "/api/v1/events"), ("GET", "/api/v1/webhook-endpoints")),
        ("webhooks:write", ("GET", "/api/v1/webhook-endpoints"), ("GET", "/api/v1/events")),
        ("invoices:write", ("POST", "/api/v1/invoices"), ("GET", "/api/v1/invoices")),
    ],
)
async def test_each_scope_opens_its_own_door_only(
    client: AsyncClient,
    factory: Factory,
    scope: str,
    allowed: tuple[str, str],
    refused: tuple[str, str],
) -> None:
    world = await factory.world()
    _key, secret = await api_key_for(factory, world.tenant, scopes=[scope])
    bodies = {"/api/v1/clients": {"name": "By key"}, "/api/v1/invoices": {}}
    method, path = allowed
    response = await client.request(
        method, path, json=bodies.get(path) if method == "POST" else None, headers=bearer(secret)
    )
    # Past the scope check: a listing, a creation, or the body's own 422.
    assert response.status_code in (200, 201, 422), response.text
    method, path = refused
    response = await client.request(method, path, json=bodies.get(path), headers=bearer(secret))
    assert_problem(response, 403, "insufficient-scope")


def _dependency_calls(route: APIRoute) -> set[Any]:
    found, stack = set(), [route.dependant]
    while stack:
        dependant = stack.pop()
        if dependant.call is not None:
            found.add(dependant.call)
        stack.extend(dependant.dependencies)
    return found


def test_every_operation_a_key_can_call_names_its_scope() -> None:
    unscoped, scoped = [], {}
    routes = [r for router in API_ROUTERS for r in router.routes if isinstance(r, APIRoute)]
    assert len(routes) > 40
    for route in routes:
        calls = _dependency_calls(route)
        if not any(getattr(c, "__name__", "") == "get_caller" for c in calls):
            continue  # public: no caller at all
        if calls & PEOPLE_ONLY:
            continue  # refuses API keys whatever their scopes
        named = [getattr(c, "scopes", None) for c in calls if getattr(c, "scopes", None)]
        if not named:
            unscoped.append(route.operation_id)
        else:
            scoped[route.operation_id] = named[0]
    assert unscoped == [], "operations an API key can call without a named scope"
    assert {s for names in scoped.values() for s in names} == set(ALL_SCOPES)
    assert scoped["listInvoices"] == ("invoices:read",)
    assert scoped["upsertInvoiceByExternalId"] == ("invoices:write",)
    assert scoped["listClients"] == ("clients:read",)


async def test_a_key_without_scopes_is_refused_everywhere(
    client: AsyncClient, factory: Factory, app: Any
) -> None:
    world = await factory.world()
    _key, secret = await api_key_for(factory, world.tenant, scopes=[])
    operations = authenticated_operations(app)
    assert len(operations) > 40
    for method, path, operation_id in operations:
        response = await client.request(
            method, fill_path(path), headers=bearer(secret), json={} if method != "GET" else None
        )
        assert response.status_code == 403, f"{operation_id}: {response.status_code}"
