"""Integration keys: the secret shown once and stored hashed, identifiable by prefix,
revocable at once, and their last use recorded."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from httpx import AsyncClient

from app.core.clock import FrozenClock
from app.core.security import API_KEY_PREFIX, sha256_hex
from app.models import ApiKey
from tests.factories import (
    Factory,
    api_key_for,
    assert_problem,
    bearer,
    count_rows,
    fetch,
    stored_anywhere,
)

KEYS = "/api/v1/api-keys"
KEY_FIELDS = {"id", "name", "prefix", "scopes", "created_at", "last_used_at", "revoked_at"}


async def create_key(client: AsyncClient, headers: dict[str, str], name: str = "PSA sync") -> Any:
    response = await client.post(KEYS, headers=headers, json={"name": name})
    assert response.status_code == 201, response.text
    return response.json()


async def test_create_shows_the_secret_once(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    body = await create_key(client, world.staff.headers, " ConnectWise sync ")
    assert set(body) == KEY_FIELDS | {"secret"}
    assert body["name"] == "ConnectWise sync"
    assert body["last_used_at"] is None
    assert body["revoked_at"] is None
    # Prefix-identifiable: the listing's prefix is how the whole key begins.
    assert body["prefix"].startswith(API_KEY_PREFIX)
    assert body["secret"].startswith(body["prefix"] + ".")
    assert len(body["secret"]) > len(body["prefix"]) + 30

    listing = await client.get(KEYS, headers=world.staff.headers)
    assert listing.status_code == 200
    [item] = listing.json()["items"]
    assert set(item) == KEY_FIELDS
    assert item["prefix"] == body["prefix"]
    assert body["secret"] not in listing.text
    assert body["secret"].split(".", 1)[1] not in listing.text


async def test_the_secret_is_stored_hashed(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    body = await create_key(client, world.staff.headers)
    secret = body["secret"]
    stored = await fetch(factory, ApiKey, uuid.UUID(body["id"]))
    assert stored.secret_hash == sha256_hex(secret)
    assert stored.tenant_id == world.tenant.id
    assert stored.created_by_id == world.staff.id
    assert await stored_anywhere(factory, secret) == []
    assert await stored_anywhere(factory, secret.split(".", 1)[1]) == []


async def test_a_key_authenticates_and_records_its_use(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    body = await create_key(client, world.staff.headers)
    key_id = uuid.UUID(body["id"])
    start = datetime.now(UTC).replace(microsecond=0)
    with FrozenClock(start) as clock:
        response = await client.get("/api/v1/invoices", headers=bearer(body["secret"]))
        assert response.status_code == 200, response.text
        first = (await fetch(factory, ApiKey, key_id)).last_used_at
        assert first == start
        # Within the minute: not written again (a hint, not an audit log) ...
        clock.advance(seconds=30)
        await client.get("/api/v1/invoices", headers=bearer(body["secret"]))
        assert (await fetch(factory, ApiKey, key_id)).last_used_at == start
        # ... after it, it is.
        clock.advance(minutes=2)
        await client.get("/api/v1/invoices", headers=bearer(body["secret"]))
        assert (await fetch(factory, ApiKey, key_id)).last_used_at == clock.now
    [item] = (await client.get(KEYS, headers=world.staff.headers)).json()["items"]
    assert item["last_used_at"] is not None


async def test_a_revoked_key_is_refused_at_once(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    body = await create_key(client, world.staff.headers)
    assert (await client.get("/api/v1/invoices", headers=bearer(body["secret"]))).status_code == 200
    response = await client.delete(f"{KEYS}/{body['id']}", headers=world.staff.headers)
    assert response.status_code == 204, response.text
    assert response.content == b""
    refused = await client.get("/api/v1/invoices", headers=bearer(body["secret"]))
    assert_problem(refused, 401, "invalid-token")
    [item] = (await client.get(KEYS, headers=world.staff.headers)).json()["items"]
    assert item["revoked_at"] is not None


async def test_revoking_twice_keeps_the_first_time(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    key, _secret = await api_key_for(factory, world.tenant)
    assert (await client.delete(f"{KEYS}/{key.id}", headers=world.staff.headers)).status_code == 204
    first = (await fetch(factory, ApiKey, key.id)).revoked_at
    assert first is not None
    with FrozenClock(datetime.now(UTC)) as clock:
        clock.advance(minutes=10)  # the staff token lives 15
        again = await client.delete(f"{KEYS}/{key.id}", headers=world.staff.headers)
    assert again.status_code == 204
    assert (await fetch(factory, ApiKey, key.id)).revoked_at == first


async def test_revoking_an_unknown_key_is_404(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    response = await client.delete(f"{KEYS}/{uuid.uuid4()}", headers=world.staff.headers)
    assert_problem(response, 404, "not-found")
    assert_problem(await client.delete(f"{KEYS}/nope", headers=world.staff.headers), 422)


async def test_a_wrong_secret_with_a_real_prefix_is_refused(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    key, secret = await api_key_for(factory, world.tenant)
    prefix, rest = secret.split(".", 1)
    assert prefix == key.prefix
    for forged in (
        f"{prefix}.{rest[:-1]}{'A' if rest[-1] != 'A' else 'B'}",
        f"{prefix}.",
        f"{prefix}.{rest}x",
        prefix,
        f"{API_KEY_PREFIX}ffffffffffff.{rest}",
        secret.upper(),
    ):
        response = await client.get("/api/v1/invoices", headers=bearer(forged))
        assert_problem(response, 401)
    assert (await fetch(factory, ApiKey, key.id)).last_used_at is None


async def test_a_key_is_not_a_person(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    _key, secret = await api_key_for(factory, world.tenant)
    headers = bearer(secret)
    assert_problem(await client.get("/api/v1/me", headers=headers), 403)
    assert_problem(
        await client.post("/api/v1/auth/logout", headers=headers, json={"refresh_token": "rt_x"}),
        403,
    )


async def test_keys_cannot_manage_keys(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    key, secret = await api_key_for(factory, world.tenant)
    headers = bearer(secret)
    assert_problem(await client.get(KEYS, headers=headers), 403)
    assert_problem(await client.post(KEYS, headers=headers, json={"name": "child"}), 403)
    assert_problem(await client.delete(f"{KEYS}/{key.id}", headers=headers), 403)
    assert await count_rows(factory, ApiKey) == 1
    assert (await fetch(factory, ApiKey, key.id)).revoked_at is None


async def test_client_users_cannot_manage_keys(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    key, _secret = await api_key_for(factory, world.tenant)
    headers = world.contact.headers
    assert_problem(await client.get(KEYS, headers=headers), 403)
    assert_problem(await client.post(KEYS, headers=headers, json={"name": "mine"}), 403)
    assert_problem(await client.delete(f"{KEYS}/{key.id}", headers=headers), 403)
    assert await count_rows(factory, ApiKey) == 1
    assert (await fetch(factory, ApiKey, key.id)).revoked_at is None


async def test_key_name_is_validated(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    for body in ({}, {"name": ""}, {"name": "   "}, {"name": "x" * 101}):
        assert_problem(await client.post(KEYS, headers=world.staff.headers, json=body), 422)
    assert await count_rows(factory, ApiKey) == 0


async def test_every_key_is_different(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    keys = [await create_key(client, world.staff.headers, f"key {n}") for n in range(3)]
    assert len({k["prefix"] for k in keys}) == 3
    assert len({k["secret"] for k in keys}) == 3
    listing = (await client.get(KEYS, headers=world.staff.headers)).json()["items"]
    assert [k["id"] for k in listing] == [k["id"] for k in reversed(keys)]
