"""The platform fee: 50 USD minor units each time a client adds a card or account that is
new to it, written with the method in one transaction; the ledger is for staff."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import FrozenClock
from app.models import PaymentMethod, PlatformFee
from app.payment_methods.service import PaymentMethodService
from tests.factories import Factory, Person, api_key_for, assert_problem, bearer, count_rows
from tests.payments.helpers import FEES, METHODS, add_method, billing_world


async def ledger(client: AsyncClient, person: Person, **params: str) -> dict[str, Any]:
    response = await client.get(FEES, params=params, headers=person.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_new_card_costs_one_fee(
    client: AsyncClient, factory: Factory, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    world = await factory.world()
    card = await add_method(client, world.contact)

    async with sessionmaker() as session:
        (fee,) = (await session.execute(select(PlatformFee))).scalars()
        method = await session.get(PaymentMethod, fee.payment_method_id)
    assert (fee.amount, fee.currency, fee.kind) == (50, "USD", "payment_method_added")
    assert (fee.tenant_id, fee.client_id) == (world.tenant.id, world.client.id)
    assert str(fee.payment_method_id) == card["id"]
    assert method is not None and fee.fingerprint == method.fingerprint

    book = await ledger(client, world.staff)
    assert (book["total"], book["count"], book["currency"]) == (50, 1, "USD")
    (item,) = book["items"]
    assert {k: item[k] for k in ("client_id", "payment_method_id", "amount", "currency")} == {
        "client_id": str(world.client.id),
        "payment_method_id": card["id"],
        "amount": 50,
        "currency": "USD",
    }


async def test_each_new_card_per_client_costs_a_fee_and_nothing_else_does(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    neighbour = await factory.client(world.tenant, "Globex")
    neighbour_contact = await factory.contact(world.tenant, neighbour)

    visa = await add_method(client, world.contact, "tok_visa")
    await add_method(client, world.contact, "tok_ach")
    # The same card is new to another client: that client's fee.
    await add_method(client, neighbour_contact, "tok_visa")
    # Re-adding, failing to add, and removing and adding back cost nothing.
    duplicate = await client.post(
        METHODS, json={"type": "card", "token": "tok_visa"}, headers=world.contact.headers
    )
    assert_problem(duplicate, 409)
    expired = await client.post(
        METHODS, json={"type": "card", "token": "tok_expiredCard"}, headers=world.contact.headers
    )
    assert_problem(expired, 422)
    await client.delete(f"{METHODS}/{visa['id']}", headers=world.contact.headers)
    await add_method(client, world.contact, "tok_visa")

    book = await ledger(client, world.staff)
    assert (book["total"], book["count"]) == (150, 3)
    mine = await ledger(client, world.staff, client_id=str(world.client.id))
    assert (mine["total"], mine["count"]) == (100, 2)
    theirs = await ledger(client, world.staff, client_id=str(neighbour.id))
    assert (theirs["total"], theirs["count"]) == (50, 1)


async def test_the_same_card_added_at_once_costs_one_fee(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    await add_method(client, world.contact, "tok_ach")  # the gateway customer exists already
    responses = await asyncio.gather(
        *(
            client.post(
                METHODS, json={"type": "card", "token": "tok_visa"}, headers=world.contact.headers
            )
            for _ in range(4)
        )
    )
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409], [
        r.text for r in responses
    ]
    for response in responses:
        if response.status_code == 409:
            assert_problem(response, 409)
    assert await count_rows(factory, PaymentMethod) == 2
    assert (await ledger(client, world.staff))["total"] == 100


async def test_an_idempotent_retry_costs_nothing(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    headers = {**world.contact.headers, "Idempotency-Key": "add-card-1"}
    body = {"type": "card", "token": "tok_visa"}
    first = await client.post(METHODS, json=body, headers=headers)
    again = await client.post(METHODS, json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201), again.text
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert (await ledger(client, world.staff))["count"] == 1


async def test_the_fee_and_the_method_are_written_together(
    lenient_client: AsyncClient, factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure after the method is written but before the fee is takes both back."""
    world = await factory.world()
    original = PaymentMethodService._charge_fee_once

    async def failing(self: PaymentMethodService, session: AsyncSession, method: Any) -> int:
        await original(self, session, method)
        await session.flush()
        raise RuntimeError("the database went away mid-transaction")

    monkeypatch.setattr(PaymentMethodService, "_charge_fee_once", failing)
    response = await lenient_client.post(
        METHODS, json={"type": "card", "token": "tok_visa"}, headers=world.contact.headers
    )
    assert_problem(response, 500)
    assert await count_rows(factory, PaymentMethod) == 0
    assert await count_rows(factory, PlatformFee) == 0


async def test_the_ledger_by_period(client: AsyncClient, factory: Factory) -> None:
    """`since` is inclusive, `until` exclusive; the total is of everything that matches."""
    start = datetime(2031, 3, 1, 9, 0, tzinfo=UTC)
    with FrozenClock(start) as clock:
        world = await factory.world()
        for token in ("tok_visa", "tok_mastercard", "tok_amex", "tok_ach"):
            contact = Person(world.contact.user, factory.token_for(world.contact.user))
            await add_method(client, contact, token)  # one each day, at 09:00
            clock.advance(days=1)
        staff = bearer(factory.token_for(world.staff.user))

        async def book(**params: str) -> tuple[int, int]:
            response = await client.get(FEES, params=params, headers=staff)
            assert response.status_code == 200, response.text
            return response.json()["total"], response.json()["count"]

        day = timedelta(days=1)
        assert await book() == (200, 4)
        assert await book(since=start.isoformat()) == (200, 4)
        assert await book(since=(start + day).isoformat()) == (150, 3)
        assert await book(until=(start + day).isoformat()) == (50, 1)
        assert await book(since=(start + day).isoformat(), until=(start + 3 * day).isoformat()) == (
            100,
            2,
        )
        # A naive timestamp is read as UTC; another offset is converted.
        assert await book(since="2031-03-02T09:00:00") == (150, 3)
        assert await book(since="2031-03-02T10:00:00+01:00") == (150, 3)
        assert await book(since=(start + 10 * day).isoformat()) == (0, 0)
        bad = await client.get(FEES, params={"since": "last tuesday"}, headers=staff)
        assert_problem(bad, 422)


async def test_the_total_covers_every_page(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    for token in ("tok_visa", "tok_mastercard", "tok_amex"):
        await add_method(client, world.contact, token)
    first = await ledger(client, world.staff, limit="2")
    assert (len(first["items"]), first["total"], first["count"]) == (2, 150, 3)
    second = await ledger(client, world.staff, limit="2", cursor=first["next_cursor"])
    assert (len(second["items"]), second["total"], second["next_cursor"]) == (1, 150, None)
    assert len({i["id"] for i in first["items"] + second["items"]}) == 3


async def test_the_ledger_is_for_the_tenants_staff_only(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    await add_method(client, world.contact)
    elsewhere = await billing_world(factory, client, "Other MSP")  # adds a card: one fee there

    assert_problem(await client.get(FEES, headers=world.contact.headers), 403)
    _key, secret = await api_key_for(factory, world.tenant)
    assert_problem(await client.get(FEES, headers=bearer(secret)), 403)
    assert_problem(await client.get(FEES), 401)
    assert (await ledger(client, world.staff))["count"] == 1
    theirs = await ledger(client, elsewhere.staff, client_id=str(world.client.id))
    assert (theirs["total"], theirs["items"]) == (0, [])
