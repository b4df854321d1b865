"""Webhook endpoints: where the service sends its events (Standard Webhooks), with their
delivery logs."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from app.auth.dependencies import StaffOrKey
from app.core.deps import PageDep, SessionDep, SettingsDep
from app.core.errors import problem_responses
from app.core.pagination import Page
from app.core.principal import Principal
from app.models import WebhookEndpoint
from app.webhooks.repository import WebhookDeliveryRepository, WebhookEndpointRepository
from app.webhooks.schemas import (
    DeliveryStatus,
    WebhookDeliveryOut,
    WebhookEndpointCreate,
    WebhookEndpointOut,
    WebhookEndpointSecret,
    WebhookEndpointUpdate,
)
from app.webhooks.service import WebhookService

router = APIRouter(tags=["webhooks"])
WebhookManager = Annotated[Principal, StaffOrKey("webhooks:write")]
ONE = problem_responses(401, 403, 404, 422)


async def endpoint_from_path(
    principal: WebhookManager, endpoint_id: uuid.UUID, session: SessionDep
) -> WebhookEndpoint:
    return await WebhookEndpointRepository(session, principal).get_or_404(endpoint_id)


EndpointDep = Annotated[WebhookEndpoint, Depends(endpoint_from_path)]


def _with_secret(endpoint: WebhookEndpoint, secret: str) -> WebhookEndpointSecret:
    shown = WebhookEndpointOut.model_validate(endpoint).model_dump()
    return WebhookEndpointSecret(**shown, secret=secret)


@router.post(
    "/webhook-endpoints",
    operation_id="createWebhookEndpoint",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 422),
)
async def create_endpoint(
    body: WebhookEndpointCreate,
    principal: WebhookManager,
    session: SessionDep,
    settings: SettingsDep,
) -> WebhookEndpointSecret:
    """Add an endpoint; its signing `secret` is shown only in this response."""
    endpoint, secret = await WebhookService(session, principal, settings).create(body)
    return _with_secret(endpoint, secret)


@router.get(
    "/webhook-endpoints",
    operation_id="listWebhookEndpoints",
    responses=problem_responses(401, 403, 422),
)
async def list_endpoints(
    principal: WebhookManager, session: SessionDep, page: PageDep
) -> Page[WebhookEndpointOut]:
    """The endpoints, newest first (never their secrets)."""
    items, cursor = await WebhookEndpointRepository(session, principal).page(page)
    return Page(items=[WebhookEndpointOut.model_validate(e) for e in items], next_cursor=cursor)


@router.get("/webhook-endpoints/{endpoint_id}", operation_id="getWebhookEndpoint", responses=ONE)
async def get_endpoint(principal: WebhookManager, endpoint: EndpointDep) -> WebhookEndpointOut:
    """One endpoint."""
    return WebhookEndpointOut.model_validate(endpoint)


@router.patch(
    "/webhook-endpoints/{endpoint_id}", operation_id="updateWebhookEndpoint", responses=ONE
)
async def update_endpoint(
    body: WebhookEndpointUpdate,
    principal: WebhookManager,
    endpoint: EndpointDep,
    session: SessionDep,
    settings: SettingsDep,
) -> WebhookEndpointOut:
    """Change the URL, the event types, the description, or turn the endpoint off or on."""
    await WebhookService(session, principal, settings).update(endpoint, body)
    return WebhookEndpointOut.model_validate(endpoint)


@router.delete(
    "/webhook-endpoints/{endpoint_id}",
    operation_id="deleteWebhookEndpoint",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=ONE,
)
async def delete_endpoint(
    principal: WebhookManager, endpoint: EndpointDep, session: SessionDep, settings: SettingsDep
) -> Response:
    """Delete the endpoint and its delivery log; nothing more is sent to it."""
    await WebhookService(session, principal, settings).delete(endpoint)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/webhook-endpoints/{endpoint_id}/rotate-secret",
    operation_id="rotateWebhookSecret",
    responses=ONE,
)
async def rotate_secret(
    principal: WebhookManager, endpoint: EndpointDep, session: SessionDep, settings: SettingsDep
) -> WebhookEndpointSecret:
    """A new signing secret, shown only here; for 24 hours deliveries carry a signature with
    the old one too, so receivers can switch without missing any."""
    secret = await WebhookService(session, principal, settings).rotate_secret(endpoint)
    return _with_secret(endpoint, secret)


@router.get(
    "/webhook-endpoints/{endpoint_id}/deliveries",
    operation_id="listWebhookDeliveries",
    responses=ONE,
)
async def list_deliveries(
    principal: WebhookManager,
    endpoint: EndpointDep,
    session: SessionDep,
    page: PageDep,
    status_filter: Annotated[DeliveryStatus | None, Query(alias="status")] = None,
) -> Page[WebhookDeliveryOut]:
    """The endpoint's deliveries, newest event first, each with its last attempt."""
    items, cursor = await WebhookDeliveryRepository(session, principal).page(
        endpoint.id, page, status=status_filter
    )
    return Page(items=[WebhookDeliveryOut.model_validate(d) for d in items], next_cursor=cursor)


@router.post(
    "/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/retry",
    operation_id="retryWebhookDelivery",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def retry_delivery(
    principal: WebhookManager,
    endpoint: EndpointDep,
    delivery_id: uuid.UUID,
    session: SessionDep,
    settings: SettingsDep,
) -> WebhookDeliveryOut:
    """Send the delivery again at the deliverers' next pass (a new attempt)."""
    delivery = await WebhookService(session, principal, settings).retry(endpoint, delivery_id)
    return WebhookDeliveryOut.model_validate(delivery)
