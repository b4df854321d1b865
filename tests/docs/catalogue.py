"""What the code can answer, set and send, read from the code itself: the problem types, the
settings and the event types that the documents under docs/ must each describe.

Read, never copied: a new problem type, setting or event fails the documentation tests until
its entry is written."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from app.cli import PROJECT_ROOT
from app.core.config import Settings
from app.core.errors import status_slug
from app.core.events import EVENT_TYPES

APP = PROJECT_ROOT / "app"

# Statuses that Starlette's router answers by itself, before any route runs (an unknown path,
# a method the path lacks); their problem type is named after the status's phrase.
ROUTER_STATUSES = (404, 405)


def _string(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _slugs_in(tree: ast.AST) -> Iterator[str]:
    for node in ast.walk(tree):
        # class SomethingWrong(Conflict): type_slug = "something-wrong"
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = {t.id for t in targets if isinstance(t, ast.Name)}
            if "type_slug" in names and node.value is not None and _string(node.value):
                yield str(_string(node.value))
        elif isinstance(node, ast.Call):
            # problem_response(..., type_slug="not-ready"), _problem(..., type_slug="...")
            for keyword in node.keywords:
                if keyword.arg == "type_slug" and _string(keyword.value):
                    yield str(_string(keyword.value))
            # problem_type_uri("some-slug")
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name == "problem_type_uri" and node.args and _string(node.args[0]):
                yield str(_string(node.args[0]))
            # Refusal(422, "card-number-refused", ...) in app/core/input_screen.py
            if name == "Refusal" and len(node.args) > 1 and _string(node.args[1]):
                yield str(_string(node.args[1]))
            # _problem(413, "Payload too large", "payload-too-large", ...) in the middleware
            if name == "_problem" and len(node.args) > 2 and _string(node.args[2]):
                yield str(_string(node.args[2]))


def problem_slugs() -> set[str]:
    """Every problem type slug the service can answer with."""
    found = {status_slug(status) for status in ROUTER_STATUSES}
    for path in sorted(APP.rglob("*.py")):
        found.update(_slugs_in(ast.parse(path.read_text(encoding="utf-8"), str(path))))
    return found


def setting_names() -> set[str]:
    """The environment variable of every Settings field (`BILLING_` + the name, or its alias)."""
    names = set()
    prefix = str(Settings.model_config.get("env_prefix", ""))
    for field_name, field in Settings.model_fields.items():
        alias = field.validation_alias
        choices = getattr(alias, "choices", None)
        if choices:
            names.add(str(choices[0]))
        elif isinstance(alias, str):
            names.add(alias)
        else:
            names.add((prefix + field_name).upper())
    return names


def event_types() -> set[str]:
    return set(EVENT_TYPES)


def read(relative: str) -> str:
    return (PROJECT_ROOT / relative).read_text(encoding="utf-8")


def documents() -> list[Path]:
    """README.md and every Markdown file under docs/."""
    return [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").rglob("*.md"))]
