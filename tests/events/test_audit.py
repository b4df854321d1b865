"""Events are the audit trail: who (a user, an API key or the system), in which request, why
(`X-Audit-Reason`), written in the transaction of the change (committed change ⇒ event; rolled
back ⇒ none)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import select

from app.core.audit import SYSTEM, current_audit
from app.core.db import transaction
from app.core.errors import Conflict
from app.core.events import record_event
from app.models import Client, Event, Invoice
from tests.factories import Factory, api_key_for, assert_problem, bearer, count_rows, fetch
from tests.payments.helpers import Billing, billing_world, open_invoice

EVENTS = "/api/v1/events"


async def _events(factory: Factory, type_: str) -> list[Event]:
    async with factory.sessionmaker() as session:
        stmt = select(Event).where(Event.type == type_).order_by(Event.created_at, Event.id)
        return list((await session.execute(stmt)).scalars())


async def test_a_change_records_who_in_which_request_and_why(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    headers = {
        **world.staff.headers,
        "X-Request-Id": "req-onboarding-1",
        "X-Audit-Reason": "Signed the contract on the phone; ticket #4521",
    }
    created = await client.post("/api/v1/clients", json={"name": "Globex"}, headers=headers)
    assert created.status_code == 201

    listing = await client.get(
        EVENTS, params={"type": "client.created"}, headers=world.staff.headers
    )
    [event] = listing.json()["items"]
    assert event["actor"] == {"kind": "user", "id": str(world.staff.id)}
    assert event["request_id"] == "req-onboarding-1"
    assert event["reason"] == "Signed the contract on the phone; ticket #4521"
    assert event["client_id"] == created.json()["id"]
    assert event["subject"] == {"type": "client", "id": created.json()["id"]}
    assert event["data"] == created.json()


async def test_without_a_reason_the_request_id_is_still_kept(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    created = await client.post(
        "/api/v1/clients", json={"name": "Globex"}, headers=world.staff.headers
    )
    [event] = await _events(factory, "client.created")
    assert event.reason is None
    assert event.request_id == created.headers["x-request-id"]


async def test_an_integration_is_the_actor_of_what_its_key_does(
    client: AsyncClient, factory: Factory
) -> None:
    billing = await billing_world(factory, client)
    key, secret = await api_key_for(factory, billing.world.tenant)
    body = {
        "client_id": str(billing.client_id),
        "currency": "USD",
        "due_date": "2030-01-31",
        "lines": [
            {
                "description": "Hosting",
                "service_category_id": str(billing.category.id),
                "quantity": 1,
                "unit_amount": 100,
            }
        ],
    }
    response = await client.post(
        "/api/v1/invoices",
        json=body,
        headers={**bearer(secret), "X-Audit-Reason": "nightly PSA sync"},
    )
    assert response.status_code == 201, response.text
    [event] = await _events(factory, "invoice.created")
    assert (event.actor_kind, event.actor_id, event.reason) == (
        "api_key",
        key.id,
        "nightly PSA sync",
    )


async def test_staff_acting_for_a_client_are_the_actor(
    client: AsyncClient, factory: Factory, billing: Billing
) -> None:
    invoice = await open_invoice(
        client, billing.staff, billing.client_id, billing.category, (1, 5_000)
    )
    response = await client.post(
        f"/api/v1/invoices/{invoice['id']}/pay",
        json={"payment_method_id": billing.card["id"]},
        headers={**billing.staff.headers, "X-Audit-Reason": "Paid by phone"},
    )
    assert response.status_code == 201, response.text
    for type_ in ("payment.pending", "payment.succeeded", "invoice.paid"):
        [event] = await _events(factory, type_)
        assert (event.actor_kind, event.actor_id) == ("user", billing.staff.id)
        assert event.reason == "Paid by phone"
        assert event.client_id == billing.client_id


@pytest.mark.parametrize("length", [501, 2000])
async def test_a_reason_longer_than_500_characters_is_refused(
    client: AsyncClient, factory: Factory, length: int
) -> None:
    world = await factory.world()
    headers = {**world.staff.headers, "X-Audit-Reason": "x" * length}
    response = await client.post("/api/v1/clients", json={"name": "Globex"}, headers=headers)
    problem = assert_problem(response, 422)
    assert problem["errors"][0]["loc"] == ["header", "X-Audit-Reason"]
    assert await count_rows(factory, Client) == 1
    assert await count_rows(factory, Event) == 0


async def test_a_reason_of_500_characters_is_kept_whole(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    reason = "é" * 500  # 1000 bytes of UTF-8: characters are counted, not bytes
    headers: dict[str, Any] = {**world.staff.headers, "X-Audit-Reason": reason.encode()}
    response = await client.patch(
        f"/api/v1/clients/{world.client.id}", json={"name": "Renamed"}, headers=headers
    )
    assert response.status_code == 200, response.text
    [event] = await _events(factory, "client.updated")
    assert event.reason == reason


async def test_a_refused_change_records_nothing(
    client: AsyncClient,
    factory: Factory,
    billing: Billing,
    app: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The void is recorded, then something later in the same transaction refuses it: the
    invoice stays open and its event goes with the rolled-back change."""
    invoice = await open_invoice(
        client, billing.staff, billing.client_id, billing.category, (1, 5_000)
    )

    async def refuse(*_: Any) -> None:
        raise Conflict("refused after the event was recorded")

    hooks = app.state.hooks
    monkeypatch.setattr(hooks, "invoice_voided", [*hooks.invoice_voided, refuse])
    response = await client.post(
        f"/api/v1/invoices/{invoice['id']}/void", headers=billing.staff.headers
    )

    assert_problem(response, 409)
    assert (await fetch(factory, Invoice, uuid.UUID(invoice["id"]))).status == "open"
    assert await _events(factory, "invoice.voided") == []
    assert len(await _events(factory, "invoice.issued")) == 1


async def test_an_event_exists_exactly_when_its_transaction_commits(factory: Factory) -> None:
    world = await factory.world()

    def record(session: Any) -> Event:
        return record_event(
            session,
            tenant_id=world.tenant.id,
            type="client.updated",
            subject_type="client",
            subject_id=world.client.id,
            client_id=world.client.id,
            data={"id": str(world.client.id)},
        )

    async def failing_change() -> None:
        async with transaction(factory.sessionmaker) as session:
            record(session)
            await session.flush()
            raise RuntimeError("the change fails")

    with pytest.raises(RuntimeError):
        await failing_change()
    assert await count_rows(factory, Event) == 0
    async with transaction(factory.sessionmaker) as session:
        committed = record(session)
    assert (await fetch(factory, Event, committed.id)).actor_kind == "system"


async def test_outside_a_request_the_actor_is_the_system(
    client: AsyncClient, factory: Factory
) -> None:
    """A request's caller never leaks into what runs after it (tests call the app in their own
    task, as the runner shares a process with nothing but itself)."""
    world = await factory.world()
    headers = {**world.staff.headers, "X-Audit-Reason": "leaks?"}
    assert (await client.get(EVENTS, headers=headers)).status_code == 200
    context = current_audit()
    assert (context.actor, context.reason) == (SYSTEM, None)
