"""Who is calling: resolved once per request, handed to every repository."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

PrincipalKind = Literal["staff", "client", "api_key"]


@dataclass(frozen=True, slots=True)
class Principal:
    tenant_id: uuid.UUID
    kind: PrincipalKind
    user_id: uuid.UUID | None = None
    client_id: uuid.UUID | None = None
    api_key_id: uuid.UUID | None = None

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
    def actor_key(self) -> str:
        """A stable name for the caller, used to scope idempotency keys."""
        if self.api_key_id is not None:
            return f"key:{self.api_key_id}"
        return f"user:{self.user_id}"

    def client_scope(self, requested: uuid.UUID | None = None) -> uuid.UUID | None:
        """The client a query is limited to: a client user's own, whatever they asked for."""
        if self.is_client:
            return self.client_id
        return requested
