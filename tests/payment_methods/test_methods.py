"""A client's payment methods: added from gateway tokens only, listed, renamed, made the
default and removed; the default always makes sense."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from httpx import AsyncClient

from app.gateways.fake import FakeGateway
from app.models import Client, PaymentMethod, PlatformFee
from tests.factories import (
    CONSENT,
    Factory,
    Person,
    api_key_for,
    assert_problem,
    bearer,
    count_rows,
    fetch,
)
from tests.payments.helpers import METHODS, NO_SUCH_ID, add_method, billing_world


async def methods_of(client: AsyncClient, person: Person, **params: str) -> list[dict[str, Any]]:
    response = await client.get(METHODS, params=params, headers=person.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def defaults(items: list[dict[str, Any]]) -> list[str]:
    return [m["id"] for m in items if m["is_default"]]


async def test_adding_a_card_from_a_token(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()

    response = await client.post(
        METHODS,
        json={"type": "card", "token": "tok_visa", "nickname": "Company Visa"},
        headers=world.contact.headers,
    )

    assert response.status_code == 201, response.text
    card = response.json()
    assert {k: card[k] for k in ("type", "brand", "last4", "nickname", "is_default")} == {
        "type": "card",
        "brand": "visa",
        "last4": "4242",
        "nickname": "Company Visa",
        "is_default": True,  # the first one becomes the default
    }
    assert isinstance(card["exp_month"], int) and isinstance(card["exp_year"], int)
    assert card["client_id"] == str(world.client.id)
    assert card["created_at"].endswith("Z")
    # What the gateway uses to charge it stays with us.
    for private in ("token", "fingerprint", "gateway_reference", "pm_fake", "tok_visa"):
        assert private not in response.text
    assert await methods_of(client, world.contact) == [card]
    shown = await client.get(f"{METHODS}/{card['id']}", headers=world.contact.headers)
    assert shown.json() == card
    # The client became a customer of the gateway on the way.
    client_row = await fetch(factory, Client, world.client.id)
    assert client_row.gateway_customer_reference.startswith("cus_fake_")


async def test_a_bank_account_from_a_token(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    bank = await add_method(client, world.contact, "tok_ach")
    assert (bank["type"], bank["brand"], bank["last4"]) == ("ach", "bank", "6789")
    assert (bank["exp_month"], bank["exp_year"]) == (None, None)


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"type": "card", "token": "tok_unknown"}, ["body", "token"]),
        ({"type": "card", "token": "tok_ach"}, ["body", "type"]),
        ({"type": "ach", "token": "tok_visa", "consent": CONSENT}, ["body", "type"]),
        ({"type": "crypto", "token": "tok_visa"}, ["body", "type"]),
        ({"type": "card", "token": ""}, ["body", "token"]),
        ({"type": "card"}, ["body", "token"]),
        ({"type": "card", "token": "tok_visa", "cvc": "123"}, ["body", "cvc"]),
        ({"type": "card", "token": "tok_visa", "exp_month": 12}, ["body", "exp_month"]),
        ({"type": "card", "token": "tok_visa", "is_default": True}, ["body", "is_default"]),
        ({"type": "card", "token": "tok_visa", "nickname": "x" * 101}, ["body", "nickname"]),
    ],
)
async def test_only_a_valid_gateway_token_is_accepted(
    client: AsyncClient, factory: Factory, body: dict[str, Any], loc: list[str]
) -> None:
    world = await factory.world()
    response = await client.post(METHODS, json=body, headers=world.contact.headers)
    problem = assert_problem(response, 422)
    assert problem["errors"][0]["loc"] == loc, problem
    assert await count_rows(factory, PaymentMethod) == 0
    assert await count_rows(factory, PlatformFee) == 0


async def test_an_expired_card_is_refused(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    response = await client.post(
        METHODS, json={"type": "card", "token": "tok_expiredCard"}, headers=world.contact.headers
    )
    problem = assert_problem(response, 422, "payment-method-rejected")
    assert problem["code"] == "expired_card"
    assert "expired" in problem["detail"]
    assert await count_rows(factory, PaymentMethod) == 0
    assert await count_rows(factory, PlatformFee) == 0


async def test_re_adding_a_card_on_file_is_409(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    first = await add_method(client, world.contact, "tok_visa")
    again = await client.post(
        METHODS,
        json={"type": "card", "token": "tok_visa", "nickname": "Same card", "make_default": True},
        headers=world.contact.headers,
    )
    assert_problem(again, 409, "duplicate-payment-method")
    assert await methods_of(client, world.contact) == [first]
    assert await count_rows(factory, PlatformFee) == 1


async def test_an_unavailable_gateway_stores_nothing(
    client: AsyncClient, factory: Factory, gateway: FakeGateway
) -> None:
    world = await factory.world()
    for operation in ("customer", "attach"):
        gateway.fail_next(mode="timeout", operation=operation)
        response = await client.post(
            METHODS, json={"type": "card", "token": "tok_visa"}, headers=world.contact.headers
        )
        assert_problem(response, 503, "gateway-unavailable")
        assert response.headers["retry-after"].isdigit()
    assert await count_rows(factory, PaymentMethod) == 0
    assert await count_rows(factory, PlatformFee) == 0
    assert (await add_method(client, world.contact))["is_default"] is True


async def test_the_default_moves_when_asked(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    visa = await add_method(client, world.contact, "tok_visa")
    master = await add_method(client, world.contact, "tok_mastercard")
    assert (visa["is_default"], master["is_default"]) == (True, False)
    amex = await add_method(client, world.contact, "tok_amex", make_default=True)
    assert amex["is_default"] is True
    assert defaults(await methods_of(client, world.contact)) == [amex["id"]]

    patched = await client.patch(
        f"{METHODS}/{master['id']}", json={"is_default": True}, headers=world.contact.headers
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["is_default"] is True
    assert defaults(await methods_of(client, world.contact)) == [master["id"]]

    cleared = await client.patch(
        f"{METHODS}/{master['id']}", json={"is_default": False}, headers=world.contact.headers
    )
    assert cleared.json()["is_default"] is False
    assert defaults(await methods_of(client, world.contact)) == []


async def test_renaming_a_method(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    card = await add_method(client, world.contact, nickname="Old")
    renamed = await client.patch(
        f"{METHODS}/{card['id']}", json={"nickname": "Travel card"}, headers=world.contact.headers
    )
    assert renamed.status_code == 200, renamed.text
    assert (renamed.json()["nickname"], renamed.json()["is_default"]) == ("Travel card", True)
    cleared = await client.patch(
        f"{METHODS}/{card['id']}", json={"nickname": None}, headers=world.contact.headers
    )
    assert cleared.json()["nickname"] is None
    for body in ({"last4": "1111"}, {"brand": "amex"}, {"nickname": "x" * 101}):
        refused = await client.patch(
            f"{METHODS}/{card['id']}", json=body, headers=world.contact.headers
        )
        assert_problem(refused, 422)
    assert (await methods_of(client, world.contact))[0]["last4"] == "4242"


async def test_deleting_the_default_promotes_the_newest_other(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    visa = await add_method(client, world.contact, "tok_visa")
    master = await add_method(client, world.contact, "tok_mastercard")
    amex = await add_method(client, world.contact, "tok_amex")

    deleted = await client.delete(f"{METHODS}/{visa['id']}", headers=world.contact.headers)

    assert deleted.status_code == 204
    assert deleted.content == b""
    remaining = await methods_of(client, world.contact)
    assert [m["id"] for m in remaining] == [amex["id"], master["id"]]
    assert defaults(remaining) == [amex["id"]]
    gone = await client.get(f"{METHODS}/{visa['id']}", headers=world.contact.headers)
    assert_problem(gone, 404)
    assert_problem(
        await client.delete(f"{METHODS}/{visa['id']}", headers=world.contact.headers), 404
    )

    # Deleting one that is not the default leaves the default alone.
    await client.delete(f"{METHODS}/{master['id']}", headers=world.contact.headers)
    assert defaults(await methods_of(client, world.contact)) == [amex["id"]]
    # Deleting the last leaves none.
    await client.delete(f"{METHODS}/{amex['id']}", headers=world.contact.headers)
    assert await methods_of(client, world.contact) == []
    # The history keeps them (payments still name their card).
    assert await count_rows(factory, PaymentMethod) == 3


async def test_a_deleted_card_can_be_added_again(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    card = await add_method(client, world.contact, "tok_visa")
    await client.delete(f"{METHODS}/{card['id']}", headers=world.contact.headers)
    again = await add_method(client, world.contact, "tok_visa")
    assert again["id"] != card["id"]
    assert again["is_default"] is True
    assert await count_rows(factory, PlatformFee) == 1  # not new to this client: no new fee


async def test_another_clients_method_is_not_found(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    card = await add_method(client, world.contact)
    neighbour = await factory.client(world.tenant, "Globex")
    neighbour_contact = await factory.contact(world.tenant, neighbour)
    elsewhere = await billing_world(factory, client, "Other MSP")

    unknown = await client.get(f"{METHODS}/{NO_SUCH_ID}", headers=world.contact.headers)
    expected = assert_problem(unknown, 404)["detail"]
    for person in (neighbour_contact, elsewhere.contact):
        url = f"{METHODS}/{card['id']}"
        for response in (
            await client.get(url, headers=person.headers),
            await client.patch(url, json={"nickname": "mine now"}, headers=person.headers),
            await client.patch(url, json={"is_default": True}, headers=person.headers),
            await client.delete(url, headers=person.headers),
        ):
            assert assert_problem(response, 404)["detail"] == expected
    assert_problem(
        await client.get(f"{METHODS}/{card['id']}", headers=elsewhere.staff.headers), 404
    )
    assert await methods_of(client, world.contact) == [card]
    assert await methods_of(client, neighbour_contact) == []


async def test_staff_read_methods_and_clients_manage_them(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    card = await add_method(client, world.contact)
    neighbour = await factory.client(world.tenant, "Globex")
    theirs = await add_method(client, await factory.contact(world.tenant, neighbour), "tok_amex")

    assert [m["id"] for m in await methods_of(client, world.staff)] == [theirs["id"], card["id"]]
    by_client = await methods_of(client, world.staff, client_id=str(world.client.id))
    assert [m["id"] for m in by_client] == [card["id"]]
    assert [
        m["id"] for m in await methods_of(client, world.contact, client_id=str(neighbour.id))
    ] == [card["id"]]
    # Staff manage a client's methods for it, naming the client when they add one.
    unnamed = await client.post(
        METHODS, json={"type": "card", "token": "tok_visa"}, headers=world.staff.headers
    )
    assert ["body", "client_id"] in [e["loc"] for e in assert_problem(unnamed, 422)["errors"]]
    staff_add = await client.post(
        METHODS,
        json={"type": "card", "token": "tok_mastercard", "client_id": str(world.client.id)},
        headers=world.staff.headers,
    )
    assert staff_add.status_code == 201, staff_add.text
    assert staff_add.json()["client_id"] == str(world.client.id)
    url = f"{METHODS}/{card['id']}"
    renamed = await client.patch(url, json={"nickname": "x"}, headers=world.staff.headers)
    assert (renamed.status_code, renamed.json()["nickname"]) == (200, "x")
    assert (await client.delete(url, headers=world.staff.headers)).status_code == 204
    _key, secret = await api_key_for(factory, world.tenant)
    assert_problem(await client.get(METHODS, headers=bearer(secret)), 403)
    assert_problem(await client.get(METHODS), 401)


async def test_methods_are_paged(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    made = [
        (await add_method(client, world.contact, token))["id"]
        for token in ("tok_visa", "tok_mastercard", "tok_amex", "tok_ach")
    ]
    first = (await client.get(METHODS, params={"limit": "3"}, headers=world.contact.headers)).json()
    second = (
        await client.get(
            METHODS,
            params={"limit": "3", "cursor": first["next_cursor"]},
            headers=world.contact.headers,
        )
    ).json()
    assert [m["id"] for m in first["items"] + second["items"]] == list(reversed(made))
    assert second["next_cursor"] is None


async def test_cards_added_at_once_leave_one_default(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    await add_method(client, world.contact, "tok_ach")  # the gateway customer exists
    await client.patch(  # and the client has no default
        f"{METHODS}/{(await methods_of(client, world.contact))[0]['id']}",
        json={"is_default": False},
        headers=world.contact.headers,
    )
    responses = await asyncio.gather(
        *(
            client.post(METHODS, json={"type": "card", "token": t}, headers=world.contact.headers)
            for t in ("tok_visa", "tok_mastercard", "tok_amex")
        )
    )
    assert [r.status_code for r in responses] == [201, 201, 201], [r.text for r in responses]
    assert len(defaults(await methods_of(client, world.contact))) == 1


async def test_defaults_chosen_at_once_leave_one_default(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    made = [
        await add_method(client, world.contact, t)
        for t in ("tok_visa", "tok_mastercard", "tok_amex", "tok_ach")
    ]
    responses = await asyncio.gather(
        *(
            client.patch(
                f"{METHODS}/{m['id']}", json={"is_default": True}, headers=world.contact.headers
            )
            for m in made[1:]
        )
    )
    assert [r.status_code for r in responses] == [200, 200, 200], [r.text for r in responses]
    assert len(defaults(await methods_of(client, world.contact))) == 1
