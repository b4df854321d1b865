"""Tax on invoice lines, as the PSA gives it (there is no tax engine): each line may carry a
`tax_amount` and a `tax_label`; the invoice's `total` (what is owed) is its `subtotal` plus
its `tax_total`, and paying, AutoPay and the database all go by that total."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.money import MAX_AMOUNT
from app.models import Invoice, InvoiceLine, ScheduledPayment
from tests.factories import CONSENT, Factory, assert_problem, count_rows
from tests.payments.helpers import (
    API,
    INVOICES,
    Billing,
    due_in,
    invoice_row,
    issue,
    pay,
)


def taxed_line(
    billing: Billing, quantity: int, unit: int, tax: int, label: str | None = None
) -> dict[str, Any]:
    line: dict[str, Any] = {
        "description": f"Service at {unit}",
        "service_category_id": str(billing.category.id),
        "quantity": quantity,
        "unit_amount": unit,
        "tax_amount": tax,
    }
    if label is not None:
        line["tax_label"] = label
    return line


def body(billing: Billing, *lines: dict[str, Any]) -> dict[str, Any]:
    return {
        "client_id": str(billing.client_id),
        "currency": "USD",
        "due_date": due_in(30),
        "lines": list(lines),
    }


async def draft(client: AsyncClient, billing: Billing, *lines: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(
        INVOICES, json=body(billing, *lines), headers=billing.staff.headers
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_tax_is_added_to_what_is_owed(
    client: AsyncClient, billing: Billing, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    created = await draft(
        client,
        billing,
        taxed_line(billing, 2, 5_000, 2_300, " VAT 23% "),
        taxed_line(billing, 1, 1_000, 0),
        taxed_line(billing, 3, 1_000, 150),
    )

    assert (created["subtotal"], created["tax_total"], created["total"]) == (14_000, 2_450, 16_450)
    assert created["balance"] == 16_450
    assert [(x["amount"], x["tax_amount"], x["tax_label"]) for x in created["lines"]] == [
        (10_000, 2_300, "VAT 23%"),
        (1_000, 0, None),
        (3_000, 150, None),
    ]
    listed = (await client.get(INVOICES, headers=billing.staff.headers)).json()["items"]
    assert [(i["subtotal"], i["tax_total"], i["total"]) for i in listed] == [
        (14_000, 2_450, 16_450)
    ]
    row = await invoice_row(sessionmaker, created["id"])
    assert (row.total, row.tax_total, row.subtotal) == (16_450, 2_450, 14_000)


async def test_the_whole_total_tax_included_is_paid(
    client: AsyncClient, billing: Billing, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    created = await draft(client, billing, taxed_line(billing, 1, 10_000, 2_000, "VAT 20%"))
    invoice = await issue(client, billing.staff, created["id"])

    payment = await pay(client, billing.contact, invoice["id"], billing.card["id"])

    assert payment.status_code == 201, payment.text
    assert payment.json()["amount"] == 12_000
    row = await invoice_row(sessionmaker, invoice["id"])
    assert (row.status, row.amount_paid, row.balance) == ("paid", 12_000, 0)


async def test_an_invoice_without_tax_is_as_before(client: AsyncClient, billing: Billing) -> None:
    line = taxed_line(billing, 2, 5_000, 0)
    del line["tax_amount"]
    created = await draft(client, billing, line)
    assert (created["subtotal"], created["tax_total"], created["total"]) == (10_000, 0, 10_000)
    assert created["lines"][0]["tax_amount"] == 0
    assert created["lines"][0]["tax_label"] is None


async def test_autopay_pays_the_tax_of_the_lines_it_covers(
    client: AsyncClient,
    billing: Billing,
    factory: Factory,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    other = await factory.category(billing.world.tenant, "Projects")
    enabled = await client.put(
        f"{API}/autopay",
        json={
            "enabled": True,
            "payment_method_id": billing.card["id"],
            "service_category_ids": [str(billing.category.id)],
            "days_before_due": 3,
            "consent": CONSENT,
        },
        headers=billing.contact.headers,
    )
    assert enabled.status_code == 200, enabled.text
    uncovered = {**taxed_line(billing, 1, 50_000, 10_000), "service_category_id": str(other.id)}
    created = await draft(client, billing, taxed_line(billing, 1, 10_000, 2_000), uncovered)

    await issue(client, billing.staff, created["id"])

    async with sessionmaker() as session:
        stmt = select(ScheduledPayment.amount).where(
            ScheduledPayment.invoice_id == uuid.UUID(created["id"])
        )
        assert list((await session.execute(stmt)).scalars()) == [12_000]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"tax_amount": -1}, "tax_amount"),
        ({"tax_amount": 1.5}, "tax_amount"),
        ({"tax_amount": "ten"}, "tax_amount"),
        ({"tax_amount": None}, "tax_amount"),
        ({"tax_amount": MAX_AMOUNT + 1}, "tax_amount"),
        ({"tax_label": "x" * 101}, "tax_label"),
        ({"tax_label": "VAT\n20%"}, "tax_label"),
        ({"tax_label": 20}, "tax_label"),
        ({"tax_rate": 20}, "tax_rate"),
    ],
)
async def test_a_bad_tax_is_refused(
    client: AsyncClient, factory: Factory, billing: Billing, change: dict[str, Any], field: str
) -> None:
    line = {**taxed_line(billing, 1, 1_000, 100), **change}
    response = await client.post(INVOICES, json=body(billing, line), headers=billing.staff.headers)
    problem = assert_problem(response, 422, "validation-error")
    assert ["body", "lines", 0, field] in [error["loc"] for error in problem["errors"]], problem
    assert await count_rows(factory, Invoice) == 0


async def test_a_total_beyond_the_maximum_is_refused(
    client: AsyncClient, factory: Factory, billing: Billing
) -> None:
    # Each line within bounds; together, tax included, one minor unit too many.
    lines = [taxed_line(billing, 1, MAX_AMOUNT // 2, 0), taxed_line(billing, 1, MAX_AMOUNT // 2, 1)]
    response = await client.post(
        INVOICES, json=body(billing, *lines), headers=billing.staff.headers
    )
    problem = assert_problem(response, 422, "validation-error")
    assert problem["errors"][0]["loc"] == ["body"]
    assert await count_rows(factory, Invoice) == 0

    lines[1]["tax_amount"] = 0
    assert (
        await client.post(INVOICES, json=body(billing, *lines), headers=billing.staff.headers)
    ).status_code == 201


@pytest.mark.parametrize(
    ("model", "values"),
    [
        pytest.param(InvoiceLine, {"tax_amount": -1}, id="line-tax-negative"),
        pytest.param(Invoice, {"tax_total": -1}, id="invoice-tax-negative"),
        pytest.param(Invoice, {"tax_total": 12_001}, id="tax-beyond-total"),
    ],
)
async def test_the_database_refuses_impossible_tax(
    client: AsyncClient,
    billing: Billing,
    sessionmaker: async_sessionmaker[AsyncSession],
    model: Any,
    values: dict[str, int],
) -> None:
    created = await draft(client, billing, taxed_line(billing, 1, 10_000, 2_000))
    row_id = uuid.UUID(created["id"])
    column = InvoiceLine.invoice_id if model is InvoiceLine else Invoice.id
    with pytest.raises(IntegrityError):
        async with sessionmaker() as session, session.begin():
            await session.execute(update(model).where(column == row_id).values(**values))
    row = await invoice_row(sessionmaker, created["id"])
    assert (row.total, row.tax_total) == (12_000, 2_000)
