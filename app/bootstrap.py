"""Bootstrapping a database: the first staff user, and a demo tenant for newcomers."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.db import create_engine, create_sessionmaker, transaction
from app.core.principal import Principal
from app.core.security import hash_password, password_problem
from app.gateways.base import PaymentGateway
from app.models import Client, ServiceCategory, Tenant, User

DEMO_PASSWORD = "demo-password-2026"  # noqa: S105 - printed for the demo, on purpose


async def create_staff(
    settings: Settings,
    *,
    email: str,
    password: str,
    tenant_name: str | None,
    full_name: str | None = None,
) -> uuid.UUID:
    email = email.strip().lower()
    problem = password_problem(password, email)
    if problem:
        raise ValueError(problem)
    engine = create_engine(settings)
    try:
        async with transaction(create_sessionmaker(engine)) as session:
            if (await session.execute(select(User).where(User.email == email))).scalar():
                raise ValueError(f"a user with email {email} exists already")
            tenant = await _tenant_for_staff(session, tenant_name)
            user = User(
                tenant_id=tenant.id,
                email=email,
                full_name=full_name or email.split("@")[0],
                role="staff",
                password_hash=hash_password(password),
            )
            session.add(user)
            await session.flush()
            return user.id
    finally:
        await engine.dispose()


async def _tenant_for_staff(session: AsyncSession, name: str | None) -> Tenant:
    tenants = list((await session.execute(select(Tenant).order_by(Tenant.created_at))).scalars())
    if name:
        for tenant in tenants:
            if tenant.name == name:
                return tenant
    elif len(tenants) == 1:
        return tenants[0]
    elif len(tenants) > 1:
        raise ValueError("there are several tenants: name one with --tenant")
    tenant = Tenant(name=name or "My MSP")
    session.add(tenant)
    await session.flush()
    return tenant


@dataclass
class DemoContext:
    """What the demo seeders share: the tenant, its people and the logins to print."""

    session: AsyncSession
    settings: Settings
    gateway: PaymentGateway
    tenant: Tenant
    staff: User
    clients: list[Client] = field(default_factory=list)
    contacts: dict[uuid.UUID, User] = field(default_factory=dict)
    categories: dict[str, ServiceCategory] = field(default_factory=dict)
    logins: list[tuple[str, str, str]] = field(default_factory=list)

    def principal_for(self, user: User) -> Principal:
        return Principal(
            tenant_id=user.tenant_id,
            kind="staff" if user.role == "staff" else "client",
            user_id=user.id,
            client_id=user.client_id,
        )


DemoSeeder = Callable[[DemoContext], Awaitable[None]]


def demo_seeders() -> list[DemoSeeder]:
    """Each domain's demo data, in order (imported here: those modules import this one)."""
    from app.payments.demo import seed_billing
    from app.tickets.demo import seed_tickets

    return [seed_billing, seed_tickets]


async def seed_demo(
    settings: Settings, *, only_if_empty: bool
) -> list[tuple[str, str, str]] | None:
    from app.gateways.registry import create_gateway
    from app.main import gateway_settings

    engine = create_engine(settings)
    gateway = create_gateway(settings.payment_gateway, gateway_settings(settings))
    try:
        async with transaction(create_sessionmaker(engine)) as session:
            count = (await session.execute(select(func.count()).select_from(Tenant))).scalar_one()
            if only_if_empty and count:
                return None
            return await _seed(session, settings, gateway)
    finally:
        await gateway.aclose()
        await engine.dispose()


async def _seed(
    session: AsyncSession, settings: Settings, gateway: PaymentGateway
) -> list[tuple[str, str, str]]:
    suffix = (
        ""
        if not (await session.execute(select(User).limit(1))).scalar()
        else ("+" + uuid.uuid4().hex[:6])
    )
    tenant = Tenant(name="Northwind Managed IT", timezone="America/New_York")
    session.add(tenant)
    await session.flush()
    password_hash = hash_password(DEMO_PASSWORD)
    staff = User(
        tenant_id=tenant.id,
        email=f"admin{suffix}@northwind-msp.example",
        full_name="Nora Admin",
        role="staff",
        password_hash=password_hash,
    )
    session.add(staff)
    ctx = DemoContext(
        session=session, settings=settings, gateway=gateway, tenant=tenant, staff=staff
    )
    ctx.logins.append(("staff", staff.email, DEMO_PASSWORD))
    for name in ("Hosting", "Help desk", "Network monitoring", "Backup"):
        category = ServiceCategory(tenant_id=tenant.id, name=name)
        session.add(category)
        ctx.categories[name] = category
    for company, contact, email in (
        ("Contoso Dental", "Carla Contoso", "carla"),
        ("Fabrikam Legal", "Frank Fabrikam", "frank"),
        ("Tailspin Logistics", "Tina Tailspin", "tina"),
    ):
        client = Client(tenant_id=tenant.id, name=company, billing_email=f"billing@{email}.example")
        session.add(client)
        await session.flush()
        user = User(
            tenant_id=tenant.id,
            client_id=client.id,
            email=f"{email}{suffix}@{email}.example",
            full_name=contact,
            role="client",
            password_hash=password_hash,
        )
        session.add(user)
        ctx.clients.append(client)
        ctx.contacts[client.id] = user
        ctx.logins.append(("client", user.email, DEMO_PASSWORD))
    await session.flush()
    for seeder in demo_seeders():
        await seeder(ctx)
    return ctx.logins
