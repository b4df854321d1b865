"""A populated estate for the isolation proofs: two tenants, each with two clients that have
everything a client can own (invoices, payments, payment methods, scheduled payments, tickets)
and tenant-wide things (an API key with every scope, a webhook endpoint with deliveries,
events). Built through the API, as a real MSP and its clients would build it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from httpx import AsyncClient

from app.core.scopes import ALL_SCOPES
from app.models import Client, ServiceCategory, Tenant
from app.webhooks.repository import WebhookQueue
from tests.factories import Factory, Person, api_key_for, bearer
from tests.payments.helpers import add_method, due_in, open_invoice

API = "/api/v1"


@dataclass
class ClientEstate:
    """One client company, its contact, and one of each thing it owns (ids by path name)."""

    client: Client
    contact: Person
    ids: dict[str, str] = field(default_factory=dict)


@dataclass
class TenantEstate:
    tenant: Tenant
    staff: Person
    key_secret: str
    category: ServiceCategory
    clients: list[ClientEstate]
    ids: dict[str, str] = field(default_factory=dict)  # tenant-wide things

    def callers(self) -> dict[str, dict[str, str]]:
        """The headers of each kind of caller: staff, the first client's contact, the API key."""
        return {
            "staff": self.staff.headers,
            "client": self.clients[0].contact.headers,
            "api_key": bearer(self.key_secret),
        }


async def _ok(response: Any, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


async def _client_estate(
    http: AsyncClient, factory: Factory, tenant: Tenant, staff: Person, category: ServiceCategory
) -> ClientEstate:
    client = await factory.client(tenant, f"Client {uuid.uuid4().hex[:6]}")
    contact = await factory.contact(tenant, client)
    estate = ClientEstate(
        client, contact, {"client_id": str(client.id), "user_id": str(contact.user.id)}
    )
    method = await add_method(http, contact)
    external_id = f"psa-{uuid.uuid4().hex[:8]}"
    invoice = await open_invoice(
        http, staff, client.id, category, (1, 10_000), external_id=external_id
    )
    payment = await _ok(
        await http.post(
            f"{API}/invoices/{invoice['id']}/pay",
            json={"payment_method_id": method["id"], "amount": 1_000},
            headers=contact.headers,
        )
    )
    scheduled = await _ok(
        await http.post(
            f"{API}/scheduled-payments",
            json={
                "invoice_id": invoice["id"],
                "payment_method_id": method["id"],
                "amount": 1_000,
                "scheduled_for": due_in(5),
            },
            headers=contact.headers,
        )
    )
    ticket = await _ok(
        await http.post(
            f"{API}/tickets",
            json={"subject": "Printer", "description": "It jams."},
            headers=contact.headers,
        )
    )
    events = await _ok(await http.get(f"{API}/events", headers=staff.headers), 200)
    event = next(e for e in events["items"] if e["client_id"] == str(client.id))
    estate.ids.update(
        payment_method_id=method["id"],
        invoice_id=invoice["id"],
        external_id=external_id,
        payment_id=payment["id"],
        scheduled_payment_id=scheduled["id"],
        ticket_id=ticket["id"],
        event_id=event["id"],
    )
    return estate


async def tenant_estate(http: AsyncClient, factory: Factory, name: str) -> TenantEstate:
    tenant = await factory.tenant(name)
    staff = await factory.staff(tenant)
    key, secret = await api_key_for(factory, tenant, scopes=ALL_SCOPES)
    category = await factory.category(tenant, "Hosting")
    endpoint = await _ok(
        await http.post(
            f"{API}/webhook-endpoints",
            json={"url": "https://93.184.216.34/billing"},
            headers=staff.headers,
        )
    )
    clients = [await _client_estate(http, factory, tenant, staff, category) for _ in range(2)]
    # Hand the events to the endpoint, as the deliverer would, so it has deliveries.
    async with factory.sessionmaker() as session, session.begin():
        await WebhookQueue(session).dispatch(1_000, now=datetime.now(UTC))
    deliveries = await _ok(
        await http.get(
            f"{API}/webhook-endpoints/{endpoint['id']}/deliveries", headers=staff.headers
        ),
        200,
    )
    ids = {
        "key_id": str(key.id),
        "endpoint_id": endpoint["id"],
        "delivery_id": deliveries["items"][0]["id"],
    }
    return TenantEstate(tenant, staff, secret, category, clients, ids)


@dataclass
class Estate:
    mine: TenantEstate
    theirs: TenantEstate


async def build_estate(http: AsyncClient, factory: Factory) -> Estate:
    return Estate(
        await tenant_estate(http, factory, "Mine MSP"),
        await tenant_estate(http, factory, "Their MSP"),
    )
