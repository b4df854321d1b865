"""Opening and closing billing disputes (tickets) through the API."""

from __future__ import annotations

from typing import Any

from httpx import Response

from tests.scheduling.helpers import API, Scene

TICKETS = f"{API}/tickets"


async def open_ticket(
    scene: Scene, invoice_id: str | None, kind: str = "billing_dispute"
) -> Response:
    body: dict[str, Any] = {
        "subject": "Wrong amount",
        "description": "We were billed twice.",
        "kind": kind,
    }
    if invoice_id is not None:
        body["invoice_id"] = invoice_id
    return await scene.http.post(TICKETS, json=body, headers=scene.contact)


async def dispute(scene: Scene, invoice_id: str) -> str:
    """A billing dispute about the invoice, opened by the client: its ticket id."""
    response = await open_ticket(scene, invoice_id)
    assert response.status_code == 201, response.text
    ticket_id: str = response.json()["id"]
    return ticket_id


async def close(scene: Scene, ticket_id: str) -> Response:
    """Staff close the ticket."""
    body = {"resolution_notes": "Credited the duplicate line."}
    return await scene.http.post(f"{TICKETS}/{ticket_id}/close", json=body, headers=scene.staff)


async def closed(scene: Scene, ticket_id: str) -> None:
    response = await close(scene, ticket_id)
    assert response.status_code == 200, response.text
