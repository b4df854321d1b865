"""Limits on what a ticket may say, and references it may make; refusals store nothing."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import date
from typing import Any

import pytest

from app.models import Client, Invoice, Ticket, TicketUpdate
from tests.factories import Factory, World
from tests.tickets.conftest import TicketsApi, assert_problem


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"subject": ""}, "subject"),
        ({"subject": "x" * 201}, "subject"),
        ({"subject": "   "}, "blank"),
        ({"subject": "a\x00b"}, "NUL"),
        ({"description": ""}, "description"),
        ({"description": "x" * 20_001}, "description"),
        ({"description": "\n\t "}, "blank"),
        ({"priority": "critical"}, "priority"),
        ({"subject": None}, "subject"),
        ({"invoice_id": "INV-1"}, "invoice_id"),
        ({"status": "closed"}, "status"),
        ({"client_id": str(uuid.uuid4())}, "client_id"),
    ],
)
async def test_refused_openings(
    tickets: TicketsApi, world: World, body: dict[str, Any], where: str
) -> None:
    body = assert_problem(await tickets.open_raw(world.contact, **body), 422, where)
    assert body["errors"]
    assert await tickets.count(Ticket) == 0


async def test_the_limits_themselves_are_accepted(tickets: TicketsApi, world: World) -> None:
    ticket = await tickets.open(
        world.contact, subject="s" * 200, description="d" * 20_000, priority="low"
    )
    assert len(ticket["subject"]) == 200
    update = await tickets.add_update(world.contact, ticket["id"], "u" * 20_000)
    assert update.status_code == 201, update.text
    closed = await tickets.close(world.staff, ticket["id"], "n" * 20_000)
    assert closed.status_code == 200, closed.text
    assert (await tickets.open(world.contact, subject="x"))["priority"] == "normal"


async def test_refused_updates_and_closings(tickets: TicketsApi, world: World) -> None:
    ticket = await tickets.open(world.contact)
    for body in ("", "  ", "x" * 20_001, None, "nul\x00"):
        assert_problem(await tickets.add_update(world.contact, ticket["id"], body), 422, "body")
    extra = await tickets.http.post(
        f"/api/v1/tickets/{ticket['id']}/updates",
        json={"body": "hi", "author_id": str(world.staff.id)},
        headers=world.contact.headers,
    )
    assert_problem(extra, 422, "author_id")
    for notes in ("", " \n ", "x" * 20_001, None):
        assert_problem(await tickets.close(world.staff, ticket["id"], notes), 422, "resolution")
    missing = await tickets.http.post(
        f"/api/v1/tickets/{ticket['id']}/close", json={}, headers=world.staff.headers
    )
    assert_problem(missing, 422, "resolution_notes")
    assert await tickets.count(TicketUpdate) == 0
    row = await tickets.row(ticket["id"])
    assert (row.status, row.closed_at, row.resolution_notes) == ("open", None, None)


def _forged_cursor() -> str:
    """A well-formed cursor holding a date where a timestamp belongs."""
    raw = json.dumps([{"d": "2026-01-01"}, {"u": uuid.uuid4().hex}]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


async def test_bad_list_queries(tickets: TicketsApi, world: World) -> None:
    for params in (
        {"status": "in_progress"},
        {"status": "all"},
        {"priority": "critical"},
        {"client_id": "acme"},
        {"limit": 0},
        {"limit": 201},
        {"cursor": "not-a-cursor"},
        {"cursor": _forged_cursor()},
    ):
        assert_problem(await tickets.list(world.staff, **params), 422)
    assert_problem(await tickets.get(world.staff, "not-a-uuid"), 422)


async def _invoice(factory: Factory, client: Client, status: str) -> Invoice:
    invoice = Invoice(
        tenant_id=client.tenant_id,
        client_id=client.id,
        number=None if status == "draft" else f"INV-{uuid.uuid4().hex[:6]}",
        status=status,
        currency="USD",
        issued_on=None if status == "draft" else date(2026, 11, 1),
        due_date=date(2026, 12, 1),
        total=0 if status == "draft" else 12_345,
    )
    await factory.add(invoice)
    return invoice


async def test_a_ticket_may_refer_to_the_clients_own_invoice(
    tickets: TicketsApi, world: World, factory: Factory
) -> None:
    own = await _invoice(factory, world.client, "open")
    ticket = await tickets.open(world.contact, invoice_id=str(own.id))
    assert ticket["invoice_id"] == str(own.id)
    assert (await tickets.detail(world.staff, ticket["id"]))["invoice_id"] == str(own.id)
    assert (await tickets.open(world.contact))["invoice_id"] is None


async def test_an_invoice_that_is_not_the_clients_is_422(
    tickets: TicketsApi, world: World, factory: Factory
) -> None:
    neighbour = await factory.client(world.tenant, "Globex")
    stranger = await factory.world("Other MSP")
    refused = [
        await _invoice(factory, neighbour, "open"),
        await _invoice(factory, stranger.client, "open"),
        await _invoice(factory, world.client, "draft"),  # clients never see drafts
    ]
    for invoice_id in [i.id for i in refused] + [uuid.uuid4()]:
        body = assert_problem(
            await tickets.open_raw(world.contact, invoice_id=str(invoice_id)), 422, "invoice"
        )
        assert body["errors"][0]["loc"] == ["body", "invoice_id"]
    assert await tickets.count(Ticket) == 0
