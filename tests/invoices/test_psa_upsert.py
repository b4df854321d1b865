"""A PSA pushes invoices under its own id: PUT /invoices/by-external-id/{id} creates a draft
(201), replaces it (200), leaves it as it is when nothing differs (200), and refuses once it is
issued if something does (409); POST with a known external_id and other content is 409 too."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from httpx import AsyncClient
from sqlalchemy import select

from app.models import Event, Invoice, InvoiceLine
from tests.factories import Factory, api_key_for, assert_problem, bearer, count_rows, fetch
from tests.payments.helpers import Billing, due_in, lines_for

UPSERT = "/api/v1/invoices/by-external-id"


def content(billing: Billing, *amounts: tuple[int, int], **extra: Any) -> dict[str, Any]:
    return {
        "client_id": str(billing.client_id),
        "currency": "USD",
        "due_date": due_in(30),
        "lines": lines_for(billing.category, *(amounts or ((1, 10_000),))),
        **extra,
    }


async def _types(factory: Factory, invoice_id: str) -> list[str]:
    async with factory.sessionmaker() as session:
        stmt = (
            select(Event.type)
            .where(Event.subject_id == uuid.UUID(invoice_id))
            .order_by(Event.created_at, Event.id)
        )
        return list((await session.execute(stmt)).scalars())


async def test_create_replace_and_leave_a_draft(
    client: AsyncClient, factory: Factory, billing: Billing
) -> None:
    _key, secret = await api_key_for(factory, billing.world.tenant)
    key = bearer(secret)

    created = await client.put(f"{UPSERT}/psa-7", json=content(billing), headers=key)
    assert created.status_code == 201, created.text
    assert (created.json()["external_id"], created.json()["status"]) == ("psa-7", "draft")
    assert created.json()["total"] == 10_000

    corrected = content(billing, (2, 10_000), (1, 500), memo="April, corrected")
    replaced = await client.put(f"{UPSERT}/psa-7", json=corrected, headers=key)
    assert replaced.status_code == 200, replaced.text
    body = replaced.json()
    assert body["id"] == created.json()["id"]
    assert (body["total"], body["memo"], len(body["lines"])) == (20_500, "April, corrected", 2)
    assert [line["quantity"] for line in body["lines"]] == [2, 1]

    same = await client.put(f"{UPSERT}/psa-7", json=corrected, headers=key)
    assert same.status_code == 200
    assert same.json() == body
    assert await count_rows(factory, Invoice) == 1
    assert await count_rows(factory, InvoiceLine) == 2
    # Created, then updated once: the unchanged push changed nothing and said nothing.
    assert await _types(factory, body["id"]) == ["invoice.created", "invoice.updated"]


async def test_an_issued_invoice_is_not_replaced(
    client: AsyncClient, factory: Factory, billing: Billing
) -> None:
    sent = content(billing)
    created = await client.put(f"{UPSERT}/psa-8", json=sent, headers=billing.staff.headers)
    invoice_id = created.json()["id"]
    issued = await client.post(
        f"/api/v1/invoices/{invoice_id}/issue", headers=billing.staff.headers
    )
    assert issued.status_code == 200

    refused = await client.put(
        f"{UPSERT}/psa-8", json=content(billing, (3, 10_000)), headers=billing.staff.headers
    )
    assert_problem(refused, 409, "external-id-conflict")
    again = await client.put(f"{UPSERT}/psa-8", json=sent, headers=billing.staff.headers)
    assert again.status_code == 200
    assert again.json()["status"] == "open"
    stored = await fetch(factory, Invoice, uuid.UUID(invoice_id))
    assert (stored.total, stored.status) == (10_000, "open")


async def test_post_with_a_known_external_id_and_other_content_is_409(
    client: AsyncClient, factory: Factory, billing: Billing
) -> None:
    headers = billing.staff.headers
    body = {**content(billing), "external_id": "psa-9"}
    first = await client.post("/api/v1/invoices", json=body, headers=headers)
    assert first.status_code == 201
    same = await client.post("/api/v1/invoices", json=body, headers=headers)
    assert (same.status_code, same.json()["id"]) == (200, first.json()["id"])
    for changed in (
        {**body, "lines": lines_for(billing.category, (9, 9_999))},
        {**body, "memo": "something else"},
        {**body, "due_date": due_in(60)},
    ):
        assert_problem(
            await client.post("/api/v1/invoices", json=changed, headers=headers),
            409,
            "external-id-conflict",
        )
    assert await count_rows(factory, Invoice) == 1


async def test_a_draft_moves_to_another_client_when_the_psa_says_so(
    client: AsyncClient, factory: Factory, billing: Billing
) -> None:
    other = await factory.client(billing.world.tenant, "Globex")
    await client.put(f"{UPSERT}/psa-10", json=content(billing), headers=billing.staff.headers)
    moved = await client.put(
        f"{UPSERT}/psa-10",
        json={**content(billing), "client_id": str(other.id)},
        headers=billing.staff.headers,
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["client_id"] == str(other.id)


async def test_bad_upserts_are_refused(
    client: AsyncClient, factory: Factory, billing: Billing
) -> None:
    headers = billing.staff.headers
    unknown = {**content(billing), "client_id": str(uuid.uuid4())}
    problem = assert_problem(await client.put(f"{UPSERT}/x", json=unknown, headers=headers), 422)
    assert problem["errors"][0]["loc"] == ["body", "client_id"]
    with_id = {**content(billing), "external_id": "elsewhere"}
    assert_problem(await client.put(f"{UPSERT}/x", json=with_id, headers=headers), 422)
    long_id = "x" * 201
    assert_problem(
        await client.put(f"{UPSERT}/{long_id}", json=content(billing), headers=headers), 422
    )
    assert_problem(
        await client.put(f"{UPSERT}/x", json=content(billing), headers=billing.contact.headers), 403
    )
    _key, reader = await api_key_for(factory, billing.world.tenant, scopes=["invoices:read"])
    assert_problem(
        await client.put(f"{UPSERT}/x", json=content(billing), headers=bearer(reader)),
        403,
        "insufficient-scope",
    )
    assert await count_rows(factory, Invoice) == 0


async def test_the_same_id_pushed_at_once_is_one_invoice(
    client: AsyncClient, factory: Factory, billing: Billing
) -> None:
    bodies = [content(billing, (n + 1, 1_000)) for n in range(4)]
    responses = await asyncio.gather(
        *(client.put(f"{UPSERT}/psa-race", json=b, headers=billing.staff.headers) for b in bodies)
    )
    assert sorted(r.status_code for r in responses) == [200, 200, 200, 201]
    assert len({r.json()["id"] for r in responses}) == 1
    assert await count_rows(factory, Invoice) == 1
    # The last one written is what the draft says; its lines are its own, not a mix.
    stored = await fetch(factory, Invoice, uuid.UUID(responses[0].json()["id"]))
    assert await count_rows(factory, InvoiceLine) == 1
    assert stored.total in {1_000 * (n + 1) for n in range(4)}
