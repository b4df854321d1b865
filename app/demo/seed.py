"""`billing-portal seed-demo`: a demo tenant with clients, contacts, cards, invoices, payments
and tickets, for newcomers to click through. Money moves through the real services and the
configured gateway, as a client's would."""

from __future__ import annotations

import uuid

from app.core.config import Settings
from app.core.db import create_engine, create_sessionmaker, transaction
from app.core.security import hash_password
from app.demo.billing import seed_billing
from app.demo.context import DemoContext, DemoSeeder
from app.demo.tickets import seed_tickets
from app.models import Client, Membership, ServiceCategory, User
from app.tenancy.repository import TenantDirectory
from app.wiring import build_gateway

DEMO_PASSWORD = "demo-password-2026"  # noqa: S105 - printed for the demo, on purpose

# Each domain's demo data, in order.
SEEDERS: list[DemoSeeder] = [seed_billing, seed_tickets]


async def seed_demo(
    settings: Settings, *, only_if_empty: bool
) -> list[tuple[str, str, str]] | None:
    """The demo's sign-ins (role, email, password), or None when `only_if_empty` found data."""

    engine = create_engine(settings)
    sessionmaker = create_sessionmaker(engine)
    gateway = build_gateway(settings)
    try:
        async with transaction(sessionmaker) as session:
            tenants = TenantDirectory(session)
            if only_if_empty and await tenants.all():
                return None
            # A second demo beside the first gets addresses of its own.
            suffix = "+" + uuid.uuid4().hex[:6] if await tenants.any_people() else ""
            tenant = await tenants.create("Northwind Managed IT", timezone="America/New_York")
            password_hash = hash_password(DEMO_PASSWORD)
            staff = User(
                tenant_id=tenant.id,
                email=f"admin{suffix}@northwind-msp.example",
                full_name="Nora Admin",
                role="staff",
                password_hash=password_hash,
            )
            session.add(staff)
            ctx = DemoContext(session, sessionmaker, settings, gateway, tenant, staff)
            ctx.logins.append(("staff", staff.email, DEMO_PASSWORD))
            await _people(ctx, suffix, password_hash)
            for seeder in SEEDERS:
                await seeder(ctx)
        for step in ctx.after_commit:
            await step()
        return ctx.logins
    finally:
        await gateway.aclose()
        await engine.dispose()


async def _people(ctx: DemoContext, suffix: str, password_hash: str) -> None:
    session, tenant = ctx.session, ctx.tenant
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
        await session.flush()
        session.add(Membership(tenant_id=tenant.id, user_id=user.id, client_id=client.id))
        ctx.clients.append(client)
        ctx.contacts[client.id] = user
        ctx.logins.append(("client", user.email, DEMO_PASSWORD))
    await session.flush()
