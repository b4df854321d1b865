"""A card number is never accepted in a money request: anywhere in the body it is refused
(422) before anything is stored, sent to the gateway, echoed or logged."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from httpx import AsyncClient

from app.core.logging import JsonFormatter
from app.gateways.fake import FakeGateway
from app.models import Client, Invoice, PaymentMethod, PlatformFee
from tests.factories import Factory, assert_problem, count_rows, fetch, stored_anywhere
from tests.payments.helpers import (
    INVOICES,
    METHODS,
    PAYMENTS,
    Billing,
    lines_for,
    open_invoice,
    pay,
)

# Published test numbers of the card schemes, 13 to 19 digits.
NUMBERS = {
    "visa": "4111111111111111",
    "visa-13": "4222222222222",
    "mastercard": "5555555555554444",
    "amex": "378282246310005",
    "discover-19": "6011000000000000001",
}
SPELLINGS: dict[str, Callable[[str], str]] = {
    "plain": lambda n: n,
    "spaced": lambda n: " ".join(n[i : i + 4] for i in range(0, len(n), 4)),
    "dashed": lambda n: "-".join(n[i : i + 4] for i in range(0, len(n), 4)),
    "in-text": lambda n: f"please charge {n} thanks",
}


@contextmanager
def captured_logs() -> Iterator[list[str]]:
    """Every log line the app writes meanwhile, formatted as it would be shipped."""
    lines: list[str] = []
    formatter = JsonFormatter()

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(formatter.format(record))

    handler = Keep(level=logging.DEBUG)
    loggers = [logging.getLogger(), logging.getLogger("billing_portal")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    try:
        yield lines
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)


def assert_refused(response: Any, number: str) -> None:
    problem = assert_problem(response, 422, "card-number-refused")
    assert problem["errors"][0]["loc"] == ["body"]
    digits = number.replace(" ", "").replace("-", "")
    assert digits[-8:] not in response.text
    assert number not in response.text


@pytest.mark.parametrize("spelling", list(SPELLINGS))
@pytest.mark.parametrize("scheme", list(NUMBERS))
async def test_a_card_number_instead_of_a_token_is_refused(
    client: AsyncClient, factory: Factory, gateway: FakeGateway, scheme: str, spelling: str
) -> None:
    world = await factory.world()
    number = SPELLINGS[spelling](NUMBERS[scheme])
    with captured_logs() as logs:
        response = await client.post(
            METHODS, json={"type": "card", "token": number}, headers=world.contact.headers
        )
    assert_refused(response, number)
    assert logs, "the request was logged"
    assert not [line for line in logs if NUMBERS[scheme][-8:] in line]
    assert await count_rows(factory, PaymentMethod) == 0
    assert await count_rows(factory, PlatformFee) == 0
    # The gateway never heard of it: the client did not even become a customer.
    assert (await fetch(factory, Client, world.client.id)).gateway_customer_reference is None


@pytest.mark.parametrize(
    "body",
    [
        {"type": "card", "token": "tok_visa", "nickname": f"Visa {NUMBERS['visa']}"},
        {"type": "card", "token": "tok_visa", "number": NUMBERS["amex"]},
        {"type": "card", "token": "tok_visa", "card": {"number": NUMBERS["mastercard"]}},
        {"type": "card", "token": "tok_visa", "cards": [["x", NUMBERS["visa-13"]]]},
        {"type": "card", "token": "tok_visa", NUMBERS["discover-19"]: "as a key"},
    ],
)
async def test_a_card_number_beside_a_token_is_refused(
    client: AsyncClient, factory: Factory, body: dict[str, Any]
) -> None:
    world = await factory.world()
    response = await client.post(METHODS, json=body, headers=world.contact.headers)
    assert_problem(response, 422, "card-number-refused")
    assert await count_rows(factory, PaymentMethod) == 0
    assert await count_rows(factory, PlatformFee) == 0
    for number in NUMBERS.values():
        assert await stored_anywhere(factory, number) == []


async def test_a_card_number_as_a_nickname_is_refused_on_rename(
    client: AsyncClient, billing: Billing
) -> None:
    url = f"{METHODS}/{billing.card['id']}"
    spaced = SPELLINGS["spaced"](NUMBERS["visa"])
    response = await client.patch(url, json={"nickname": spaced}, headers=billing.contact.headers)
    assert_refused(response, spaced)
    shown = await client.get(url, headers=billing.contact.headers)
    assert shown.json()["nickname"] is None


async def test_a_card_number_in_a_payment_or_refund_is_refused(
    client: AsyncClient,
    factory: Factory,
    billing: Billing,
    invoice: dict[str, Any],
    gateway: FakeGateway,
) -> None:
    number = NUMBERS["mastercard"]
    for extra in ({"card_number": number}, {"note": f"use {number}"}):
        response = await client.post(
            f"{INVOICES}/{invoice['id']}/pay",
            json={"payment_method_id": billing.card["id"], **extra},
            headers=billing.contact.headers,
        )
        assert_refused(response, number)
    assert gateway.charge_calls == 0
    paid = (await pay(client, billing.contact, invoice["id"], billing.card["id"])).json()
    response = await client.post(
        f"{PAYMENTS}/{paid['id']}/refunds",
        json={"reason": f"refund to {number}"},
        headers=billing.staff.headers,
    )
    assert_refused(response, number)
    assert gateway.refunds == []
    assert await stored_anywhere(factory, number) == []


@pytest.mark.parametrize("field", ["memo", "external_id", "description"])
async def test_a_card_number_on_an_invoice_is_refused(
    client: AsyncClient, factory: Factory, billing: Billing, field: str
) -> None:
    number = SPELLINGS["dashed"](NUMBERS["visa"])
    body: dict[str, Any] = {
        "client_id": str(billing.client_id),
        "currency": "USD",
        "due_date": "2031-01-31",
        "lines": lines_for(billing.category, (1, 100)),
    }
    if field == "description":
        body["lines"][0]["description"] = f"Card {number}"
    else:
        body[field] = number
    response = await client.post(INVOICES, json=body, headers=billing.staff.headers)
    assert_refused(response, number)
    assert await count_rows(factory, Invoice) == 0


@pytest.mark.parametrize(
    "text",
    [
        "PO 123456789012",  # 12 digits: too short to be a card
        "Ref 4111111111111112",  # fails the Luhn check
        "INV-2031-000123",
        "Call +1 555-123-4567",
        "Tracking 60110000000000000001",  # 20 digits: too long to be a card
    ],
)
async def test_other_numbers_in_money_requests_are_fine(
    client: AsyncClient, billing: Billing, text: str
) -> None:
    renamed = await client.patch(
        f"{METHODS}/{billing.card['id']}", json={"nickname": text}, headers=billing.contact.headers
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["nickname"] == text


# Ids whose dash-separated groups join into a Luhn-valid 13-19 digit run (about 1 in 400
# random UUIDs does): they are ids, not card numbers.
CARD_LIKE_IDS = [
    uuid.UUID("00a42351-1276-4152-ad1b-8e3c9d653dec"),
    uuid.UUID("45767858-3421-4be0-85ef-e59d1c4e33d7"),
    uuid.UUID("55467700-2544-4280-a0ea-aea5a47cb60b"),
]


async def test_ids_that_look_like_card_numbers_are_still_ids(
    client: AsyncClient, factory: Factory, billing: Billing, gateway: FakeGateway
) -> None:
    # An invoice for a client whose id is one of them can be drafted.
    unlucky = Client(id=CARD_LIKE_IDS[0], tenant_id=billing.world.tenant.id, name="Unlucky Ltd")
    await factory.add(unlucky)
    created = await client.post(
        INVOICES,
        json={
            "client_id": str(unlucky.id),
            "currency": "USD",
            "due_date": "2031-01-31",
            "lines": lines_for(billing.category, (1, 100)),
        },
        headers=billing.staff.headers,
    )
    assert created.status_code == 201, created.text

    # A card on file whose id is one of them can pay.
    customer = (await fetch(factory, Client, billing.client_id)).gateway_customer_reference
    attached = await gateway.attach_method(token="tok_amex", customer_reference=customer)
    card = PaymentMethod(
        id=CARD_LIKE_IDS[1],
        tenant_id=billing.world.tenant.id,
        client_id=billing.client_id,
        type=attached.type,
        brand=attached.brand,
        last4=attached.last4,
        exp_month=attached.exp_month,
        exp_year=attached.exp_year,
        fingerprint=attached.fingerprint,
        gateway_reference=attached.reference,
    )
    await factory.add(card)
    payable = await open_invoice(client, billing.staff, billing.client_id, billing.category)
    response = await pay(client, billing.contact, payable["id"], str(card.id))
    assert response.status_code == 201, response.text
    assert response.json()["payment_method"]["id"] == str(CARD_LIKE_IDS[1])
    renamed = await client.patch(
        f"{METHODS}/{card.id}",
        json={"nickname": f"Same as {CARD_LIKE_IDS[2]}"},
        headers=billing.contact.headers,
    )
    assert renamed.status_code == 200, renamed.text
