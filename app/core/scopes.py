"""What an integration (API) key may do. People are not scoped: their role decides.

Every route an API key can call declares the scope it needs with `Scoped(...)`
(`app/auth/dependencies.py`); a key without it is answered 403.
"""

from __future__ import annotations

from typing import Literal, get_args

Scope = Literal[
    "invoices:write",
    "invoices:read",
    "payments:read",
    "clients:read",
    "clients:write",
    "events:read",
    "webhooks:write",
]
ALL_SCOPES: tuple[Scope, ...] = get_args(Scope)
# What every key could do before keys had scopes: a key created without `scopes` gets these.
V1_SCOPES: tuple[Scope, ...] = ("invoices:write", "invoices:read", "payments:read")
