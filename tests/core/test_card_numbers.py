"""Card numbers are refused anywhere in a JSON body (422), before anything is stored."""

from __future__ import annotations

import json
from typing import Any

import pytest
from httpx import AsyncClient

from app.core.card_numbers import contains_card_number, luhn_valid
from app.models import Client
from tests.factories import Factory, assert_problem, count_rows

CLIENTS = "/api/v1/clients"

# Published test numbers of the card schemes.
VISA = "4111111111111111"
VISA_13 = "4222222222222"
MASTERCARD = "5555555555554444"
AMEX = "378282246310005"
DISCOVER = "6011111111111117"
NINETEEN = "6011000000000000001"  # Luhn-valid, 19 digits


@pytest.mark.parametrize("number", [VISA, VISA_13, MASTERCARD, AMEX, DISCOVER, NINETEEN, "0" * 16])
def test_luhn_accepts_valid_numbers(number: str) -> None:
    assert luhn_valid(number)


@pytest.mark.parametrize("number", ["4111111111111112", "5555555555554445", "378282246310006", "1"])
def test_luhn_refuses_invalid_numbers(number: str) -> None:
    assert not luhn_valid(number)


@pytest.mark.parametrize(
    "text",
    [
        VISA,
        f"card {VISA} exp 12/30",
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "3782 822463 10005",
        f"x{MASTERCARD}y",
        VISA_13,
        NINETEEN,
        f"first 1234, then {DISCOVER}",
        "4111.1111.1111.1111",
        "4111/1111/1111/1111",
        "4111  1111  1111  1111",
        "4111 - 1111 - 1111 - 1111".replace(" - ", "- "),
    ],
)
def test_card_numbers_are_found(text: str) -> None:
    assert contains_card_number(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Acme Corp",
        "4111111111111112",  # fails Luhn
        "4111 1111 1111 1112",
        "411111111117",  # Luhn-valid but only 12 digits
        "123456789012",
        "60110000000000000001",  # 20 digits: no card is that long
        "+1 (555) 123-4567",
        "INV-2026-000123",
        "2026-11-25",
        "4111111111111111".replace("1", "a"),
        "41111 1111 1111 1112",
        "4111 1111 ... 1111 1111",  # too far apart to be one number
        "4111111111111111aaaa111111111111",  # an id's 32 hex digits
        "0f8e4c1a-4b1e-4c6a-9f1e-411111111111",  # a UUID
    ],
)
def test_other_digits_are_not_card_numbers(text: str) -> None:
    assert not contains_card_number(text)


@pytest.mark.parametrize(
    "body",
    [
        {"name": f"Acme {VISA}"},
        {"name": "Acme 4111 1111 1111 1111"},
        {"name": "Acme 4111-1111-1111-1111"},
        {"name": "Acme", "billing_email": f"{VISA}@acme.example"},
        {"name": AMEX},
    ],
)
async def test_a_card_number_in_a_client_is_refused(
    client: AsyncClient, factory: Factory, body: dict[str, Any]
) -> None:
    world = await factory.world()
    response = await client.post(CLIENTS, headers=world.staff.headers, json=body)
    problem = assert_problem(response, 422, "card-number-refused")
    assert problem["errors"][0]["loc"] == ["body"]
    assert "token" in problem["detail"]
    # Nothing about the number comes back, and nothing was stored.
    assert "1111" not in response.text
    assert "10005" not in response.text
    assert await count_rows(factory, Client) == 1
    listing = await client.get(CLIENTS, headers=world.staff.headers)
    assert [c["name"] for c in listing.json()["items"]] == [world.client.name]


async def test_a_card_number_is_found_however_the_json_spells_it(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    escaped = "".join(f"\\u{ord(c):04x}" for c in VISA)
    for raw, content_type in (
        (
            f'{{"name": "{escaped}"}}'.encode(),
            "application/json",
        ),
        (
            json.dumps({"name": f"Acme {VISA}"}).encode(),
            "Application/JSON; charset=UTF-8",
        ),
    ):
        response = await client.post(
            CLIENTS,
            headers={**world.staff.headers, "Content-Type": content_type},
            content=raw,
        )
        assert_problem(response, 422, "card-number-refused")
    assert await count_rows(factory, Client) == 1


async def test_a_card_number_anywhere_in_the_body_is_refused(
    client: AsyncClient, factory: Factory
) -> None:
    """Nested values and keys too, even when the endpoint would refuse the field anyway."""
    world = await factory.world()
    for body in (
        {"name": "Acme", "notes": {"deep": [1, {"deeper": f"pay with {VISA}"}]}},
        {"name": "Acme", VISA: "x"},
        [f"{VISA}"],
    ):
        response = await client.post(CLIENTS, headers=world.staff.headers, json=body)
        assert_problem(response, 422, "card-number-refused")


async def test_a_card_number_is_refused_before_authentication(client: AsyncClient) -> None:
    response = await client.post(CLIENTS, json={"name": VISA})
    assert_problem(response, 422, "card-number-refused")


async def test_a_card_number_in_an_update_or_password_is_refused(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    response = await client.patch(
        f"{CLIENTS}/{world.client.id}", headers=world.staff.headers, json={"name": VISA}
    )
    assert_problem(response, 422, "card-number-refused")
    assert (await client.get(f"{CLIENTS}/{world.client.id}", headers=world.staff.headers)).json()[
        "name"
    ] == world.client.name


@pytest.mark.parametrize(
    "name",
    [
        "Acme 4111 1111 1111 1112",
        "Order 123456789012",
        "Acme 411111111117",
        "Call +1 555-123-4567",
        "Ref 60110000000000000001",
        "Globex 2026",
    ],
)
async def test_other_digit_runs_are_accepted(
    client: AsyncClient, factory: Factory, name: str
) -> None:
    world = await factory.world()
    response = await client.post(CLIENTS, headers=world.staff.headers, json={"name": name})
    assert response.status_code == 201, response.text
    assert response.json()["name"] == name
