"""The shape of app/: no import circle between packages, requests flow down
(router → service → repository → models) and never back up, and no domain borrows another
domain's request-body base or limits."""

from __future__ import annotations

import ast

from app.cli import PROJECT_ROOT
from tests.architecture.imports import cycles, module_imports, package_graph

DOMAINS = (
    "auth",
    "autopay",
    "invoices",
    "payment_methods",
    "payments",
    "scheduled_payments",
    "tenancy",
    "tickets",
)
# How high a module stands in a request's way down; imports go level or down, never up.
ENTRY, RULES, QUERIES = 3, 2, 1
_LAYER_NAMES = ("router", "dependencies", "service", "repository", "errors", "schemas")


def level(module: str) -> int | None:
    parts = module.split(".")
    if len(parts) < 3 or parts[1] not in DOMAINS:
        return None
    name = parts[2]
    # A domain's sub-package (app.auth.totp.router) stands where its module's name says.
    if len(parts) > 3 and parts[3] in _LAYER_NAMES:
        name = parts[3]
    if name in ("router", "dependencies"):
        return ENTRY
    # Pure modules (the rules of a domain as functions of their inputs) sit as low as queries.
    if name in ("repository", "errors", "schemas", "rules", "planner"):
        return QUERIES
    return RULES


def test_no_import_circle_between_packages() -> None:
    assert cycles(package_graph(PROJECT_ROOT)) == []


def test_the_rule_finds_a_circle() -> None:
    graph = {"app.a": {"app.b"}, "app.b": {"app.c"}, "app.c": {"app.a"}, "app.d": {"app.a"}}
    assert cycles(graph) == [["app.a", "app.b", "app.c"]]


def test_imports_never_go_back_up_a_request() -> None:
    upward = []
    for module, imported in module_imports(PROJECT_ROOT).items():
        here = level(module)
        for other in imported:
            there = level(other)
            if here is not None and there is not None and there > here:
                upward.append(f"{module} imports {other}")
    assert upward == []


def test_pay_now_flows_from_router_to_service_to_repositories() -> None:
    imports = module_imports(PROJECT_ROOT)
    assert "app.payments.service" in imports["app.payments.router"]
    money_path = ("app.payments.service", "app.payments.charges", "app.payments.refunds")
    for module in money_path:
        for other in imports[module]:
            assert level(other) in (None, RULES, QUERIES), f"{module} imports {other}"
            assert not other.endswith((".router", ".dependencies")), f"{module} imports {other}"
    # The invoices domain no longer calls into payments (the pay route lives in payments/).
    assert not any(i.startswith("app.payments") for i in imports["app.invoices.router"])


def test_no_domain_takes_a_base_class_from_another_domains_schemas() -> None:
    borrowed = []
    for path in sorted((PROJECT_ROOT / "app").rglob("*.py")):
        domain = path.relative_to(PROJECT_ROOT / "app").parts[0]
        tree = ast.parse(path.read_text())
        imported_from: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    imported_from[alias.asname or alias.name] = node.module
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                for base in node.bases:
                    source = imported_from.get(base.id, "") if isinstance(base, ast.Name) else ""
                    parts = source.split(".")
                    other = parts[1] if len(parts) == 3 and parts[2] == "schemas" else domain
                    if other in DOMAINS and other != domain:
                        borrowed.append(f"{path.name}: {node.name}({base.id}) from {source}")
    assert borrowed == []
