"""Keyset pagination: opaque cursors, stable newest-first order, no gaps, no repeats."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from httpx import AsyncClient

from app.core.errors import Unprocessable
from app.core.pagination import decode_cursor, encode_cursor
from app.models import Client
from tests.factories import Factory, World, assert_problem

CLIENTS = "/api/v1/clients"


def raw_cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


# --- the cursor itself ------------------------------------------------------------------


def test_a_cursor_round_trips() -> None:
    values = [
        datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC),
        date(2026, 3, 1),
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        42,
        "INV-0042",
    ]
    cursor = encode_cursor(values)
    assert decode_cursor(cursor, len(values)) == values


def test_a_cursor_is_url_safe_and_unpadded() -> None:
    cursor = encode_cursor([datetime.now(UTC), uuid.uuid4()])
    assert "=" not in cursor
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


def test_datetimes_are_kept_in_utc() -> None:
    instant = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    in_new_york = instant.astimezone(ZoneInfo("America/New_York"))
    [decoded] = decode_cursor(encode_cursor([in_new_york]), 1)
    assert decoded == instant
    assert decoded.utcoffset() == timedelta(0)


def test_what_cannot_go_in_a_cursor() -> None:
    with pytest.raises(TypeError):
        encode_cursor([1.5])
    with pytest.raises(TypeError):
        encode_cursor([object()])


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "garbage",
        "!!!!",
        "a",
        raw_cursor({"not": "a list"}),
        raw_cursor([1]),  # wrong width
        raw_cursor([1, 2, 3]),
        raw_cursor([True, 1]),
        raw_cursor([None, 1]),
        raw_cursor([1.5, 1]),
        raw_cursor([{"dt": "yesterday"}, 1]),
        raw_cursor([{"u": "xyz"}, 1]),
        raw_cursor([{"zz": "1"}, 1]),
        raw_cursor([{"dt": "2026-01-01T00:00:00Z", "u": "00"}, 1]),
        base64.urlsafe_b64encode(b"\xff\xfe\xfd").decode(),
    ],
)
def test_a_bad_cursor_is_unprocessable(cursor: str) -> None:
    """Unsigned, so forged: refused before its content is even looked at."""
    with pytest.raises(Unprocessable) as caught:
        decode_cursor(cursor, 2)
    assert caught.value.status == 422
    assert caught.value.extra["errors"][0]["loc"] == ["query", "cursor"]


def signed(value: Any, key: bytes) -> str:
    payload = json.dumps(value).encode()
    mac = hmac.new(key, payload, hashlib.sha256).digest()[:16]
    return f"{raw_cursor(value)}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def test_a_cursor_signed_with_another_key_or_edited_is_refused() -> None:
    key, other = b"k" * 32, b"o" * 32
    values = [date(2026, 3, 1), 7]
    assert decode_cursor(encode_cursor(values, key), 2, key) == values
    assert decode_cursor(signed([{"d": "2026-03-01"}, 7], key), 2, key) == values
    with pytest.raises(Unprocessable):
        decode_cursor(encode_cursor(values, other), 2, key)
    with pytest.raises(Unprocessable):
        decode_cursor(signed([{"d": "0001-01-01"}, 7], other), 2, key)
    _, mac = encode_cursor(values, key).split(".")
    edited = raw_cursor([{"d": "9999-12-31"}, 7])
    with pytest.raises(Unprocessable):
        decode_cursor(f"{edited}.{mac}", 2, key)


async def test_a_forged_cursor_over_http_is_422(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    await many_clients(factory, world, 3)
    first = (await client.get(CLIENTS, headers=world.staff.headers, params={"limit": 1})).json()
    genuine = first["next_cursor"]
    ok = await client.get(CLIENTS, headers=world.staff.headers, params={"cursor": genuine})
    assert ok.status_code == 200
    payload = json.loads(base64.urlsafe_b64decode(genuine.split(".")[0] + "=="))
    payload[0] = {"dt": "0001-01-01T00:00:00+00:00"}
    for forged in (raw_cursor(payload), f"{raw_cursor(payload)}.{genuine.split('.')[1]}"):
        response = await client.get(CLIENTS, headers=world.staff.headers, params={"cursor": forged})
        assert_problem(response, 422, "validation-error")


# --- over HTTP --------------------------------------------------------------------------


async def many_clients(
    factory: Factory, world: World, n: int, *, same_time: bool = False
) -> list[str]:
    """`n` more clients, created a second apart (or all at once); ids oldest first."""
    start = world.client.created_at + timedelta(minutes=1)
    clients = [
        Client(
            tenant_id=world.tenant.id,
            name=f"Client {i:03d}",
            created_at=start if same_time else start + timedelta(seconds=i),
        )
        for i in range(n)
    ]
    await factory.add(*clients)
    return [str(c.id) for c in clients]


async def walk(
    client: AsyncClient, headers: dict[str, str], limit: int
) -> list[list[dict[str, Any]]]:
    pages: list[list[dict[str, Any]]] = []
    params: dict[str, Any] = {"limit": limit}
    while True:
        response = await client.get(CLIENTS, headers=headers, params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body["items"])
        assert len(pages) < 50, "pagination does not end"
        if body["next_cursor"] is None:
            return pages
        params = {"limit": limit, "cursor": body["next_cursor"]}


async def test_paging_through_clients(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    other = await factory.world("Other MSP")
    await many_clients(factory, other, 5)
    created = await many_clients(factory, world, 119)  # 120 with the world's own
    pages = await walk(client, world.staff.headers, 50)
    assert [len(p) for p in pages] == [50, 50, 20]
    seen = [c["id"] for page in pages for c in page]
    assert len(seen) == len(set(seen)) == 120
    # Newest first, nothing skipped, nothing of the other tenant.
    assert seen == [*reversed(created), str(world.client.id)]


async def test_rows_created_at_the_same_instant_are_neither_lost_nor_repeated(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    created = await many_clients(factory, world, 30, same_time=True)
    pages = await walk(client, world.staff.headers, 7)
    assert [len(p) for p in pages] == [7, 7, 7, 7, 3]
    seen = [c["id"] for page in pages for c in page]
    assert len(seen) == len(set(seen))
    assert set(seen) == {*created, str(world.client.id)}
    assert seen[-1] == str(world.client.id)


async def test_a_full_last_page_has_no_cursor(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    await many_clients(factory, world, 3)
    pages = await walk(client, world.staff.headers, 2)
    assert [len(p) for p in pages] == [2, 2]


async def test_rows_added_while_paging_do_not_disturb_it(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    created = await many_clients(factory, world, 9)
    first = (await client.get(CLIENTS, headers=world.staff.headers, params={"limit": 5})).json()
    # A new client arrives (newest of all): the next page goes on where the first stopped.
    late = Client(
        tenant_id=world.tenant.id, name="Late", created_at=datetime.now(UTC) + timedelta(days=1)
    )
    await factory.add(late)
    second = (
        await client.get(
            CLIENTS,
            headers=world.staff.headers,
            params={"limit": 5, "cursor": first["next_cursor"]},
        )
    ).json()
    seen = [c["id"] for c in first["items"] + second["items"]]
    assert seen == [*reversed(created), str(world.client.id)]
    assert second["next_cursor"] is None


async def test_the_default_limit_is_50_and_200_is_allowed(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    await many_clients(factory, world, 59)
    default = (await client.get(CLIENTS, headers=world.staff.headers)).json()
    assert len(default["items"]) == 50
    assert default["next_cursor"] is not None
    everything = await client.get(CLIENTS, headers=world.staff.headers, params={"limit": 200})
    assert len(everything.json()["items"]) == 60
    assert everything.json()["next_cursor"] is None
    one = await client.get(CLIENTS, headers=world.staff.headers, params={"limit": 1})
    assert len(one.json()["items"]) == 1


# A fixed id: parameters must be the same in every pytest-xdist worker.
AN_ID = "7c9e6679742540de944be07fc1f0d2a1"


@pytest.mark.parametrize("limit", ["0", "201", "-1", "abc", "1.5", ""])
async def test_a_limit_out_of_range_is_422(
    client: AsyncClient, factory: Factory, limit: str
) -> None:
    world = await factory.world()
    response = await client.get(CLIENTS, headers=world.staff.headers, params={"limit": limit})
    body = assert_problem(response, 422, "validation-error")
    assert body["errors"][0]["loc"] == ["query", "limit"]


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "%%%",
        raw_cursor([1]),
        raw_cursor({"a": 1}),
        "x" * 600,
        # Well-formed, but not what this list is ordered by.
        raw_cursor(["abc", 5]),
        raw_cursor([5, "abc"]),
        raw_cursor([{"u": AN_ID}, {"dt": "2026-01-01T00:00:00+00:00"}]),
        raw_cursor([{"d": "2026-01-01"}, {"u": AN_ID}]),
        # A time without a zone is not one of ours either.
        raw_cursor([{"dt": "2026-01-01T00:00:00"}, {"u": AN_ID}]),
    ],
)
async def test_a_bad_cursor_is_422(client: AsyncClient, factory: Factory, cursor: str) -> None:
    world = await factory.world()
    response = await client.get(CLIENTS, headers=world.staff.headers, params={"cursor": cursor})
    body = assert_problem(response, 422, "validation-error")
    assert body["errors"][0]["loc"] == ["query", "cursor"]


async def test_other_lists_page_the_same_way(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    for n in range(5):
        await factory.category(world.tenant, f"Category {n}")
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        body = (
            await client.get(
                "/api/v1/service-categories", headers=world.staff.headers, params=params
            )
        ).json()
        seen += [c["name"] for c in body["items"]]
        if not body["next_cursor"]:
            break
        params["cursor"] = body["next_cursor"]
    assert sorted(seen) == [f"Category {n}" for n in range(5)]
    assert len(seen) == 5
