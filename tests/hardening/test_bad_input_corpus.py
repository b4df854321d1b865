"""The bad-input corpus: each kind of bad input, against every operation of the served
document it applies to, is a 4xx problem+json, and nothing is stored (every table is counted
before and after). Operations are read from the document, so a new one is covered the day
it appears."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from httpx import AsyncClient, Response
from sqlalchemy import func, select

from app.models import Base
from tests.factories import Factory, World, assert_problem

VISA = "4111111111111111"
# Every spelling the screen must see through (issue 10), each a Luhn-valid card number.
PAN_VARIANTS = [
    VISA,
    "4111.1111.1111.1111",
    "4111/1111/1111/1111",
    "4111_1111_1111_1111",
    "4111+1111+1111+1111",
    "4111\t1111\t1111\t1111",
    "4111\n1111\n1111\n1111",
    "4111  1111  1111  1111",
    "4111\u00a01111\u00a01111\u00a01111",  # no-break spaces
    "4111\u30001111\u30001111\u30001111",  # ideographic (full-width) spaces
    "".join(chr(0xFF10 + int(d)) for d in VISA),  # full-width digits
    "4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1",
    "4111-1111 -1111. 1111",
    "5555555555554444",
    "3782 822463 10005",
    "card 4111\x001111\x001111\x001111",
]


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    operation_id: str
    body: dict[str, Any] | None  # the JSON body's schema, $refs resolved at the top
    query: list[dict[str, Any]]


def _resolve(schema: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].split("/")[-1]]
    return schema


def operations(doc: dict[str, Any]) -> Iterator[Operation]:
    for path, items in doc["paths"].items():
        for method, op in items.items():
            content = op.get("requestBody", {}).get("content", {})
            body = content.get("application/json", {}).get("schema")
            query = [p for p in op.get("parameters", []) if p["in"] == "query"]
            yield Operation(
                method.upper(),
                path,
                op["operationId"],
                _resolve(body, doc) if body else None,
                query,
            )


def _kind(schema: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    """The non-null alternative of a property's schema (`x | None` is an anyOf)."""
    schema = _resolve(schema, doc)
    for option in schema.get("anyOf", []):
        option = _resolve(option, doc)
        if option.get("type") != "null":
            return option
    return schema


def _url(op: Operation, world: World) -> str:
    url = op.path
    while "{" in url:
        start, end = url.index("{"), url.index("}")
        name = url[start + 1 : end]
        value = str(world.client.id) if name == "client_id" else str(uuid.uuid4())
        if name == "external_id":
            value = "ext-1"
        url = url[:start] + value + url[end + 1 :]
    return "/api/v1" + url if not url.startswith("/api/v1") else url


async def table_counts(factory: Factory) -> dict[str, int]:
    async with factory.sessionmaker() as session:
        return {
            table.name: int(
                (await session.execute(select(func.count()).select_from(table))).scalar_one()
            )
            for table in Base.metadata.sorted_tables
        }


class Caller:
    """Sends as staff; an operation staff may not call (403) is sent again as the client's
    contact, so that the body is read by someone allowed to send it."""

    def __init__(self, http: AsyncClient, world: World) -> None:
        self.http = http
        self.world = world
        self.results: list[tuple[str, str, int]] = []

    async def send(self, op: Operation, what: str, **kwargs: Any) -> Response:
        url = _url(op, self.world)
        extra = kwargs.pop("headers", {})
        response = await self.http.request(
            op.method, url, headers={**extra, **self.world.staff.headers}, **kwargs
        )
        if response.status_code == 403:
            headers = {**extra, **self.world.contact.headers}
            response = await self.http.request(op.method, url, headers=headers, **kwargs)
        self.results.append((op.operation_id, what, response.status_code))
        assert 400 <= response.status_code < 500, (op.operation_id, what, response.text)
        assert response.headers["content-type"] == "application/problem+json", (
            op.operation_id,
            what,
        )
        return response


def _raw(op: Operation, body: Any) -> dict[str, Any]:
    return {"content": json.dumps(body).encode(), "headers": {"Content-Type": "application/json"}}


async def test_the_corpus_against_every_operation(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    doc = (await client.get("/openapi.json")).json()
    ops = list(operations(doc))
    assert len(ops) > 40
    caller = Caller(client, world)
    before = await table_counts(factory)
    variant = 0
    field_named = 0  # answers that named the bad field: the value was read, not just refused

    for op in ops:
        for param in op.query:
            name, kind = param["name"], _kind(param["schema"], doc)
            pan = PAN_VARIANTS[variant % len(PAN_VARIANTS)]
            variant += 1
            response = await caller.send(op, f"query {name} card", params={name: pan})
            assert_problem(response, 422, "card-number-refused")
            response = await caller.send(op, f"query {name} NUL", params={name: "a\x00b"})
            assert_problem(response, 422)
            bad = []
            if kind.get("type") == "integer":
                bad = ["true", "1.0", "1e3", "99999999999999999999"]
            elif kind.get("format") == "date-time":
                bad = ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"]
            elif kind.get("type") == "string" and "maxLength" in kind:
                bad = ["x" * (kind["maxLength"] + 1)]
            for value in bad:
                response = await caller.send(op, f"query {name}={value[:20]}", params={name: value})
                if response.status_code == 422:
                    field_named += 1

        if op.body is None:
            continue
        properties = op.body.get("properties", {})
        deep = b'{"x": ' + b"[" * 1000 + b"]" * 1000 + b"}"
        json_type = {"Content-Type": "application/json"}
        response = await caller.send(op, "deep", content=deep, headers=json_type)
        assert_problem(response, 400, "malformed-body")
        response = await caller.send(
            op,
            "not utf-8",
            content=b'{"x": "\xff\xfe"}',
            headers={"Content-Type": "application/json"},
        )
        assert_problem(response, 400, "malformed-body")
        for name, schema in properties.items():
            kind = _kind(schema, doc)
            pan = PAN_VARIANTS[variant % len(PAN_VARIANTS)]
            variant += 1
            if kind.get("type") in ("string", "array") or "type" not in kind:
                response = await caller.send(op, f"{name} card", **_raw(op, {name: pan}))
                assert_problem(response, 422, "card-number-refused")
                response = await caller.send(op, f"{name} NUL", **_raw(op, {name: "a\x00b"}))
                assert_problem(response, 422)
            bad: list[Any] = []
            if kind.get("type") == "integer":
                bad = [True, "250", 250.0, 10**19]
            elif kind.get("format") == "date":
                bad = ["0001-01-01", "9999-12-31"]
            elif kind.get("format") == "date-time":
                bad = ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"]
            elif kind.get("type") == "string" and "maxLength" in kind:
                bad = ["x" * (kind["maxLength"] + 1)]
                if kind["maxLength"] < 1000 and "enum" not in kind:
                    bad.append("tab\there")
            for value in bad:
                response = await caller.send(op, f"{name}={value!r:.20}", **_raw(op, {name: value}))
                if response.status_code == 422:
                    errors = response.json()["errors"]
                    field_named += any(name in map(str, e["loc"]) for e in errors)

    assert await table_counts(factory) == before
    # Most bad values were read and named (the rest were refused earlier: 404, 409 ...).
    assert field_named > 50, field_named
    assert len(caller.results) > 400


async def test_every_card_spelling_is_refused_in_a_body_a_query_and_the_sign_in_form(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    before = await table_counts(factory)
    for pan in PAN_VARIANTS:
        for where, response in (
            (
                "body",
                await client.post(
                    "/api/v1/clients", headers=world.staff.headers, json={"name": pan}
                ),
            ),
            (
                "query",
                await client.get(
                    "/api/v1/invoices", headers=world.staff.headers, params={"status": pan}
                ),
            ),
            (
                "form",
                await client.post("/api/v1/auth/token", data={"username": pan, "password": "x"}),
            ),
            (
                "form password",
                await client.post(
                    "/api/v1/auth/token", data={"username": "a@b.example", "password": pan}
                ),
            ),
            (
                "multipart form",
                await client.post(
                    "/api/v1/auth/token", files={"username": (None, pan), "password": (None, "x")}
                ),
            ),
        ):
            problem = assert_problem(response, 422, "card-number-refused")
            assert "1111" not in response.text, (where, problem)
        # A header cannot carry control characters at all; every other spelling is tried.
        for header in ("X-Audit-Reason", "Idempotency-Key") if pan.isprintable() else ():
            response = await client.post(
                "/api/v1/clients",
                headers=[*world.staff.headers.items(), (header, pan.encode())],
                json={"name": "Acme"},
            )
            assert_problem(response, 422, "card-number-refused")
    # Nothing stored, the sign-in throttle's table included.
    assert await table_counts(factory) == before
