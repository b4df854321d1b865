"""Every string a client can send has a maximum length stated in the served document (body
fields, form fields, query parameters and headers), and every integer a maximum: a limit the
server enforces but the document does not state is a client's surprise."""

from __future__ import annotations

from typing import Any

from httpx import AsyncClient

# Bounded otherwise: a format pydantic checks, or bytes (the logo, bounded by the body limit).
_BOUNDED_FORMATS = {"uuid", "date", "date-time", "binary"}


def _unbounded(
    schema: dict[str, Any], where: str, doc: dict[str, Any], seen: set[str]
) -> list[str]:
    if "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        if name in seen:
            return []
        return _unbounded(doc["components"]["schemas"][name], where, doc, seen | {name})
    found: list[str] = []
    for key in ("anyOf", "oneOf", "allOf"):
        for option in schema.get(key, []):
            found += _unbounded(option, where, doc, seen)
    kind = schema.get("type")
    otherwise_bounded = (
        "maxLength" in schema
        or "enum" in schema
        or schema.get("format") in _BOUNDED_FORMATS
        or "contentMediaType" in schema
    )
    if kind == "string" and not otherwise_bounded:
        found.append(where)
    if kind == "integer" and "maximum" not in schema and "enum" not in schema:
        found.append(where)
    for name, child in schema.get("properties", {}).items():
        found += _unbounded(child, f"{where}.{name}", doc, seen)
    if isinstance(schema.get("items"), dict):
        found += _unbounded(schema["items"], f"{where}[]", doc, seen)
    return found


async def test_every_input_string_and_integer_has_a_documented_maximum(client: AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    unbounded: list[str] = []
    for operations in doc["paths"].values():
        for op in operations.values():
            for media in op.get("requestBody", {}).get("content", {}).values():
                unbounded += _unbounded(media["schema"], op["operationId"], doc, set())
            for param in op.get("parameters", []):
                where = f"{op['operationId']} {param['in']} {param['name']}"
                unbounded += _unbounded(param["schema"], where, doc, set())
    assert not unbounded, "\n".join(unbounded)
