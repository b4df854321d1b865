"""The limits of docs/api/limits.md, each at its edge: money (one maximum in the schemas, the
arithmetic and the database), strict integers, text, dates, security headers, and card
numbers kept out of the logs."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy.exc import IntegrityError

from app.core.logging import RedactCardNumbers
from app.core.money import MAX_AMOUNT, MAX_QUANTITY
from app.models import Invoice, Payment
from tests.factories import Factory, assert_problem, count_rows
from tests.payments.helpers import (
    INVOICES,
    PAYMENTS,
    Billing,
    billing_world,
    due_in,
    lines_for,
    open_invoice,
)


def invoice_body(billing: Billing, *amounts: tuple[int, int], **extra: Any) -> dict[str, Any]:
    return {
        "client_id": str(billing.client_id),
        "currency": "USD",
        "due_date": due_in(30),
        "lines": lines_for(billing.category, *amounts),
        **extra,
    }


@pytest.mark.parametrize("lines", [10, 9, 2])
async def test_lines_that_add_up_past_the_maximum_are_refused(
    client: AsyncClient, factory: Factory, lines: int
) -> None:
    """Issue 10: ten lines of 10^6 x 10^12 answered 500, nine were accepted and charged."""
    billing = await billing_world(factory, client)
    body = invoice_body(billing, *[(MAX_QUANTITY, MAX_AMOUNT)] * lines)
    response = await client.post(INVOICES, json=body, headers=billing.staff.headers)
    assert_problem(response, 422)
    assert await count_rows(factory, Invoice) == 0
    assert await count_rows(factory, Payment) == 0


async def test_an_invoice_of_exactly_the_maximum_is_accepted(
    client: AsyncClient, factory: Factory
) -> None:
    billing = await billing_world(factory, client)
    body = invoice_body(billing, (MAX_QUANTITY, MAX_AMOUNT // MAX_QUANTITY))
    response = await client.post(INVOICES, json=body, headers=billing.staff.headers)
    assert response.status_code == 201, response.text
    assert response.json()["total"] == MAX_AMOUNT


async def test_invoices_paid_together_cannot_charge_past_the_maximum(
    client: AsyncClient, factory: Factory
) -> None:
    billing = await billing_world(factory, client)
    ids = [
        (
            await open_invoice(
                client, billing.staff, billing.client_id, billing.category, (1, MAX_AMOUNT)
            )
        )["id"]
        for _ in range(2)
    ]
    body = {"payment_method_id": billing.card["id"], "invoice_ids": ids}
    response = await client.post(PAYMENTS, json=body, headers=billing.contact.headers)
    assert_problem(response, 422, "amount-too-large")
    assert await count_rows(factory, Payment) == 0
    for invoice_id in ids:
        invoice = (
            await client.get(f"{INVOICES}/{invoice_id}", headers=billing.staff.headers)
        ).json()
        assert (invoice["amount_paid"], invoice["amount_pending"]) == (0, 0)


async def test_the_database_refuses_an_amount_past_the_maximum(factory: Factory) -> None:
    """The last line of defence, whatever a future path forgets (both databases)."""
    world = await factory.world()
    invoice = Invoice(
        tenant_id=world.tenant.id,
        client_id=world.client.id,
        currency="USD",
        due_date=date(2030, 1, 1),
        total=MAX_AMOUNT + 1,
    )
    with pytest.raises(IntegrityError):
        await factory.add(invoice)
    assert await count_rows(factory, Invoice) == 0


@pytest.mark.parametrize("value", [True, "250", 250.0, False])
@pytest.mark.parametrize("field", ["quantity", "unit_amount"])
async def test_integers_are_strict(
    client: AsyncClient, factory: Factory, field: str, value: Any
) -> None:
    billing = await billing_world(factory, client)
    body = invoice_body(billing, (1, 250))
    body["lines"][0][field] = value
    response = await client.post(INVOICES, json=body, headers=billing.staff.headers)
    problem = assert_problem(response, 422, "validation-error")
    assert ["body", "lines", 0, field] in [e["loc"] for e in problem["errors"]]
    assert await count_rows(factory, Invoice) == 0


async def test_a_payment_of_true_is_not_a_payment_of_one(
    client: AsyncClient, factory: Factory
) -> None:
    billing = await billing_world(factory, client)
    invoice = await open_invoice(
        client, billing.staff, billing.client_id, billing.category, (1, 500)
    )
    body = {"payment_method_id": billing.card["id"], "amount": True}
    response = await client.post(
        f"{INVOICES}/{invoice['id']}/pay", json=body, headers=billing.contact.headers
    )
    assert_problem(response, 422, "validation-error")
    assert await count_rows(factory, Payment) == 0


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"due_date": "0001-01-01"}, "due_date"),
        ({"due_date": "9999-12-31"}, "due_date"),
        ({"due_date": "1999-12-31"}, "due_date"),
        ({"memo": "a" * 5001}, "memo"),
        ({"external_id": "a\tb"}, "external_id"),
    ],
)
async def test_dates_and_text_are_bounded(
    client: AsyncClient, factory: Factory, change: dict[str, Any], loc: str
) -> None:
    billing = await billing_world(factory, client)
    body = invoice_body(billing, (1, 250), **change)
    response = await client.post(INVOICES, json=body, headers=billing.staff.headers)
    problem = assert_problem(response, 422, "validation-error")
    assert loc in [e["loc"][-1] for e in problem["errors"]]
    assert await count_rows(factory, Invoice) == 0


async def test_long_text_keeps_its_newlines_and_tabs(client: AsyncClient, factory: Factory) -> None:
    billing = await billing_world(factory, client)
    memo = "Thank you.\n\tSee you next month.\r\n"
    body = invoice_body(billing, (1, 250), memo=memo, due_date="2100-12-31")
    response = await client.post(INVOICES, json=body, headers=billing.staff.headers)
    assert response.status_code == 201, response.text
    assert response.json()["memo"] == memo


@pytest.mark.parametrize(
    "params", [{"since": "0001-01-01T00:00:00Z"}, {"since": "9999-12-31T00:00:00+14:00"}]
)
async def test_query_instants_are_bounded(
    client: AsyncClient, factory: Factory, params: dict[str, str]
) -> None:
    world = await factory.world()
    response = await client.get("/api/v1/events", headers=world.staff.headers, params=params)
    assert_problem(response, 422, "validation-error")


@pytest.mark.parametrize("limit", ["1.0", "true", "1e1", " 5"])
async def test_query_integers_are_strict(client: AsyncClient, factory: Factory, limit: str) -> None:
    world = await factory.world()
    response = await client.get(
        "/api/v1/clients", headers=world.staff.headers, params={"limit": limit}
    )
    assert_problem(response, 422, "validation-error")


async def test_sign_in_with_an_overlong_password_is_422_not_500(client: AsyncClient) -> None:
    for form in (
        {"username": "a@b.example", "password": "x" * 1025},
        {"username": "a" * 250 + "@b.example", "password": "x"},
        {"username": "a\x00@b.example", "password": "x"},
    ):
        response = await client.post("/api/v1/auth/token", data=form)
        assert_problem(response, 422)


async def test_every_response_carries_the_security_headers(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    for response in (
        await client.get("/healthz"),
        await client.get("/api/v1/me", headers=world.staff.headers),
        await client.get("/api/v1/me"),  # 401
        await client.post("/api/v1/clients", json={"name": "4111 1111 1111 1111"}),
        await client.post("/api/v1/auth/token", data={"username": "x@y.example", "password": "p"}),
    ):
        headers = response.headers
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["cache-control"] == "no-store"
        assert "strict-transport-security" not in headers  # not configured as HTTPS


async def test_a_token_is_never_cached(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    tokens = await client.post(
        "/api/v1/auth/token", data={"username": world.staff.user.email, "password": "x"}
    )
    assert tokens.headers["cache-control"] == "no-store"
    created = await client.post(
        "/api/v1/api-keys", json={"name": "PSA"}, headers=world.staff.headers
    )
    assert created.status_code == 201, created.text
    assert created.headers["cache-control"] == "no-store"


FULL_WIDTH_VISA = "".join(chr(0xFF10 + int(d)) for d in "4111111111111111")


def test_the_log_filter_redacts_card_numbers_in_sql_parameters_and_extras() -> None:
    record = logging.LogRecord(
        "sqlalchemy.engine",
        logging.INFO,
        __file__,
        1,
        "[generated] %r",
        (("Acme", "4111\x001111\x001111\x001111", FULL_WIDTH_VISA),),
        None,
    )
    record.note = "card 4111_1111_1111_1111"
    record.ids = ["0f8e4c1a-4b1e-4c6a-9f1e-411111111111"]
    RedactCardNumbers().filter(record)
    line = record.getMessage() + str(vars(record))
    assert "1111" not in line.replace("411111111111", "")
    assert FULL_WIDTH_VISA not in line
    assert "Acme" in record.getMessage()
    assert record.ids == ["0f8e4c1a-4b1e-4c6a-9f1e-411111111111"]  # ids are not cards


async def test_hsts_only_when_served_over_https(factory: Factory) -> None:
    from httpx import ASGITransport

    from app.main import create_app

    app = create_app(factory.settings.model_copy(update={"served_over_https": True}))
    async with AsyncClient(transport=ASGITransport(app=app), base_url="https://t") as https:
        response = await https.get("/healthz")
    assert response.headers["strict-transport-security"].startswith("max-age=")


@pytest.mark.parametrize("url", ["https://hooks.example/x\ny", "https://hooks.example/\tx"])
def test_a_long_field_that_is_one_line_refuses_tab_and_newline(url: str) -> None:
    from pydantic import ValidationError

    from app.webhooks.schemas import WebhookEndpointCreate, WebhookEndpointUpdate

    for schema in (WebhookEndpointCreate, WebhookEndpointUpdate):
        with pytest.raises(ValidationError):
            schema.model_validate({"url": url})
