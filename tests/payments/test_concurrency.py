"""Money under concurrency: many payments, refunds or reconcilers at once on one invoice
never pay it twice, overpay it, or refund more than was paid."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.gateways.fake import FakeGateway
from app.payments.reconcile import reconcile
from tests.factories import Factory, assert_problem
from tests.payments.helpers import (
    Billing,
    assert_books_balance,
    gateway_latency,
    invoice_row,
    open_invoice,
    pay,
    payments_of,
    refund,
    refunds_of,
)


def on_postgres(sessionmaker: async_sessionmaker[AsyncSession]) -> bool:
    bind = sessionmaker.kw["bind"]
    return bool(bind.dialect.name == "postgresql")


async def test_ten_payments_of_the_whole_balance_at_once_pay_it_once(
    client: AsyncClient,
    billing: Billing,
    invoice: dict[str, Any],
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    responses = await asyncio.gather(
        *(
            pay(client, billing.contact, invoice["id"], billing.card["id"], 10_000, key=f"c{i}")
            for i in range(10)
        )
    )

    codes = sorted(r.status_code for r in responses)
    if on_postgres(sessionmaker):
        # Row locks queue the requests: one pays, the nine others are told it is taken.
        assert codes == [201] + [409] * 9, [r.text for r in responses]
    # On both databases the invoice is paid once, by one payment, with one charge.
    row = await invoice_row(sessionmaker, invoice["id"])
    assert (row.amount_paid, row.amount_reserved, row.status) == (10_000, 0, "paid")
    payments = await payments_of(sessionmaker, invoice["id"])
    (succeeded,) = [p for p in payments if p.status == "succeeded"]
    assert len(gateway.charges) == 1
    winners = [r for r in responses if r.status_code == 201]
    assert [r.json()["id"] for r in winners] == [str(succeeded.id)]
    # Whoever lost was told so plainly: a conflict, never an error or a second payment.
    for response in responses:
        if response.status_code != 201:
            assert_problem(response, 409)
    await assert_books_balance(sessionmaker, gateway, invoice["id"])


async def test_ten_payments_of_the_balance_while_the_gateway_is_slow(
    client: AsyncClient,
    billing: Billing,
    invoice: dict[str, Any],
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """The losers arrive while the winner waits on the gateway: the hold stops them."""
    with gateway_latency(gateway, 0.05):
        responses = await asyncio.gather(
            *(pay(client, billing.contact, invoice["id"], billing.card["id"]) for _ in range(10))
        )
    assert sorted(r.status_code for r in responses) == [201] + [409] * 9
    assert len(gateway.charges) == 1
    row = await invoice_row(sessionmaker, invoice["id"])
    assert (row.amount_paid, row.amount_reserved, row.status) == (10_000, 0, "paid")
    await assert_books_balance(sessionmaker, gateway, invoice["id"])


async def test_partial_payments_at_once_never_add_up_to_more_than_the_total(
    client: AsyncClient,
    billing: Billing,
    invoice: dict[str, Any],
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    responses = await asyncio.gather(
        *(
            pay(client, billing.contact, invoice["id"], billing.card["id"], 3_000, key=f"p{i}")
            for i in range(10)
        )
    )

    paid = [r for r in responses if r.status_code == 201]
    for response in responses:
        if response.status_code != 201:
            assert response.status_code in (409, 422), response.text
    assert len(paid) == 3
    row = await invoice_row(sessionmaker, invoice["id"])
    assert (row.amount_paid, row.amount_reserved, row.status) == (9_000, 0, "open")
    assert len(gateway.charges) == 3
    await assert_books_balance(sessionmaker, gateway, invoice["id"])


async def test_payments_on_different_invoices_do_not_block_each_other(
    client: AsyncClient,
    billing: Billing,
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    invoices = [
        await open_invoice(client, billing.staff, billing.client_id, billing.category)
        for _ in range(4)
    ]
    responses = await asyncio.gather(
        *(pay(client, billing.contact, i["id"], billing.card["id"]) for i in invoices)
    )
    assert [r.status_code for r in responses] == [201] * 4, [r.text for r in responses]
    for invoice in invoices:
        assert (await invoice_row(sessionmaker, invoice["id"])).status == "paid"
    assert len(gateway.charges) == 4


async def test_full_refunds_at_once_refund_once(
    client: AsyncClient,
    billing: Billing,
    invoice: dict[str, Any],
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    payment = (await pay(client, billing.contact, invoice["id"], billing.card["id"])).json()

    responses = await asyncio.gather(
        *(refund(client, billing.staff, payment["id"], key=f"r{i}") for i in range(5))
    )

    done = [r for r in responses if r.status_code == 201]
    assert len(done) == 1, [r.text for r in responses]
    for response in responses:
        if response.status_code != 201:
            assert_problem(response, 409, "refund-not-allowed")
    assert [r.amount for r in gateway.refunds] == [10_000]
    (kept,) = await refunds_of(sessionmaker, payment["id"])
    assert (kept.status, kept.amount) == ("succeeded", 10_000)
    row = await invoice_row(sessionmaker, invoice["id"])
    assert (row.amount_paid, row.status) == (0, "open")
    await assert_books_balance(sessionmaker, gateway, invoice["id"])


async def test_reconcilers_running_at_once_settle_each_payment_once(
    client: AsyncClient,
    factory: Factory,
    billing: Billing,
    invoice: dict[str, Any],
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    second = await open_invoice(client, billing.staff, billing.client_id, billing.category)
    gateway.fail_next(2, mode="lost_response")
    assert_problem(await pay(client, billing.contact, invoice["id"], billing.card["id"]), 503)
    assert_problem(await pay(client, billing.contact, second["id"], billing.card["id"]), 503)

    with gateway_latency(gateway, 0.02):
        reports = await asyncio.gather(
            *(reconcile(sessionmaker, gateway, older_than=timedelta(0)) for _ in range(3))
        )

    assert sum(r.payments_checked for r in reports) >= 2
    assert len(gateway.charges) == 2
    for settled in (invoice, second):
        row = await invoice_row(sessionmaker, settled["id"])
        assert (row.amount_paid, row.amount_reserved, row.status) == (10_000, 0, "paid")
        (payment,) = await payments_of(sessionmaker, settled["id"])
        assert payment.status == "succeeded"
        await assert_books_balance(sessionmaker, gateway, settled["id"])
