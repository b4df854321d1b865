"""Bootstrapping a database: the first staff user (and the tenant, when there is none)."""

from __future__ import annotations

import uuid

from app.auth.repository import AuthRepository
from app.core.config import Settings
from app.core.db import create_engine, create_sessionmaker, transaction
from app.core.security import hash_password, password_problem
from app.models import Tenant, User
from app.tenancy.repository import TenantDirectory


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
            if await AuthRepository(session).users_by_email(email):
                raise ValueError(f"a user with email {email} exists already")
            tenant = await _tenant_for_staff(TenantDirectory(session), tenant_name)
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


async def _tenant_for_staff(tenants: TenantDirectory, name: str | None) -> Tenant:
    existing = await tenants.all()
    if name:
        for tenant in existing:
            if tenant.name == name:
                return tenant
    elif len(existing) == 1:
        return existing[0]
    elif len(existing) > 1:
        raise ValueError("there are several tenants: name one with --tenant")
    return await tenants.create(name or "My MSP")
