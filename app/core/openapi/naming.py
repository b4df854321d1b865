"""Schema names that read well in generated code.

A generator names a class after its schema, or after where an unnamed schema sits: FastAPI's
`Body_signIn` becomes `BodySignIn`, and the inline enum of an optional `?status=` parameter
`ListInvoicesStatusType0`. Here form bodies are named after their operation (`SignInForm`),
an optional parameter's `null` (no query string carries one) is dropped, and every inline enum
becomes a named schema, shared by the places that use the same values under the same name:
`InvoiceStatus` for `InvoiceOut.status`, `InvoiceDetail.status` and `listInvoices?status=`.
A generic model's schema takes the name the model gives itself (`Page[InvoiceOut]` is
`InvoicePage`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

SCHEMAS_REF = "#/components/schemas/"
# A model's name without its role, to name what it holds: `InvoiceDetail.status` is the
# invoice's status, `InvoiceStatus`.
_ROLE_SUFFIXES = ("Detail", "Created", "Create", "Update", "Change", "Summary", "Out", "In")
# FastAPI's schemas for its own 422 body, replaced by `ValidationProblem`.
_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def give_schemas_names(document: dict[str, Any]) -> None:
    _name_form_bodies(document)
    _name_generics(document)
    _drop_null_from_optional_parameters(document)
    _name_enums(document)
    schemas = document["components"]["schemas"]
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        if name in schemas and SCHEMAS_REF + name not in _refs(document):
            del schemas[name]


def pascal(name: str) -> str:
    """`invoice_id`, `If-Match`, `listInvoices` → `InvoiceId`, `IfMatch`, `ListInvoices`."""
    parts = name.replace("-", "_").split("_")
    return "".join(part[:1].upper() + part[1:] for part in parts)


def _operations(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [op for item in document["paths"].values() for op in item.values() if "responses" in op]


def _name_form_bodies(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    renamed = {}
    for name in [n for n in schemas if n.startswith("Body_")]:
        new = pascal(name.removeprefix("Body_")) + "Form"
        schemas[new] = {**schemas.pop(name), "title": new}
        renamed[SCHEMAS_REF + name] = SCHEMAS_REF + new
    _replace_refs(document, renamed)


def _name_generics(document: dict[str, Any]) -> None:
    """pydantic keys a generic model's schema by its parameters (`Page_InvoiceOut_`) whatever
    the model calls itself; the title is the name the model chose (`InvoicePage`)."""
    schemas = document["components"]["schemas"]
    renamed = {}
    for name in [n for n in schemas if "_" in n]:
        title = schemas[name].get("title")
        usable = isinstance(title, str) and title.isidentifier() and "_" not in title
        if usable and title not in schemas:
            schemas[title] = schemas.pop(name)
            renamed[SCHEMAS_REF + name] = SCHEMAS_REF + title
    _replace_refs(document, renamed)


def _drop_null_from_optional_parameters(document: dict[str, Any]) -> None:
    for operation in _operations(document):
        for parameter in operation.get("parameters", []):
            schema = parameter.get("schema", {})
            if parameter.get("required") or "anyOf" not in schema:
                continue
            kept = [s for s in schema["anyOf"] if s != {"type": "null"}]
            rest = {k: v for k, v in schema.items() if k != "anyOf"}
            parameter["schema"] = {**kept[0], **rest} if len(kept) == 1 else {**rest, "anyOf": kept}


@dataclass
class _Site:
    """Where an inline enum sits: `holder[key]`, for a model's property or a parameter."""

    holder: Any
    key: str | int
    values: tuple[Any, ...]
    name: str  # the name it would have by where it sits
    fallback: str  # a longer name, unique, for when the short one means two things


def _name_enums(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    property_sites: list[_Site] = []
    for model, schema in schemas.items():
        short = _strip_role(model)
        for prop in schema.get("properties", {}):
            named = (short + pascal(prop), model + pascal(prop))
            property_sites += _enum_sites(schema["properties"], prop, *named)
    _settle_clashes(property_sites)
    by_values: dict[tuple[Any, ...], Counter[str]] = {}
    for site in property_sites:
        by_values.setdefault(site.values, Counter())[site.name] += 1

    parameter_sites: list[_Site] = []
    for operation in _operations(document):
        for parameter in operation.get("parameters", []):
            own = pascal(operation["operationId"]) + pascal(parameter["name"])
            for site in _enum_sites(parameter, "schema", own, own):
                # A parameter takes the name its values have in the models, when they have one.
                known = by_values.get(site.values)
                if known:
                    site.name = sorted(known.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
                parameter_sites.append(site)

    for site in property_sites + parameter_sites:
        node = site.holder[site.key]
        name = _free_name(schemas, site.name, node)
        schemas[name] = {"type": node["type"], "enum": node["enum"], "title": name}
        kept = {k: v for k, v in node.items() if k not in ("type", "enum", "title")}
        site.holder[site.key] = {"$ref": SCHEMAS_REF + name, **kept}


def _enum_sites(holder: Any, key: str | int, name: str, fallback: str) -> list[_Site]:
    node = holder[key]
    if not isinstance(node, dict):
        return []
    if "enum" in node and node.get("type") in ("string", "integer"):
        return [_Site(holder, key, tuple(node["enum"]), name, fallback)]
    found: list[_Site] = []
    for combinator in ("anyOf", "oneOf", "allOf"):
        for index in range(len(node.get(combinator, []))):
            found += _enum_sites(node[combinator], index, name, fallback)
    if "items" in node:  # one of a list: `scopes` holds values of `ApiKeyScope`
        found += _enum_sites(node, "items", _singular(name), _singular(fallback))
    return found


def _singular(name: str) -> str:
    return name[:-1] if name.endswith("s") and not name.endswith("ss") else name


def _settle_clashes(sites: list[_Site]) -> None:
    """Sites that would share a name but hold different values each take their longer name."""
    values_by_name: dict[str, set[tuple[Any, ...]]] = {}
    for site in sites:
        values_by_name.setdefault(site.name, set()).add(site.values)
    for site in sites:
        if len(values_by_name[site.name]) > 1:
            site.name = site.fallback


def _free_name(schemas: dict[str, Any], name: str, node: dict[str, Any]) -> str:
    """`name`, unless a different schema has it already (then `name` + "Value")."""
    existing = schemas.get(name)
    if existing is None or existing.get("enum") == node["enum"]:
        return name
    return _free_name(schemas, name + "Value", node)


def _strip_role(model: str) -> str:
    for suffix in _ROLE_SUFFIXES:
        if model.endswith(suffix) and len(model) > len(suffix):
            return model.removesuffix(suffix)
    return model


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node))
    return set()


def _replace_refs(node: Any, renamed: dict[str, str]) -> None:
    if isinstance(node, dict):
        if node.get("$ref") in renamed:
            node["$ref"] = renamed[node["$ref"]]
        for value in node.values():
            _replace_refs(value, renamed)
    elif isinstance(node, list):
        for value in node:
            _replace_refs(value, renamed)
