"""Who is calling: resolved once per request, handed to every repository.

Background work (the payment runner, reconciliation, the outboxes) acts as the `system`
principal of one tenant at a time, so even it cannot write a query that forgets the tenant.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Literal, Protocol

PrincipalKind = Literal["staff", "client", "api_key", "system"]


@dataclass(frozen=True, slots=True)
class Principal:
    tenant_id: uuid.UUID
    kind: PrincipalKind
    user_id: uuid.UUID | None = None
    client_id: uuid.UUID | None = None
    api_key_id: uuid.UUID | None = None

    @classmethod
    def system(cls, tenant_id: uuid.UUID) -> Principal:
        """The service itself, working on one tenant's rows (and every client's of it)."""
        return cls(tenant_id=tenant_id, kind="system")

    @property
    def is_staff(self) -> bool:
        return self.kind == "staff"

    @property
    def is_client(self) -> bool:
        return self.kind == "client"

    @property
    def is_api_key(self) -> bool:
        return self.kind == "api_key"

    @property
    def is_system(self) -> bool:
        return self.kind == "system"

    @property
    def actor_key(self) -> str:
        """A stable name for the caller, used to scope idempotency keys."""
        if self.api_key_id is not None:
            return f"key:{self.api_key_id}"
        if self.user_id is not None:
            return f"user:{self.user_id}"
        return f"system:{self.tenant_id}"

    def client_scope(self, requested: uuid.UUID | None = None) -> uuid.UUID | None:
        """The client a query is limited to: the caller's own (a client user's, or the one a
        staff member or the system acts for), whatever they asked for; else the one asked for."""
        if self.client_id is not None:
            return self.client_id
        return requested


@dataclass(frozen=True, slots=True)
class ClientPrincipal(Principal):
    """A caller acting for exactly one client company: its `client_id` is never None."""

    client_id: uuid.UUID = field(kw_only=True)

    @classmethod
    def of(cls, principal: Principal, client_id: uuid.UUID) -> ClientPrincipal:
        return cls(
            tenant_id=principal.tenant_id,
            kind=principal.kind,
            user_id=principal.user_id,
            api_key_id=principal.api_key_id,
            client_id=client_id,
        )


class Person(Protocol):
    @property
    def id(self) -> uuid.UUID: ...
    @property
    def tenant_id(self) -> uuid.UUID: ...
    @property
    def role(self) -> str: ...
    @property
    def client_id(self) -> uuid.UUID | None: ...


def person_principal(user: Person, active_client_id: uuid.UUID | None = None) -> Principal:
    """A signed-in person as a principal: a client contact always acts for one client, the
    session's active one (their first company when none is named)."""
    if user.role == "staff":
        return Principal(tenant_id=user.tenant_id, kind="staff", user_id=user.id)
    client_id = active_client_id or user.client_id
    assert client_id is not None, "a client contact belongs to a client"
    return ClientPrincipal(
        tenant_id=user.tenant_id, kind="client", user_id=user.id, client_id=client_id
    )
