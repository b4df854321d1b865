"""Every response an operation can give, documented as the service really sends it.

Errors: the statuses a route declares (`problem_responses`), and those every operation of its
kind answers whatever its route says, all as `application/problem+json`. Headers: `X-Request-Id`
on every response, `Retry-After` with 429 and 503, `WWW-Authenticate` with 401,
`Idempotent-Replayed` where an `Idempotency-Key` is taken, and those a route declares with
`response_headers` (`ETag`).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from app.core.deps import get_session, get_sessionmaker
from app.core.errors import PROBLEM_CONTENT_TYPE, PROBLEM_DESCRIPTIONS, problem_schema_ref

HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-Id": {
        "description": "The request's id (the caller's own when it sent a usable one): quote it "
        "when reporting a problem.",
        "schema": {"type": "string"},
    },
    "ETag": {
        "description": "The resource's version: send it back in `If-Match` to change the "
        "resource only while it is unchanged.",
        "schema": {"type": "string"},
    },
    "Idempotent-Replayed": {
        "description": "`true` when this is the kept answer to an earlier request with the same "
        "`Idempotency-Key` (nothing was done again).",
        "schema": {"type": "string"},
    },
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 1},
    },
    "WWW-Authenticate": {
        "description": "How to authenticate: `Bearer`.",
        "schema": {"type": "string"},
    },
}
IDEMPOTENCY_HEADER = "Idempotency-Key"
# Answers given before an idempotent operation starts, so never kept and replayed.
_NEVER_REPLAYED = {400, 401, 403, 413, 429}
# Descriptions FastAPI writes by itself, which say nothing an HTTP status does not.
_GENERIC = {"Validation Error", "Additional Response"} | {s.phrase for s in HTTPStatus}


def response_headers(*names: str) -> dict[str, Any]:
    """Part of a route's `responses=` entry: the headers it sends with that status, beside the
    ones every operation documents (`X-Request-Id` ...): `{200: response_headers("ETag")}`."""
    unknown = [name for name in names if name not in HEADERS]
    if unknown:
        raise ValueError(f"no such documented header: {unknown}; add it to HEADERS")
    return {"headers": {name: _header_ref(name) for name in names}}


def document_responses(
    operation: dict[str, Any], route: APIRoute, components: dict[str, Any]
) -> None:
    responses: dict[str, Any] = operation["responses"]
    for status in _error_statuses(operation, route):
        given = responses.get(str(status), {})
        description = given.get("description")
        if not description or description in _GENERIC:
            description = PROBLEM_DESCRIPTIONS.get(status, HTTPStatus(status).phrase)
        responses[str(status)] = {
            "description": description,
            "headers": given.get("headers", {}),
            "content": {PROBLEM_CONTENT_TYPE: {"schema": problem_schema_ref(status)}},
        }
    idempotent = any(
        p["in"] == "header" and p["name"] == IDEMPOTENCY_HEADER
        for p in operation.get("parameters", [])
    )
    for code, response in responses.items():
        status = int(code) if code.isdigit() else 500  # `default`: whatever else it answers
        headers = response.setdefault("headers", {})
        headers["X-Request-Id"] = _header_ref("X-Request-Id")
        if status in (429, 503):
            headers["Retry-After"] = _header_ref("Retry-After")
        if status == 401:
            headers["WWW-Authenticate"] = _header_ref("WWW-Authenticate")
        if idempotent and status < 500 and status not in _NEVER_REPLAYED:
            headers["Idempotent-Replayed"] = _header_ref("Idempotent-Replayed")
        response["headers"] = dict(sorted(headers.items()))
        if status < 300:
            _binary_bodies(response)
    operation["responses"] = dict(sorted(responses.items()))
    used = {name for response in responses.values() for name in response["headers"]}
    components.setdefault("headers", {}).update({name: HEADERS[name] for name in used})


def _error_statuses(operation: dict[str, Any], route: APIRoute) -> set[int]:
    statuses = {int(c) for c in operation["responses"] if c.isdigit() and int(c) >= 400}
    statuses.add(500)  # the handler of last resort, on any operation
    if operation["security"]:
        statuses |= {401, 403}  # no or bad credentials; a role, or a password to change first
    if "requestBody" in operation:
        statuses |= {400, 413, 422}  # unreadable, too large, invalid
    if operation.get("parameters"):
        statuses.add(422)
    if _uses_database(route.dependant):
        statuses.add(503)
    return statuses


def _uses_database(dependant: Dependant) -> bool:
    if dependant.call in (get_session, get_sessionmaker):
        return True
    return any(_uses_database(d) for d in dependant.dependencies)


def _binary_bodies(response: dict[str, Any]) -> None:
    """A body that is not JSON (the invoice PDF, the logo) is bytes: say so, so that generated
    clients hand it over as bytes instead of failing to parse it."""
    for media_type, content in response.get("content", {}).items():
        if "json" not in media_type and "schema" not in content:
            content["schema"] = {"type": "string", "format": "binary"}


def _header_ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/headers/{name}"}
