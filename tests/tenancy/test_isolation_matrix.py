"""The isolation matrix, generated from the served OpenAPI document.

For every operation that takes a path id: called on the first tenant's objects by the other
tenant's staff, client user and API key, and on one client's objects by a contact of another
client of the same tenant, it answers 404 (403 when the caller's role may not call it at all:
the role check comes first, so an id's existence is never revealed). Every operation a client
user may not call (its `x-callers` lacks `client`) answers 403 to one, on the client's own
objects; likewise 403 to an API key when `api_key` is missing. An operation the matrix cannot
classify (no `x-callers`, or a path parameter it does not know) fails the test, so a new
endpoint is covered the day it appears.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import select

from app.models import Base
from tests.factories import Factory, assert_problem
from tests.tenancy.estate import Estate, TenantEstate, build_estate

# Path parameters naming an object, by who owns it: a client, or the tenant as a whole.
CLIENT_OWNED = {
    "client_id",
    "user_id",
    "payment_method_id",
    "invoice_id",
    "external_id",
    "payment_id",
    "scheduled_payment_id",
    "ticket_id",
    "event_id",
}
TENANT_OWNED = {"key_id", "endpoint_id", "delivery_id"}
# Path parameters that name a fixed thing rather than an object (their schema's enum).
NAMES = {"kind"}
# Keys an integration chooses, in its own tenant's namespace: the same key used by another
# tenant names that tenant's own object (an upsert makes it), never the first tenant's.
NAMESPACED = {"external_id"}
ROLES = ("staff", "client", "api_key")
# Columns that record a use rather than a change (a refused call may still count as a use).
USE_COLUMNS = {"last_used_at", "last_seen_at"}


@pytest.fixture
async def estate(client: AsyncClient, factory: Factory) -> Estate:
    return await build_estate(client, factory)


def operations(document: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if isinstance(operation, dict) and operation.get("security"):
                found.append({"method": method.upper(), "path": path, **operation})
    return found


def path_params(operation: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in operation.get("parameters", []) if p["in"] == "path"]


def unclassified(operation: dict[str, Any]) -> list[str]:
    problems = []
    callers = operation.get("x-callers")
    if not callers or not set(callers) <= set(ROLES):
        problems.append(f"{operation['operationId']}: x-callers is {callers!r}")
    for param in path_params(operation):
        if param["name"] not in CLIENT_OWNED | TENANT_OWNED | NAMES | NAMESPACED:
            problems.append(f"{operation['operationId']}: path parameter {param['name']!r}")
    return problems


def url_for(operation: dict[str, Any], owner: TenantEstate, client_index: int) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in NAMES:
            param = next(p for p in path_params(operation) if p["name"] == name)
            return str(_resolve(param["schema"], DOCUMENT)["enum"][0])
        if name in CLIENT_OWNED | NAMESPACED:
            return owner.clients[client_index].ids[name]
        return owner.ids[name]

    return re.sub(r"\{([^}]+)\}", value, operation["path"])


DOCUMENT: dict[str, Any] = {}


def _resolve(schema: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def sample(schema: dict[str, Any], name: str, own: dict[str, str]) -> Any:
    """A small valid value for `schema`: required fields only; ids are the caller's own."""
    schema = _resolve(schema, DOCUMENT)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [s for s in schema[key] if _resolve(s, DOCUMENT).get("type") != "null"]
            return sample(options[0], name, own)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        return {k: sample(properties[k], k, own) for k in schema.get("required", [])}
    if kind == "array":
        return [sample(schema["items"], name, own) for _ in range(schema.get("minItems", 0))]
    if kind == "integer":
        # The document may spell a bound as 1.0; the body must carry a true integer.
        return int(max(schema.get("minimum", 1), schema.get("exclusiveMinimum", 0) + 1))
    if kind == "boolean":
        return True
    if name in own:
        return str(own[name])
    return _string(schema, name)


def _string(schema: dict[str, Any], name: str) -> str:
    fmt = schema.get("format")
    if fmt == "date":
        return (datetime.now(UTC).date() + timedelta(days=7)).isoformat()
    if fmt == "date-time":
        return datetime.now(UTC).isoformat()
    if fmt == "email":
        return "matrix@example.com"
    if fmt == "uuid":
        return "00000000-0000-4000-8000-000000000000"
    if name == "currency":
        return "USD"
    if name == "url":
        return "https://93.184.216.34/matrix"
    return "M" * max(int(schema.get("minLength", 1)), 6)


def body_for(operation: dict[str, Any], caller_estate: TenantEstate) -> dict[str, Any]:
    """The request's body (or none): the caller's own ids wherever the body names one."""
    content = operation.get("requestBody", {}).get("content", {})
    own = {**caller_estate.ids, **caller_estate.clients[0].ids}
    own["service_category_id"] = str(caller_estate.category.id)
    if "application/json" in content:
        return {"json": sample(content["application/json"]["schema"], "", own)}
    if "multipart/form-data" in content:
        form = _resolve(content["multipart/form-data"]["schema"], DOCUMENT)
        return {"files": dict.fromkeys(form.get("required", []), ("logo.png", PNG, "image/png"))}
    assert not content, f"{operation['operationId']}: no body for {sorted(content)}"
    return {}


# The smallest well-formed PNG: a 1x1 transparent pixel.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5f0000000049454e44ae426082"
)


async def call(
    http: AsyncClient,
    operation: dict[str, Any],
    url: str,
    headers: dict[str, str],
    caller_estate: TenantEstate,
) -> Any:
    request = body_for(operation, caller_estate)
    all_headers = {**headers, **request.pop("headers", {})}
    return await http.request(operation["method"], url, headers=all_headers, **request)


async def snapshot(
    factory: Factory, tenant_id: uuid.UUID | None = None
) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, bar the columns that only record a use. With `tenant_id`: that
    tenant's rows of the tables that have the column (a child row's change shows on its
    parent's `updated_at` and totals)."""
    found: dict[str, list[tuple[Any, ...]]] = {}
    async with factory.sessionmaker() as session:
        for table in Base.metadata.sorted_tables:
            columns = [c for c in table.columns if c.name not in USE_COLUMNS]
            query = select(*columns)
            if tenant_id is not None:
                if "tenant_id" not in table.columns:
                    continue
                query = query.where(table.columns["tenant_id"] == tenant_id)
            rows = (await session.execute(query)).all()
            found[table.name] = sorted(tuple(map(repr, row)) for row in rows)
    return found


async def test_every_operation_is_classified(app: Any) -> None:
    problems = [p for op in operations(app.openapi()) for p in unclassified(op)]
    assert not problems, "The isolation matrix cannot classify:\n" + "\n".join(problems)


async def test_isolation_matrix(
    app: Any, client: AsyncClient, factory: Factory, estate: Estate
) -> None:
    DOCUMENT.clear()
    DOCUMENT.update(app.openapi())
    mine, theirs = estate.mine, estate.theirs
    before = await snapshot(factory)
    failures: list[str] = []

    async def expect(op: dict[str, Any], who: str, url: str, role: str, response: Any) -> None:
        expected = 404 if role in op["x-callers"] else 403
        if response.status_code != expected:
            failures.append(
                f"{op['method']} {url} ({op['operationId']}) as {who}: "
                f"{response.status_code}, expected {expected}: {response.text[:200]}"
            )
        else:
            assert_problem(response, expected, "not-found" if expected == 404 else None)

    checked = 0
    namespaced: list[dict[str, Any]] = []
    for op in operations(DOCUMENT):
        assert not unclassified(op), unclassified(op)
        names = {p["name"] for p in path_params(op)}
        if names & NAMESPACED:
            namespaced.append(op)
        elif names - NAMES:
            # Another tenant's staff, client user and API key, on the first tenant's objects.
            url = url_for(op, mine, 0)
            for role, headers in theirs.callers().items():
                response = await call(client, op, url, headers, theirs)
                await expect(op, f"another tenant's {role}", url, role, response)
                checked += 1
            # A contact of the second client, on the first client's objects.
            if names & CLIENT_OWNED and "client" in op["x-callers"]:
                second = mine.clients[1]
                headers = second.contact.headers
                response = await call(client, op, url, headers, _as_second(mine))
                await expect(op, "another client's user", url, "client", response)
                checked += 1
        # A role an operation does not serve is refused, even on the caller's own objects.
        url = url_for(op, mine, 0)
        for role in ("client", "api_key"):
            if role not in op["x-callers"]:
                response = await call(client, op, url, mine.callers()[role], mine)
                if response.status_code != 403:
                    failures.append(
                        f"{op['method']} {url} ({op['operationId']}) as {role}: "
                        f"{response.status_code}, expected 403: {response.text[:200]}"
                    )
                else:
                    assert_problem(response, 403)
                checked += 1
    assert not failures, f"{len(failures)} of {checked} calls:\n" + "\n".join(failures)
    after = await snapshot(factory)
    changed = [name for name in before if before[name] != after[name]]
    assert not changed, f"refused calls changed {changed}"

    # The other tenant's key names its own object, and the first tenant's stays as it was.
    for op in namespaced:
        owners = await snapshot(factory, mine.tenant.id)
        url = url_for(op, mine, 0)
        for role, headers in theirs.callers().items():
            response = await call(client, op, url, headers, theirs)
            if role in op["x-callers"]:
                assert response.status_code < 300, f"{op['operationId']}: {response.text}"
                assert response.json()["id"] not in {c.ids["invoice_id"] for c in mine.clients}, (
                    f"{op['operationId']} as another tenant's {role} reached the first's object"
                )
            else:
                assert_problem(response, 403)
        assert await snapshot(factory, mine.tenant.id) == owners, op["operationId"]


def _as_second(estate: TenantEstate) -> TenantEstate:
    """The tenant seen from its second client: the body names that client's own objects."""
    return TenantEstate(
        estate.tenant,
        estate.staff,
        estate.key_secret,
        estate.category,
        [estate.clients[1], estate.clients[0]],
        estate.ids,
    )
