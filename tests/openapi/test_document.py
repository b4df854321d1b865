"""The OpenAPI document as programs read it: errors, headers, names, security, descriptions.
(What the service really sends is checked against it for the whole suite: see
tests/openapi_conformance.py.)"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from app.core.openapi import TOKEN_URL

HTTP_METHODS = ("get", "put", "post", "delete", "patch")
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
VALIDATION_REF = {"$ref": "#/components/schemas/ValidationProblem"}
PUBLIC = {"signIn", "refreshToken", "healthz", "readyz"}
# Names a generator would turn into classes nobody wants to read.
BAD_SCHEMA_NAME = re.compile(r"^(Body|Page)_|_|^HTTPValidationError$|^ValidationError$|Type\d+$")


@pytest.fixture
def document(app: Any) -> dict[str, Any]:
    served: dict[str, Any] = app.openapi()
    return served


def operations(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                yield f"{method.upper()} {path}", item[method]


def responses(document: dict[str, Any]) -> Iterator[tuple[str, int, dict[str, Any]]]:
    for where, operation in operations(document):
        for code, response in operation["responses"].items():
            yield where, int(code), response


def test_every_error_is_problem_json_with_the_problem_schemas(document: dict[str, Any]) -> None:
    wrong = []
    for where, status, response in responses(document):
        if status < 400:
            continue
        expected = VALIDATION_REF if status == 422 else PROBLEM_REF
        if response.get("content") != {"application/problem+json": {"schema": expected}}:
            wrong.append(f"{where} {status}: {response.get('content')}")
    assert not wrong, "\n".join(wrong)


def test_the_problem_schemas_carry_the_contracts_members(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    problem, validation = schemas["Problem"], schemas["ValidationProblem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail"}
    assert {"decline_code", "payment_id", "request_id", "instance"} <= set(problem["properties"])
    assert problem["additionalProperties"] is True  # members of a problem type of its own
    assert "errors" in validation["required"]
    item = validation["properties"]["errors"]["items"]
    assert item == {"$ref": "#/components/schemas/FieldError"}
    assert set(schemas["FieldError"]["required"]) == {"loc", "msg"}


def test_operations_answer_the_statuses_of_their_kind(document: dict[str, Any]) -> None:
    missing = []
    for where, operation in operations(document):
        codes = set(operation["responses"])
        expected = {"500"}
        if operation["security"]:
            expected |= {"401", "403", "503"}
        if "requestBody" in operation:
            expected |= {"400", "413", "422"}
        if operation.get("parameters"):
            expected.add("422")
        if not expected <= codes:
            missing.append(f"{where}: {sorted(expected - codes)}")
    assert not missing, "\n".join(missing)


def test_response_headers_are_documented_where_they_are_sent(document: dict[str, Any]) -> None:
    problems = []
    for where, status, response in responses(document):
        headers = response.get("headers", {})
        if "X-Request-Id" not in headers:
            problems.append(f"{where} {status}: no X-Request-Id")
        if status in (429, 503) and "Retry-After" not in headers:
            problems.append(f"{where} {status}: no Retry-After")
        if status == 401 and "WWW-Authenticate" not in headers:
            problems.append(f"{where} {status}: no WWW-Authenticate")
    assert not problems, "\n".join(problems)
    paths = document["paths"]
    pay = paths["/api/v1/invoices/{invoice_id}/pay"]["post"]["responses"]
    assert {"201", "402", "409", "422"} <= {
        code for code, r in pay.items() if "Idempotent-Replayed" in r["headers"]
    }
    assert "Idempotent-Replayed" not in pay["401"]["headers"]  # refused before the key counts
    for path, method, status in (
        ("/api/v1/scheduled-payments", "post", "201"),
        ("/api/v1/scheduled-payments/{scheduled_payment_id}", "get", "200"),
        ("/api/v1/scheduled-payments/{scheduled_payment_id}", "patch", "200"),
        ("/api/v1/autopay", "get", "200"),
        ("/api/v1/autopay", "put", "200"),
    ):
        assert "ETag" in paths[path][method]["responses"][status]["headers"], (path, method)
    defined = document["components"]["headers"]
    assert set(defined) >= {"ETag", "Idempotent-Replayed", "Retry-After", "X-Request-Id"}


def test_the_pdf_is_binary(document: dict[str, Any]) -> None:
    ok = document["paths"]["/api/v1/invoices/{invoice_id}/pdf"]["get"]["responses"]["200"]
    assert ok["content"] == {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}


def test_every_operation_has_a_summary_and_a_description(document: dict[str, Any]) -> None:
    bare = [
        where
        for where, operation in operations(document)
        if not operation.get("summary", "").strip() or not operation.get("description", "").strip()
    ]
    assert not bare, bare
    summaries = {op["operationId"]: op["summary"] for _w, op in operations(document)}
    assert summaries["listInvoices"] == "List invoices"
    assert summaries["getInvoicePdf"] == "Get invoice PDF"


def test_public_operations_say_so_and_the_rest_sign_in_either_way(
    document: dict[str, Any],
) -> None:
    schemes = document["components"]["securitySchemes"]
    password = schemes["OAuth2Password"]
    assert password["type"] == "oauth2"
    assert password["flows"]["password"]["tokenUrl"] == TOKEN_URL
    assert TOKEN_URL in document["paths"]
    assert schemes["HTTPBearer"] == {**schemes["HTTPBearer"], "type": "http", "scheme": "bearer"}
    signed_in = [{"OAuth2Password": []}, {"HTTPBearer": []}]
    for where, operation in operations(document):
        assert operation["security"] in ([], signed_in), where
        if operation["operationId"] in PUBLIC:
            assert operation["security"] == [], where
    assert document["paths"]["/api/v1/me"]["get"]["security"] == signed_in


def test_the_document_names_its_servers_tags_and_licence(document: dict[str, Any]) -> None:
    assert document["servers"] == [
        {"url": "/", "description": document["servers"][0]["description"]}
    ]
    assert document["info"]["license"]["identifier"] == "Apache-2.0"
    tags = {tag["name"]: tag for tag in document["tags"]}
    used = {t for _w, op in operations(document) for t in op["tags"]}
    assert used <= set(tags)
    assert all(tags[t].get("description") for t in ("invoices", "payments", "auth"))


def test_schema_names_read_well_in_generated_code(document: dict[str, Any]) -> None:
    names = set(document["components"]["schemas"])
    assert not [n for n in names if BAD_SCHEMA_NAME.search(n)], sorted(names)
    assert {"SignInForm", "InvoicePage", "InvoiceStatus", "TicketPriority"} <= names
    invoices = document["paths"]["/api/v1/invoices"]["get"]["parameters"]
    (status,) = [p for p in invoices if p["name"] == "status"]
    assert status["schema"] == {"$ref": "#/components/schemas/InvoiceStatus"}
    detail = document["components"]["schemas"]["InvoiceDetail"]["properties"]["status"]
    assert detail["$ref"] == "#/components/schemas/InvoiceStatus"


def test_no_enum_is_left_unnamed(document: dict[str, Any]) -> None:
    """An inline enum becomes a class named after where it sits (`ListInvoicesStatusType0`)."""
    found: list[str] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            if "enum" in node:
                found.append(where)
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{where}/{index}")

    walk(document["paths"], "paths")
    for name, schema in document["components"]["schemas"].items():
        walk({k: v for k, v in schema.items() if k != "enum"}, f"schemas/{name}")
    assert not found, found
