"""Managing a tenant's webhook endpoints: create (the secret shown once), change, rotate the
secret, delete, and send a delivery again."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import utcnow
from app.core.config import Settings
from app.core.errors import Conflict, Unprocessable
from app.core.events import record_event
from app.core.ids import time_ordered_uuid
from app.core.principal import Principal
from app.models import WebhookDelivery, WebhookEndpoint
from app.webhooks.repository import WebhookDeliveryRepository, WebhookEndpointRepository
from app.webhooks.schemas import WebhookEndpointCreate, WebhookEndpointOut, WebhookEndpointUpdate
from app.webhooks.secrets import SecretBox, new_secret
from app.webhooks.targets import TargetRefused, resolve_target

# After rotate-secret the old secret signs beside the new one this long.
ROTATION_OVERLAP = timedelta(hours=24)


class DeliveryInFlight(Conflict):
    type_slug = "delivery-in-flight"
    title = "Delivery in flight"
    default_detail = "This delivery is being sent right now; look at it again in a moment."


class WebhookService:
    def __init__(self, session: AsyncSession, principal: Principal, settings: Settings) -> None:
        self.session = session
        self.principal = principal
        self.settings = settings
        self.endpoints = WebhookEndpointRepository(session, principal)
        self.box = SecretBox(settings)

    async def create(self, data: WebhookEndpointCreate) -> tuple[WebhookEndpoint, str]:
        await self._check_url(data.url)
        secret = new_secret()
        # Time-ordered, like event ids: the endpoint gets the events recorded after it.
        endpoint_id = time_ordered_uuid()
        endpoint = WebhookEndpoint(
            id=endpoint_id,
            tenant_id=self.principal.tenant_id,
            url=data.url,
            description=data.description,
            event_types=data.event_types,
            enabled=True,
            secret_encrypted=self.box.seal(secret, endpoint_id),
            next_sequence=1,
            created_by_id=self.principal.user_id,
        )
        self.endpoints.add(endpoint)
        await self.session.flush()
        self._record(endpoint, "webhook_endpoint.created")
        return endpoint, secret

    async def update(
        self, endpoint: WebhookEndpoint, data: WebhookEndpointUpdate
    ) -> WebhookEndpoint:
        given = data.model_dump(exclude_unset=True)
        if given.get("url") is not None:
            await self._check_url(data.url or "")
            endpoint.url = given["url"]
        if "event_types" in given:
            endpoint.event_types = data.event_types
        if "description" in given:
            endpoint.description = data.description
        if given.get("enabled") is not None:
            endpoint.enabled = given["enabled"]
            if endpoint.enabled:
                endpoint.disabled_reason = None
                endpoint.failing_since = None
        endpoint.updated_at = utcnow()
        await self.session.flush()
        self._record(endpoint, "webhook_endpoint.updated", changed=sorted(given))
        return endpoint

    async def rotate_secret(self, endpoint: WebhookEndpoint) -> str:
        """A new secret; the current one keeps signing (beside it) for 24 hours."""
        now = utcnow()
        secret = new_secret()
        endpoint.previous_secret_encrypted = endpoint.secret_encrypted
        endpoint.previous_secret_expires_at = now + ROTATION_OVERLAP
        endpoint.secret_encrypted = self.box.seal(secret, endpoint.id)
        endpoint.updated_at = now
        await self.session.flush()
        self._record(endpoint, "webhook_endpoint.updated", secret_rotated=True)
        return secret

    async def delete(self, endpoint: WebhookEndpoint) -> None:
        self._record(endpoint, "webhook_endpoint.deleted")
        await self.endpoints.remove(endpoint)
        await self.session.flush()

    async def retry(self, endpoint: WebhookEndpoint, delivery_id: uuid.UUID) -> WebhookDelivery:
        """Send again at the deliverers' next pass: a new attempt (the automatic schedule goes
        on from there if it fails)."""
        deliveries = WebhookDeliveryRepository(self.session, self.principal)
        delivery = await deliveries.of_endpoint(endpoint.id, delivery_id, for_update=True)
        now = utcnow()
        if delivery.lease_expires_at is not None and delivery.lease_expires_at > now:
            raise DeliveryInFlight()
        delivery.status = "pending"
        delivery.next_attempt_at = now
        delivery.lease_expires_at = None
        delivery.updated_at = now
        await self.session.flush()
        return delivery

    async def _check_url(self, url: str) -> None:
        """Checked now, and again before every attempt (a name may resolve elsewhere later)."""
        try:
            await resolve_target(url, allow_private=self.settings.webhooks_allow_private_urls)
        except TargetRefused as exc:
            raise Unprocessable(str(exc), loc=("body", "url")) from exc

    def _record(self, endpoint: WebhookEndpoint, type_: str, **details: Any) -> None:
        record_event(
            self.session,
            tenant_id=endpoint.tenant_id,
            type=type_,
            subject_type="webhook_endpoint",
            subject_id=endpoint.id,
            data=WebhookEndpointOut.model_validate(endpoint).model_dump(mode="json"),
            details=details or None,
        )
