"""The MSP's management of its own profile, its clients, their contacts, service categories
and API keys."""

from __future__ import annotations

import uuid

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.address import store_address
from app.core.clock import utcnow
from app.core.events import record_event
from app.core.principal import Principal
from app.core.scopes import V1_SCOPES, Scope
from app.core.security import new_api_key, sha256_hex
from app.models import ApiKey, Client, ServiceCategory, Tenant, TenantLogo
from app.tenancy.errors import LogoNotFound, ServiceCategoryExists
from app.tenancy.logo import check_logo
from app.tenancy.repository import (
    ApiKeyRepository,
    ClientRepository,
    ServiceCategoryRepository,
    TenantRepository,
    UserRepository,
)
from app.tenancy.schemas import (
    BILLING_ADDRESS,
    TENANT_ADDRESS,
    ApiKeyOut,
    ClientCreate,
    ClientOut,
    ClientUpdate,
    ServiceCategoryOut,
    TenantOut,
    TenantUpdate,
)


class TenancyService:
    def __init__(self, session: AsyncSession, principal: Principal) -> None:
        self.session = session
        self.principal = principal
        self.clients = ClientRepository(session, principal)
        self.users = UserRepository(session, principal)
        self.categories = ServiceCategoryRepository(session, principal)
        self.api_keys = ApiKeyRepository(session, principal)
        self.tenant = TenantRepository(session, principal)

    async def update_tenant(self, data: TenantUpdate) -> Tenant:
        tenant = await self.tenant.current()
        changes = data.model_dump(exclude_unset=True)
        if changes.get("name") is not None:
            tenant.name = changes["name"]
        for field in ("legal_name", "phone", "tax_id", "payment_instructions"):
            if field in changes:
                setattr(tenant, field, changes[field])
        if "email" in changes:
            tenant.email = str(data.email).lower() if data.email else None
        if "address" in changes:
            store_address(tenant, TENANT_ADDRESS, data.address)
        if data.staff_totp_required is not None:
            tenant.staff_totp_required = data.staff_totp_required
        await self.session.flush()
        await self._tenant_updated(tenant)
        return tenant

    async def set_logo(self, data: bytes) -> TenantLogo:
        checked = check_logo(data)
        logo = await self.tenant.logo()
        if logo is None:
            logo = TenantLogo(tenant_id=self.principal.tenant_id)
            self.session.add(logo)
        logo.content_type = checked.content_type
        logo.data = checked.data
        logo.size = len(checked.data)
        logo.width, logo.height = checked.width, checked.height
        logo.sha256 = checked.sha256
        logo.updated_at = utcnow()
        await self.session.flush()
        await self._tenant_updated(await self.tenant.current(), logo)
        return logo

    async def remove_logo(self) -> None:
        if not await self.tenant.delete_logo():
            raise LogoNotFound()
        await self._tenant_updated(await self.tenant.current(), None)

    async def create_client(self, data: ClientCreate) -> Client:
        client = Client(
            tenant_id=self.principal.tenant_id,
            name=data.name,
            billing_email=str(data.billing_email).lower() if data.billing_email else None,
        )
        store_address(client, BILLING_ADDRESS, data.billing_address)
        self.clients.add(client)
        await self.session.flush()
        shown = ClientOut.model_validate(client)
        self._record("client.created", "client", client.id, shown, client.id)
        return client

    async def update_client(self, client: Client, data: ClientUpdate) -> Client:
        changes = data.model_dump(exclude_unset=True)
        if "name" in changes and changes["name"] is not None:
            client.name = changes["name"]
        if "billing_email" in changes:
            email = changes["billing_email"]
            client.billing_email = str(email).lower() if email else None
        if "billing_address" in changes:
            store_address(client, BILLING_ADDRESS, data.billing_address)
        client.updated_at = utcnow()
        await self.session.flush()
        shown = ClientOut.model_validate(client)
        self._record("client.updated", "client", client.id, shown, client.id)
        return client

    async def create_service_category(self, name: str) -> ServiceCategory:
        if await self.categories.by_name(name) is not None:
            raise ServiceCategoryExists()
        category = ServiceCategory(tenant_id=self.principal.tenant_id, name=name)
        self.categories.add(category)
        await self.session.flush()
        data = ServiceCategoryOut.model_validate(category)
        self._record("service_category.created", "service_category", category.id, data)
        return category

    async def create_api_key(
        self, name: str, scopes: list[Scope] | None = None
    ) -> tuple[ApiKey, str]:
        prefix, secret = new_api_key()
        key = ApiKey(
            tenant_id=self.principal.tenant_id,
            name=name,
            prefix=prefix,
            secret_hash=sha256_hex(secret),
            created_by_id=self.principal.user_id,
            scopes=list(scopes or V1_SCOPES),
        )
        self.api_keys.add(key)
        await self.session.flush()
        self._record("api_key.created", "api_key", key.id, ApiKeyOut.model_validate(key))
        return key, secret

    async def revoke_api_key(self, key_id: uuid.UUID) -> None:
        key = await self.api_keys.get_or_404(key_id)
        if key.revoked_at is None:
            key.revoked_at = utcnow()
            self._record("api_key.revoked", "api_key", key.id, ApiKeyOut.model_validate(key))
        await self.session.flush()

    async def _tenant_updated(self, tenant: Tenant, *logo: TenantLogo | None) -> None:
        shown = TenantOut.of(tenant, logo[0] if logo else await self.tenant.logo())
        self._record("tenant.updated", "tenant", tenant.id, shown)

    def _record(
        self,
        type_: str,
        subject_type: str,
        subject_id: uuid.UUID,
        shown: BaseModel,
        client_id: uuid.UUID | None = None,
    ) -> None:
        record_event(
            self.session,
            tenant_id=self.principal.tenant_id,
            client_id=client_id,
            type=type_,
            subject_type=subject_type,
            subject_id=subject_id,
            data=shown.model_dump(mode="json"),
        )
