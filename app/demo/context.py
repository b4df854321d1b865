"""What the demo seeders share: the tenant, its people, and the steps to run once the demo's
data is committed (those that go through the gateway, as a real client's would)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.principal import Principal, person_principal
from app.gateways.base import PaymentGateway
from app.models import Client, ServiceCategory, Tenant, User


@dataclass
class DemoContext:
    session: AsyncSession
    sessionmaker: async_sessionmaker[AsyncSession]
    settings: Settings
    gateway: PaymentGateway
    tenant: Tenant
    staff: User
    clients: list[Client] = field(default_factory=list)
    contacts: dict[uuid.UUID, User] = field(default_factory=dict)
    categories: dict[str, ServiceCategory] = field(default_factory=dict)
    logins: list[tuple[str, str, str]] = field(default_factory=list)
    # Run in order after the data above is committed: money moves in transactions of its own.
    after_commit: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def principal_for(self, user: User) -> Principal:
        return person_principal(user)


DemoSeeder = Callable[[DemoContext], Awaitable[None]]
