"""The OpenAPI document, written for the programs that read it: clients generated from it,
Swagger UI and Redoc, linters.

FastAPI's own document is the start; this package finishes it in one place, so that routers
need say no more than their decorators already do:
- every error an operation can answer is documented as `application/problem+json` with the
  `Problem` schema (`ValidationProblem`, with `errors`, for 422), including the statuses that
  every operation of its kind answers (401 and 403 when it needs credentials, 400, 413 and 422
  when it takes a body, 503 when it uses the database, 500 always);
- the response headers the service sends (`X-Request-Id` always, `Idempotent-Replayed`,
  `Retry-After`, `WWW-Authenticate`, and what routes declare with `response_headers`);
- a summary and a description on every operation, `servers`, `security: []` on the public
  ones, and an OAuth2 password flow beside bearer tokens (Swagger's Authorize signs in);
- who may call each operation (`x-callers`: staff, client, api_key; `x-api-key-scopes`), see
  `callers`;
- schema names that read well in generated code (`SignInForm`, `InvoicePage`,
  `InvoiceStatus`), see `naming`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from app.core.errors import FieldError, Problem, ValidationProblem
from app.core.openapi.callers import document_callers
from app.core.openapi.naming import give_schemas_names
from app.core.openapi.responses import document_responses, response_headers

__all__ = ["install_openapi", "response_headers"]

TOKEN_URL = "/api/v1/auth/token"  # noqa: S105 (a path, not a password)
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

DESCRIPTION = """\
The JSON API behind an MSP's client billing portal: invoices, payments, payment methods,
AutoPay, scheduled payments and service tickets.

- **Sign in** with `POST /api/v1/auth/token` (OAuth2 password grant) and send
  `Authorization: Bearer <access token>`; integrations send an API key the same way.
- **Errors** are `application/problem+json` (RFC 9457): `type`, `title`, `status`, `detail`,
  and `errors` on 422. Every response carries `X-Request-Id`.
- **Money** is in integer minor units with an ISO 4217 `currency`.
- **Lists** are pages of `items` with a `next_cursor`; pass it back as `cursor`.
- **Retries**: a `POST` that moves money or creates something billable takes an
  `Idempotency-Key`; a retry with the same key replays the first answer
  (`Idempotent-Replayed: true`).
"""

# Shown by Swagger UI and Redoc beside each group of operations.
TAG_DESCRIPTIONS: dict[str, str] = {
    "auth": "Signing in, tokens and the signed-in person's own account.",
    "tenancy": "The MSP's own profile and logo.",
    "clients": "The MSP's client companies and their contacts (staff).",
    "service-categories": "The kinds of service an invoice line belongs to.",
    "api-keys": "Keys for integrations such as a PSA (staff).",
    "payment-methods": "Cards and bank accounts on file, added from gateway tokens.",
    "platform-fees": "Fees the platform charges the MSP (staff).",
    "invoices": "Invoices: drafted and issued by the MSP, seen, downloaded and paid by clients.",
    "payments": "Payment history, payments of several invoices, refunds.",
    "autopay": "Which services a client's invoices are paid for automatically, how and when.",
    "scheduled-payments": "Payments set for a later date, by the client or by AutoPay.",
    "tickets": "Service tickets and billing disputes.",
    "consents": "Consent to bank debits and AutoPay: the texts and the records.",
    "events": "The audit trail: every change, who made it, and why.",
    "webhooks": "Endpoints the service sends its events to (Standard Webhooks).",
    "notifications": "Which kinds of email the signed-in person receives.",
    "operations": "Health checks for load balancers and orchestrators.",
}

SECURITY_SCHEMES: dict[str, Any] = {
    "OAuth2Password": {
        "type": "oauth2",
        "description": "Sign in with email and password; the access token is sent as a bearer "
        "token (Swagger's Authorize does this).",
        "flows": {"password": {"tokenUrl": TOKEN_URL, "scopes": {}}},
    },
    "HTTPBearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "An access token from POST /api/v1/auth/token, or an integration API key.",
    },
}
# Either scheme will do: both end up as `Authorization: Bearer ...`.
SIGNED_IN: list[dict[str, list[str]]] = [{"OAuth2Password": []}, {"HTTPBearer": []}]

ACRONYMS = {"api": "API", "pdf": "PDF", "totp": "TOTP", "mfa": "MFA", "id": "ID", "url": "URL"}


def install_openapi(app: FastAPI) -> None:
    """Serve (and export) the finished document instead of FastAPI's own."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def build_document(app: FastAPI) -> dict[str, Any]:
    routes = [r for r in _api_routes(app.routes) if r.include_in_schema]
    tags = sorted({tag for route in routes for tag in route.tags if isinstance(tag, str)})
    document = get_openapi(
        title=app.title,
        version=app.version,
        openapi_version=app.openapi_version,
        summary=app.summary,
        description=DESCRIPTION,
        routes=app.routes,
        tags=[{"name": t, **_tag_description(t)} for t in tags],
        servers=[{"url": "/", "description": "The service that serves this document."}],
        license_info={"name": "Apache-2.0", "identifier": "Apache-2.0"},
    )
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for model in (Problem, FieldError, ValidationProblem):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schema.pop("$defs", None)
        schemas[model.__name__] = schema
    components["securitySchemes"] = SECURITY_SCHEMES

    by_operation_id = {route.operation_id: route for route in routes}
    for operation in _operations(document):
        route = by_operation_id[operation["operationId"]]
        _describe(operation, route)
        operation["security"] = SIGNED_IN if operation.get("security") else []
        document_responses(operation, route, components)
        document_callers(operation, route)

    give_schemas_names(document)
    components["schemas"] = dict(sorted(components["schemas"].items()))
    components["headers"] = dict(sorted(components.get("headers", {}).items()))
    return document


def _api_routes(routes: Sequence[BaseRoute]) -> Iterator[APIRoute]:
    """Every endpoint, also inside routers that FastAPI keeps included rather than copied
    (newer releases do, as `original_router`)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _api_routes(included.routes)


def _operations(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        item[method]
        for item in document["paths"].values()
        for method in HTTP_METHODS
        if method in item
    ]


def _tag_description(tag: str) -> dict[str, str]:
    description = TAG_DESCRIPTIONS.get(tag)
    return {"description": description} if description else {}


def _describe(operation: dict[str, Any], route: APIRoute) -> None:
    """A summary from the operation id unless the route gave one ("listInvoices" → "List
    invoices"); the description is the endpoint's docstring (a test wants one everywhere)."""
    if route.summary is None:
        words = _camel_words(operation["operationId"])
        summary = " ".join(ACRONYMS.get(w, w) for w in words)
        operation["summary"] = summary[:1].upper() + summary[1:]


def _camel_words(name: str) -> list[str]:
    words: list[str] = []
    for char in name:
        if char.isupper() or not words:
            words.append(char.lower())
        else:
            words[-1] += char
    return words
