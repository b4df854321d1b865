"""Where SQL may be written: the rule behind tests/architecture/test_query_placement.py.

Only repositories (`repository.py` files), the engine module (`app/core/db.py`) and the
migrations build statements or run them. Everything else asks a repository. Found by reading
each module's syntax tree (nothing is imported or run):

- importing a statement builder (`select`, `insert`, `update`, `delete`, `text`, `union`,
  `exists`, ...) from SQLAlchemy, or reaching it as `sqlalchemy.select` and the like;
- calling `execute`, `scalar`, `scalars`, `stream`, `exec_driver_sql` on a receiver named like a
  session, connection, engine or cursor, or `get`, `delete`, `merge`, `refresh` on a session.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

STATEMENT_BUILDERS = frozenset(
    {
        "select",
        "insert",
        "update",
        "delete",
        "text",
        "union",
        "union_all",
        "exists",
        "values",
        "lambda_stmt",
    }
)
SQL_MODULES = ("sqlalchemy", "sqlalchemy.sql", "sqlalchemy.future", "sqlalchemy.dialects")
RUNNERS = frozenset({"execute", "scalar", "scalars", "stream", "stream_scalars", "exec_driver_sql"})
SESSION_CALLS = frozenset({"get", "delete", "merge", "refresh", "get_one"})

DATABASE_HANDLES = ("session", "conn", "engine", "cursor", "db")

# Outside the rule, with the reason (a path, or a folder ending in "/").
ALLOWED = {
    "app/core/db.py": "the engine itself (readiness ping)",
    "app/core/migration_lock.py": "the migrations' advisory lock, on their own connection",
    "app/models/": "table definitions: text() for server defaults and partial-index predicates",
    "app/gateways/fake/ledger.py": "the fake gateway's own books (sqlite3), not the service's",
}


@dataclass(frozen=True)
class Stray:
    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


def is_exempt(relative: str) -> bool:
    if Path(relative).name == "repository.py":
        return True
    return any(relative == a or (a.endswith("/") and relative.startswith(a)) for a in ALLOWED)


def strays_in(source: str, relative: str) -> list[Stray]:
    """The SQL written in one module's source that belongs in a repository."""
    found: list[Stray] = []
    for node in ast.walk(ast.parse(source, filename=relative)):
        if isinstance(node, ast.ImportFrom) and node.module and _is_sql_module(node.module):
            for alias in node.names:
                if alias.name in STATEMENT_BUILDERS:
                    found.append(Stray(relative, node.lineno, f"imports {alias.name}"))
        elif isinstance(node, ast.Attribute) and node.attr in STATEMENT_BUILDERS:
            if isinstance(node.value, ast.Name) and node.value.id in ("sqlalchemy", "sa"):
                found.append(Stray(relative, node.lineno, f"uses sqlalchemy.{node.attr}"))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            name = node.func.attr
            receiver = _receiver_name(node.func.value)
            handle = receiver.lower()
            if (name in RUNNERS and any(h in handle for h in DATABASE_HANDLES)) or (
                name in SESSION_CALLS and "session" in handle
            ):
                found.append(Stray(relative, node.lineno, f"calls {receiver}.{name}()"))
    return found


def strays_under(root: Path, package: str = "app") -> list[Stray]:
    found: list[Stray] = []
    for path in sorted((root / package).rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        if not is_exempt(relative):
            found += strays_in(path.read_text(), relative)
    return found


def _is_sql_module(module: str) -> bool:
    return any(module == m or module.startswith(m + ".") for m in SQL_MODULES)


def _receiver_name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""
