"""The import graph of app/, read from the source (nothing is imported): which package uses
which, for tests/architecture/test_layers.py."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path


def unit_of(module: str) -> str:
    """The package a module belongs to (`app.payments.service` → `app.payments`); top-level
    modules (`app.main`, `app.cli`) are units of their own, and so is each part of `app.core`
    (independent machinery: the clock, the hooks registry, idempotency ...), which models may
    use (the clock) and which may use models."""
    parts = module.split(".")
    return ".".join(parts[:3] if parts[:2] == ["app", "core"] else parts[:2])


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, module: str) -> set[str]:
    """Every app module `module` imports, at any depth of its code (lazy imports included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("app.")}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            base = node.module
            if base == "app" or base.startswith("app."):
                found.add(base)
                found |= {f"{base}.{a.name}" for a in node.names}
    return found


def module_imports(root: Path) -> dict[str, set[str]]:
    """module → the app modules (or packages) it imports."""
    return {
        module_name(root, path): imports_of(path.read_text(), module_name(root, path))
        for path in sorted((root / "app").rglob("*.py"))
    }


def package_graph(root: Path) -> dict[str, set[str]]:
    """unit → the other units it imports."""
    graph: dict[str, set[str]] = defaultdict(set)
    for module, imported in module_imports(root).items():
        here = unit_of(module)
        graph[here]
        for other in imported:
            there = unit_of(other)
            if there not in (here, "app"):
                graph[here].add(there)
    return dict(graph)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one unit (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups
