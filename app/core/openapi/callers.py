"""Who may call an operation, written into the document as `x-callers` (and `x-api-key-scopes`).

Read from the route's own dependencies, so it cannot drift from what the service enforces: a
client generator or a reader sees which roles an operation serves, and the isolation matrix
(tests/tenancy/test_isolation_matrix.py) reads it to know what to expect of every caller.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

ROLES = ("staff", "client", "api_key")


def document_callers(operation: dict[str, Any], route: APIRoute) -> None:
    if not operation.get("security"):
        return
    # Imported here: the auth package imports the core, not the other way round.
    from app.auth.dependencies import (
        get_user,
        require_client,
        require_person,
        require_staff,
        scopes_required,
    )

    allowed = set(ROLES)
    scopes: set[str] = set()
    for call in _calls(route.dependant):
        if call is require_staff:
            allowed &= {"staff"}
        elif call is require_client:
            allowed &= {"client"}
        elif call in (require_person, get_user):
            allowed &= {"staff", "client"}
        elif getattr(call, "refuses_clients", False):
            allowed &= {"staff", "api_key"}
        scopes.update(scopes_required(call) or ())
    operation["x-callers"] = [role for role in ROLES if role in allowed]
    if "api_key" in allowed:
        operation["x-api-key-scopes"] = sorted(scopes)


def _calls(dependant: Dependant) -> Iterator[Any]:
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            yield dependency.call
        yield from _calls(dependency)
