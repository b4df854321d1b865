"""Every event type in the catalogue is recorded by the code path that causes it: a table of
type → the API call (or the runner's pass) that causes it, each run and checked on its own.

Each cause returns the id of the object the event is about and who acted; the test finds that
event, and checks it carries the object after the change (its `id`) and the actor."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from httpx import Response
from sqlalchemy import select

from app.core.clock import FrozenClock
from app.core.config import Settings
from app.core.events import EVENT_TYPES
from app.gateways.base import GatewayDeclined
from app.gateways.fake import FakeGateway
from app.models import Event
from app.scheduler.runner import PaymentRunner
from app.webhooks.delivery import WebhookDeliverer
from tests.factories import method_body
from tests.scheduling.helpers import API, TODAY, Scene
from tests.webhooks.receiver import Receiver

DUE = TODAY + timedelta(days=10)
# Emitted by a path this service does not have yet.
NOT_YET_EMITTED: dict[str, str] = {}


@dataclass
class Ctx:
    scene: Scene
    runner: PaymentRunner
    gateway: FakeGateway
    clock: FrozenClock
    receiver: Receiver
    settings: Settings
    sessionmaker: Any
    monkeypatch: pytest.MonkeyPatch

    async def call(self, method: str, path: str, who: str = "staff", **kw: Any) -> Any:
        headers = self.scene.staff if who == "staff" else self.scene.contact
        response: Response = await self.scene.http.request(
            method, API + path, headers=headers, **kw
        )
        assert response.status_code < 300, response.text
        return response.json() if response.content else None

    @property
    def staff_id(self) -> str:
        return str(self.scene.staff_user.id)

    @property
    def contact_id(self) -> str:
        return str(self.scene.contact_user.id)


@dataclass(frozen=True)
class Caused:
    subject_id: str
    actor: tuple[str, str | None]


Cause = Callable[[Ctx], Awaitable[Caused]]


def by_staff(ctx: Ctx, subject_id: str) -> Caused:
    return Caused(subject_id, ("user", ctx.staff_id))


def by_contact(ctx: Ctx, subject_id: str) -> Caused:
    return Caused(subject_id, ("user", ctx.contact_id))


def by_system(subject_id: str) -> Caused:
    return Caused(subject_id, ("system", None))


async def _draft(ctx: Ctx, external_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "client_id": str(ctx.scene.client.id),
        "currency": "USD",
        "due_date": DUE.isoformat(),
        "lines": [
            {
                "description": "Hosting",
                "service_category_id": str(ctx.scene.hosting.id),
                "quantity": 1,
                "unit_amount": 10_000,
            }
        ],
    }
    if external_id is None:
        created: dict[str, Any] = await ctx.call("POST", "/invoices", json=body)
        return created
    replaced: dict[str, Any] = await ctx.call(
        "PUT", f"/invoices/by-external-id/{external_id}", json=body
    )
    return replaced


async def invoice_created(ctx: Ctx) -> Caused:
    return by_staff(ctx, (await _draft(ctx))["id"])


async def invoice_updated(ctx: Ctx) -> Caused:
    await _draft(ctx, "psa-1")
    body = {
        "client_id": str(ctx.scene.client.id),
        "currency": "USD",
        "due_date": DUE.isoformat(),
        "lines": [
            {
                "description": "Hosting, corrected",
                "service_category_id": str(ctx.scene.hosting.id),
                "quantity": 2,
                "unit_amount": 10_000,
            }
        ],
    }
    replaced = await ctx.call("PUT", "/invoices/by-external-id/psa-1", json=body)
    return by_staff(ctx, replaced["id"])


async def invoice_issued(ctx: Ctx) -> Caused:
    draft = await _draft(ctx)
    await ctx.call("POST", f"/invoices/{draft['id']}/issue")
    return by_staff(ctx, draft["id"])


async def invoice_paid(ctx: Ctx) -> Caused:
    invoice = await ctx.scene.invoice((ctx.scene.hosting, 10_000), due=DUE)
    assert (await ctx.scene.pay_now(invoice["id"])).status_code == 201
    return by_contact(ctx, invoice["id"])


async def invoice_voided(ctx: Ctx) -> Caused:
    invoice = await ctx.scene.invoice((ctx.scene.hosting, 10_000), due=DUE)
    await ctx.call("POST", f"/invoices/{invoice['id']}/void")
    return by_staff(ctx, invoice["id"])


async def _paid(ctx: Ctx) -> dict[str, Any]:
    invoice = await ctx.scene.invoice((ctx.scene.hosting, 10_000), due=DUE)
    response = await ctx.scene.pay_now(invoice["id"])
    assert response.status_code == 201, response.text
    payment: dict[str, Any] = response.json()
    return payment


async def payment_pending(ctx: Ctx) -> Caused:
    return by_contact(ctx, (await _paid(ctx))["id"])


async def payment_succeeded(ctx: Ctx) -> Caused:
    return by_contact(ctx, (await _paid(ctx))["id"])


async def payment_failed(ctx: Ctx) -> Caused:
    declined = await ctx.call(
        "POST", "/payment-methods", "contact", json=method_body("tok_chargeDeclined")
    )
    invoice = await ctx.scene.invoice((ctx.scene.hosting, 10_000), due=DUE)
    response = await ctx.scene.http.post(
        f"{API}/invoices/{invoice['id']}/pay",
        json={"payment_method_id": declined["id"]},
        headers=ctx.scene.contact,
    )
    assert response.status_code == 402, response.text
    return by_contact(ctx, response.json()["payment_id"])


async def payment_refunded(ctx: Ctx) -> Caused:
    payment = await _paid(ctx)
    await ctx.call("POST", f"/payments/{payment['id']}/refunds", json={"amount": 1_000})
    return by_staff(ctx, payment["id"])


async def refund_failed(ctx: Ctx) -> Caused:
    payment = await _paid(ctx)

    async def refuse(**_: Any) -> Any:
        raise GatewayDeclined("charge_disputed", "the gateway refused the refund")

    ctx.monkeypatch.setattr(ctx.gateway, "refund", refuse)
    response = await ctx.scene.http.post(
        f"{API}/payments/{payment['id']}/refunds", json={}, headers=ctx.scene.staff
    )
    assert response.status_code == 402, response.text
    return by_staff(ctx, response.json()["refund_id"])


async def payment_method_added(ctx: Ctx) -> Caused:
    method = await ctx.call("POST", "/payment-methods", "contact", json=method_body("tok_amex"))
    return by_contact(ctx, method["id"])


async def payment_method_updated(ctx: Ctx) -> Caused:
    card = ctx.scene.card["id"]
    await ctx.call("PATCH", f"/payment-methods/{card}", "contact", json={"nickname": "Work"})
    return by_contact(ctx, card)


async def payment_method_removed(ctx: Ctx) -> Caused:
    method = await ctx.call("POST", "/payment-methods", "contact", json=method_body("tok_amex"))
    await ctx.call("DELETE", f"/payment-methods/{method['id']}", "contact")
    return by_contact(ctx, method["id"])


async def autopay_updated(ctx: Ctx) -> Caused:
    await ctx.scene.enable_autopay()
    async with ctx.sessionmaker() as session:
        from app.models import AutopaySetting

        setting = (
            await session.execute(
                select(AutopaySetting).where(AutopaySetting.client_id == ctx.scene.client.id)
            )
        ).scalar_one()
    return by_contact(ctx, str(setting.id))


async def _scheduled(ctx: Ctx, day: Any = TODAY) -> dict[str, Any]:
    invoice = await ctx.scene.invoice((ctx.scene.hosting, 10_000), due=DUE)
    return await ctx.scene.scheduled(invoice["id"], 10_000, day)


async def scheduled_created(ctx: Ctx) -> Caused:
    return by_contact(ctx, (await _scheduled(ctx))["id"])


async def scheduled_updated(ctx: Ctx) -> Caused:
    payment = await _scheduled(ctx)
    await ctx.call(
        "PATCH", f"/scheduled-payments/{payment['id']}", "contact", json={"amount": 5_000}
    )
    return by_contact(ctx, payment["id"])


async def scheduled_canceled(ctx: Ctx) -> Caused:
    payment = await _scheduled(ctx)
    await ctx.call("POST", f"/scheduled-payments/{payment['id']}/cancel", "contact")
    return by_contact(ctx, payment["id"])


async def scheduled_succeeded(ctx: Ctx) -> Caused:
    payment = await _scheduled(ctx)
    await ctx.runner.run_once()
    return by_system(payment["id"])


async def _on_card(ctx: Ctx, token: str) -> dict[str, Any]:
    card = await ctx.call("POST", "/payment-methods", "contact", json=method_body(token))
    invoice = await ctx.scene.invoice((ctx.scene.hosting, 10_000), due=DUE)
    return await ctx.scene.scheduled(invoice["id"], 10_000, TODAY, method_id=card["id"])


async def scheduled_retry(ctx: Ctx) -> Caused:
    payment = await _on_card(ctx, "tok_chargeDeclined")  # a soft decline: tried again
    await ctx.runner.run_once()
    return by_system(payment["id"])


async def scheduled_failed(ctx: Ctx) -> Caused:
    payment = await _on_card(ctx, "tok_chargeDeclinedStolenCard")  # hard: never retried
    await ctx.runner.run_once()
    return by_system(payment["id"])


async def _ticket(ctx: Ctx) -> dict[str, Any]:
    ticket: dict[str, Any] = await ctx.call(
        "POST", "/tickets", "contact", json={"subject": "Printer", "description": "Jammed."}
    )
    return ticket


async def ticket_created(ctx: Ctx) -> Caused:
    return by_contact(ctx, (await _ticket(ctx))["id"])


async def ticket_updated(ctx: Ctx) -> Caused:
    ticket = await _ticket(ctx)
    await ctx.call("PATCH", f"/tickets/{ticket['id']}", json={"status": "in_progress"})
    return by_staff(ctx, ticket["id"])


async def ticket_closed(ctx: Ctx) -> Caused:
    ticket = await _ticket(ctx)
    await ctx.call("POST", f"/tickets/{ticket['id']}/close", json={"resolution_notes": "Fixed."})
    return by_staff(ctx, ticket["id"])


async def client_created(ctx: Ctx) -> Caused:
    return by_staff(ctx, (await ctx.call("POST", "/clients", json={"name": "Globex"}))["id"])


async def client_updated(ctx: Ctx) -> Caused:
    client_id = str(ctx.scene.client.id)
    await ctx.call("PATCH", f"/clients/{client_id}", json={"name": "Acme Two"})
    return by_staff(ctx, client_id)


async def user_invited(ctx: Ctx) -> Caused:
    user = await ctx.call(
        "POST",
        f"/clients/{ctx.scene.client.id}/users",
        json={"email": "new@acme.example", "full_name": "New Contact"},
    )
    return by_staff(ctx, user["id"])


def _contact_url(ctx: Ctx) -> str:
    return f"/clients/{ctx.scene.client.id}/users/{ctx.contact_id}"


async def user_updated(ctx: Ctx) -> Caused:
    await ctx.call("PATCH", _contact_url(ctx), json={"full_name": "Renamed Contact"})
    return by_staff(ctx, ctx.contact_id)


async def user_deactivated(ctx: Ctx) -> Caused:
    await ctx.call("PATCH", _contact_url(ctx), json={"active": False})
    return by_staff(ctx, ctx.contact_id)


async def user_reactivated(ctx: Ctx) -> Caused:
    await ctx.call("PATCH", _contact_url(ctx), json={"active": False})
    await ctx.call("PATCH", _contact_url(ctx), json={"active": True})
    return by_staff(ctx, ctx.contact_id)


async def user_password_reset(ctx: Ctx) -> Caused:
    await ctx.call("POST", _contact_url(ctx) + "/reset-password")
    return by_staff(ctx, ctx.contact_id)


async def category_created(ctx: Ctx) -> Caused:
    category = await ctx.call("POST", "/service-categories", json={"name": "Backups"})
    return by_staff(ctx, category["id"])


async def tenant_updated(ctx: Ctx) -> Caused:
    await ctx.call("PATCH", "/tenant", json={"tax_id": "EU123"})
    return by_staff(ctx, str(ctx.scene.tenant.id))


async def api_key_created(ctx: Ctx) -> Caused:
    return by_staff(ctx, (await ctx.call("POST", "/api-keys", json={"name": "PSA"}))["id"])


async def api_key_revoked(ctx: Ctx) -> Caused:
    key = await ctx.call("POST", "/api-keys", json={"name": "PSA"})
    await ctx.call("DELETE", f"/api-keys/{key['id']}")
    return by_staff(ctx, key["id"])


async def consent_recorded(ctx: Ctx) -> Caused:
    await ctx.call("POST", "/payment-methods", "contact", json=method_body("tok_ach"))
    consents = await ctx.call("GET", "/consents", "contact")
    return by_contact(ctx, consents["items"][0]["id"])


async def consent_text_updated(ctx: Ctx) -> Caused:
    await ctx.call(
        "PUT", "/consent-texts/ach_debit", json={"text": "I allow Acme to debit my bank account."}
    )
    async with ctx.sessionmaker() as session:
        from app.models import ConsentText

        text = (await session.execute(select(ConsentText))).scalar_one()
    return by_staff(ctx, str(text.id))


async def _endpoint(ctx: Ctx) -> dict[str, Any]:
    ctx.monkeypatch.setattr(ctx.settings, "webhooks_allow_private_urls", True)
    created: dict[str, Any] = await ctx.call(
        "POST", "/webhook-endpoints", json={"url": ctx.receiver.url()}
    )
    return created


async def endpoint_created(ctx: Ctx) -> Caused:
    return by_staff(ctx, (await _endpoint(ctx))["id"])


async def endpoint_updated(ctx: Ctx) -> Caused:
    endpoint = await _endpoint(ctx)
    await ctx.call("POST", f"/webhook-endpoints/{endpoint['id']}/rotate-secret")
    return by_staff(ctx, endpoint["id"])


async def endpoint_deleted(ctx: Ctx) -> Caused:
    endpoint = await _endpoint(ctx)
    await ctx.call("DELETE", f"/webhook-endpoints/{endpoint['id']}")
    return by_staff(ctx, endpoint["id"])


async def endpoint_disabled(ctx: Ctx) -> Caused:
    endpoint = await _endpoint(ctx)
    ctx.receiver.answer(*[500] * 100)
    deliverer = WebhookDeliverer(ctx.sessionmaker, ctx.settings)
    for _ in range(6):  # every attempt fails, day after day
        await ctx.call("POST", "/clients", json={"name": f"Client {ctx.clock.now:%d}"})
        await deliverer.run_once()
        ctx.clock.advance(days=1)
    return by_system(endpoint["id"])


CAUSES: dict[str, Cause] = {
    "invoice.created": invoice_created,
    "invoice.updated": invoice_updated,
    "invoice.issued": invoice_issued,
    "invoice.paid": invoice_paid,
    "invoice.voided": invoice_voided,
    "payment.pending": payment_pending,
    "payment.succeeded": payment_succeeded,
    "payment.failed": payment_failed,
    "payment.refunded": payment_refunded,
    "refund.failed": refund_failed,
    "payment_method.added": payment_method_added,
    "payment_method.updated": payment_method_updated,
    "payment_method.removed": payment_method_removed,
    "autopay.updated": autopay_updated,
    "scheduled_payment.created": scheduled_created,
    "scheduled_payment.updated": scheduled_updated,
    "scheduled_payment.retry_scheduled": scheduled_retry,
    "scheduled_payment.canceled": scheduled_canceled,
    "scheduled_payment.succeeded": scheduled_succeeded,
    "scheduled_payment.failed": scheduled_failed,
    "ticket.created": ticket_created,
    "ticket.updated": ticket_updated,
    "ticket.closed": ticket_closed,
    "client.created": client_created,
    "client.updated": client_updated,
    "user.invited": user_invited,
    "user.updated": user_updated,
    "user.deactivated": user_deactivated,
    "user.reactivated": user_reactivated,
    "user.password_reset": user_password_reset,
    "service_category.created": category_created,
    "tenant.updated": tenant_updated,
    "api_key.created": api_key_created,
    "api_key.revoked": api_key_revoked,
    "consent.recorded": consent_recorded,
    "consent_text.updated": consent_text_updated,
    "webhook_endpoint.created": endpoint_created,
    "webhook_endpoint.updated": endpoint_updated,
    "webhook_endpoint.disabled": endpoint_disabled,
    "webhook_endpoint.deleted": endpoint_deleted,
}
# The contract's list (API.md, "Events and webhooks"): each of these at least.
CONTRACT_TYPES = {
    "invoice.created", "invoice.issued", "invoice.updated", "invoice.paid", "invoice.voided",
    "payment.succeeded", "payment.failed", "payment.pending", "payment.refunded",
    "payment_method.added", "payment_method.removed", "autopay.updated",
    "scheduled_payment.created", "scheduled_payment.updated", "scheduled_payment.canceled",
    "scheduled_payment.succeeded", "scheduled_payment.failed", "ticket.created",
    "ticket.updated", "ticket.closed", "client.created", "client.updated", "user.invited",
    "user.deactivated",
}  # fmt: skip


def test_the_table_covers_the_catalogue_and_the_catalogue_the_contract() -> None:
    assert set(CAUSES) | set(NOT_YET_EMITTED) == set(EVENT_TYPES)
    assert not set(CAUSES) & set(NOT_YET_EMITTED)
    assert set(EVENT_TYPES) >= CONTRACT_TYPES


@pytest.mark.parametrize("type_", sorted(CAUSES))
async def test_each_event_type_is_recorded_by_what_causes_it(
    type_: str,
    scene: Scene,
    runner: PaymentRunner,
    gateway: FakeGateway,
    clock: FrozenClock,
    receiver: Receiver,
    webhook_settings: Settings,
    sessionmaker: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(webhook_settings, "webhooks_allow_private_urls", False)
    ctx = Ctx(scene, runner, gateway, clock, receiver, webhook_settings, sessionmaker, monkeypatch)
    caused = await CAUSES[type_](ctx)

    async with sessionmaker() as session:
        stmt = select(Event).where(
            Event.type == type_, Event.subject_id == uuid.UUID(caused.subject_id)
        )
        events = list((await session.execute(stmt)).scalars())
    assert events, f"{type_} was not recorded"
    event = events[-1]
    assert event.tenant_id == scene.tenant.id
    assert (event.actor_kind, str(event.actor_id) if event.actor_id else None) == caused.actor
    # The object after the change, as the API shows it (named by its id, or for the objects
    # the API names otherwise, by that).
    named_by = {
        "autopay.updated": ("client_id", str(scene.client.id)),
        "consent_text.updated": ("kind", "ach_debit"),
    }
    key, value = named_by.get(type_, ("id", caused.subject_id))
    assert event.data[key] == value
