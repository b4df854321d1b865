"""The OpenAPI contract: named, tagged operations, and the committed document is the
served one."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from httpx import AsyncClient

from app.cli import PROJECT_ROOT
from app.main import create_app
from tests.conftest import make_settings

COMMITTED = PROJECT_ROOT / "openapi" / "openapi.json"
CAMEL_CASE = re.compile(r"^[a-z][a-zA-Z0-9]*$")
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@pytest.fixture
async def document(database_url: str, data_dir: Path) -> AsyncIterator[dict[str, Any]]:
    """The document of a freshly built app."""
    app = create_app(make_settings(database_url, data_dir))
    try:
        yield app.openapi()
    finally:
        await app.state.login_throttle.aclose()
        await app.state.engine.dispose()


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]


def test_every_operation_has_a_camel_case_id_and_a_tag(document: dict[str, Any]) -> None:
    found = operations(document)
    assert len(found) >= 16
    problems = []
    for method, path, operation in found:
        operation_id = operation.get("operationId", "")
        if not CAMEL_CASE.match(operation_id):
            problems.append(f"{method} {path}: operationId {operation_id!r} is not camelCase")
        if not operation.get("tags"):
            problems.append(f"{method} {path}: no tag")
    assert not problems, "\n".join(problems)


def test_operation_ids_are_unique(document: dict[str, Any]) -> None:
    ids = [operation["operationId"] for _m, _p, operation in operations(document)]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


def test_the_contracts_operation_ids_are_there(document: dict[str, Any]) -> None:
    by_route = {(m, p): op["operationId"] for m, p, op in operations(document)}
    assert by_route[("POST", "/api/v1/auth/token")] == "signIn"
    assert by_route[("GET", "/api/v1/me")] == "getMe"
    assert by_route[("GET", "/api/v1/clients")] == "listClients"
    assert by_route[("POST", "/api/v1/clients")] == "createClient"
    assert ("GET", "/healthz") in by_route
    assert ("GET", "/readyz") in by_route


def test_every_api_operation_documents_its_problems(document: dict[str, Any]) -> None:
    missing = []
    for method, path, operation in operations(document):
        if not path.startswith("/api/v1/"):
            continue
        codes = {code for code in operation["responses"] if code.startswith(("4", "5"))}
        if not codes:
            missing.append(f"{method} {path}")
        if operation.get("security") and "401" not in codes:
            missing.append(f"{method} {path}: 401")
    assert not missing, missing


async def test_the_document_is_served(client: AsyncClient, document: dict[str, Any]) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    assert response.json() == document


def test_the_committed_document_is_the_served_one(document: dict[str, Any]) -> None:
    hint = "openapi/openapi.json is out of date: run `billing-portal export-openapi`"
    assert COMMITTED.exists(), f"{hint} (the file is missing)"
    committed = json.loads(COMMITTED.read_text())
    # Round-trip the served one through JSON too, so tuples and lists compare alike.
    served = json.loads(json.dumps(document))
    if committed != served:
        changed = (
            sorted(set(committed.get("paths", {})) ^ set(served.get("paths", {})))
            or "paths are the same; schemas or details differ"
        )
        pytest.fail(f"{hint}. Differences: {changed}")
